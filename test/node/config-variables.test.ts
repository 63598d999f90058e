/** The configuration's variable list: what loadConfig reads, and the README table rendered from it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLE_NAMES, CONFIG_VARIABLES } from '../../node/config-variables.ts';
import { loadConfig } from '../../node/config.ts';
import { README_PATH, readmeConfigTable, renderConfigTable, withRenderedConfigTable } from '../../tools/config-table.ts';

/** Every variable name `loadConfig` looks up in `env` (a proxy records each read). */
function namesRead(env: Record<string, string>): Set<string> {
  const read = new Set<string>();
  const recording = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return target[key as string];
    },
  });
  loadConfig(recording);
  return read;
}

describe('CONFIG_VARIABLES', () => {
  it('lists exactly the variables loadConfig reads, each once', () => {
    const all = CONFIG_VARIABLES.flatMap((v): readonly string[] => v.names);
    expect(new Set(all).size).toBe(all.length);
    expect(CONFIG_VARIABLE_NAMES).toEqual(new Set(all));
    // Unset, every optional variable is still looked up (and its default taken).
    expect(namesRead({ NODE_ID: 'n1' })).toEqual(CONFIG_VARIABLE_NAMES);
    // Set, none adds a read of a variable the list does not have.
    expect(namesRead({ NODE_ID: 'n1', REDIS_URL: 'redis://127.0.0.1:6379', METRICS_PORT: '9464', ADVERTISE_HOST: 'n1.iot-peers' })).toEqual(
      CONFIG_VARIABLE_NAMES,
    );
  });

  it('has the new variables of the production deployment', () => {
    expect(CONFIG_VARIABLE_NAMES).toContain('ADVERTISE_HOST');
    expect(CONFIG_VARIABLE_NAMES).toContain('ACCESS_LOG');
  });

  it('has cells a Markdown table row can hold', () => {
    for (const v of CONFIG_VARIABLES) {
      expect(v.names.length).toBeGreaterThan(0);
      for (const cell of [v.default, v.meaning]) {
        expect(cell, v.names.join()).not.toMatch(/[|\n]/);
        expect(cell.trim(), v.names.join()).not.toBe('');
      }
    }
    expect(() => renderConfigTable([{ names: ['X'], default: 'a | b', meaning: 'm' }])).toThrow('may not hold |');
  });
});

describe("README's configuration table", () => {
  it('is the one rendered from CONFIG_VARIABLES (rewrite it with `npx tsx tools/config-table.ts --write`)', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    expect(
      readmeConfigTable(readme),
      "README.md's configuration table differs from node/config-variables.ts: run `npx tsx tools/config-table.ts --write`",
    ).toBe(renderConfigTable());
  });

  it('renders one row per entry, and --write replaces only the table', () => {
    const table = renderConfigTable();
    expect(table.split('\n')).toHaveLength(CONFIG_VARIABLES.length + 2);
    expect(table).toContain('| `PEER_TLS_CERT`, `PEER_TLS_KEY`, `PEER_TLS_CA` | unset |');
    const stale = `# Title\n\ntext\n\n| variable | default | meaning |\n|---|---|---|\n| \`OLD\` | 1 | gone |\n\n## Next\n`;
    expect(withRenderedConfigTable(stale)).toBe(`# Title\n\ntext\n\n${table}\n\n## Next\n`);
    expect(() => readmeConfigTable('no table here')).toThrow('has no configuration table');
  });
});
