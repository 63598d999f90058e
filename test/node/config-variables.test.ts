/** The configuration's variable list: what loadConfig reads, and the README table rendered from it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLE_NAMES, CONFIG_VARIABLES, type ConfigVariableName } from '../../node/config-variables.ts';
import { loadConfig, type NodeConfig } from '../../node/config.ts';
import { SHUTDOWN_AFTER_DRAIN_MS } from '../../node/shutdown-budget.ts';
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

/** What loadConfig makes of each variable: a Record, so a variable added to the list must be added here too (or this does not compile). */
const VALUE_OF: Record<ConfigVariableName, (c: NodeConfig) => unknown> = {
  NODE_ID: (c) => c.nodeId,
  HTTP_PORT: (c) => c.httpPort,
  GRPC_PORT: (c) => c.grpcPort,
  PEER_PORT: (c) => c.peerPort,
  HOST: (c) => c.host,
  ADVERTISE_HOST: (c) => c.advertiseHost,
  REDIS_URL: (c) => c.redisUrl,
  CLUSTER: (c) => c.cluster,
  ADMIN_TOKEN: (c) => c.adminToken,
  ROLES: (c) => c.roles.join(','),
  LOG_LEVEL: (c) => c.logLevel,
  ACCESS_LOG: (c) => c.accessLog,
  AUTO_JOIN: (c) => c.autoJoin,
  DRAIN_TIMEOUT_MS: (c) => c.drainTimeoutMs,
  HEARTBEAT_TTL_MS: (c) => c.heartbeatTtlMs,
  REDIS_WAIT_REPLICAS: (c) => c.redisWaitReplicas,
  REDIS_WAIT_TIMEOUT_MS: (c) => c.redisWaitTimeoutMs,
  EVENT_LOG_LENGTH: (c) => c.eventLog.length,
  EVENT_LOG_TTL_MS: (c) => c.eventLog.ttlMs,
  HUB_WINDOW: (c) => c.hubWindow,
  MAX_BODY_BYTES: (c) => c.maxBodyBytes,
  MAX_HUB_MESSAGE_BYTES: (c) => c.maxHubMessageBytes,
  PASSIVATE_AFTER_MS: (c) => c.passivateAfterMs,
  SHARDS: (c) => c.shards,
  RATE_LIMIT_PER_TOKEN: (c) => c.rateLimit.perTokenPerSec,
  RATE_LIMIT_PER_HOME: (c) => c.rateLimit.perHomePerSec,
  RATE_LIMIT_BURST: (c) => c.rateLimit.burst,
  RATE_LIMIT_REDIS_TIMEOUT_MS: (c) => c.rateLimit.redisTimeoutMs,
  PEER_HOST: (c) => c.peerHost,
  PEER_SECRET: (c) => c.peerSecret,
  PEER_TLS_CERT: (c) => c.peerTls?.cert,
  PEER_TLS_KEY: (c) => c.peerTls?.key,
  PEER_TLS_CA: (c) => c.peerTls?.ca,
  HUB_TLS_CERT: (c) => c.hubTls?.cert,
  HUB_TLS_KEY: (c) => c.hubTls?.key,
  HUB_TLS_CA: (c) => c.hubTls?.ca,
  HTTP_TLS_CERT: (c) => c.httpTls?.cert,
  HTTP_TLS_KEY: (c) => c.httpTls?.key,
  HTTP_TLS_CA: (c) => c.httpTls?.ca,
  METRICS_PORT: (c) => c.metricsPort,
  METRICS_HOST: (c) => c.metricsHost,
  HUB_HELLO_TIMEOUT_MS: (c) => c.hubHelloTimeoutMs,
  HUB_IDLE_MS: (c) => c.hubIdleMs,
  HUB_MAX_CONNECTIONS: (c) => c.hubMaxConnections,
  HUB_OUTBOUND_QUEUE: (c) => c.hubOutboundQueue,
  SSE_MAX_PER_TOKEN: (c) => c.sseLimit.perToken,
  SSE_MAX_PER_HOME: (c) => c.sseLimit.perHome,
};

/** Defaults the table describes in words: not a value loadConfig returns (the node id is the host name; the token is generated at start). */
const DESCRIBED_DEFAULTS = new Map([
  ['NODE_ID', 'host name'],
  ['ADMIN_TOKEN', 'generated'],
]);

/** The value a `default` cell states: `unset`, a number, `true`/`false`, an address or a `quoted` string; undefined for a description. */
function literalDefault(cell: string): { value: unknown } | undefined {
  const text = cell.replace(/^`(.*)`$/, '$1');
  if (text === 'unset') return { value: undefined };
  if (text === 'true' || text === 'false') return { value: text === 'true' };
  if (/^\d+$/.test(text)) return { value: Number(text) };
  if (cell.startsWith('`') || /^[\d.]+$/.test(text)) return { value: text };
  return undefined;
}

describe('CONFIG_VARIABLES defaults', () => {
  it("are loadConfig's defaults: the table's default column cannot drift from the code", () => {
    const config = loadConfig({ NODE_ID: 'n' });
    const described: [string, string][] = [];
    let checked = 0;
    for (const row of CONFIG_VARIABLES) {
      const literal = literalDefault(row.default);
      for (const name of row.names as readonly ConfigVariableName[]) {
        if (!literal) {
          described.push([name, row.default]);
          continue;
        }
        expect(VALUE_OF[name](config), `${name}'s default`).toEqual(literal.value);
        checked++;
      }
    }
    // Every other default is a literal: a new one in words must be listed (and thought about) here.
    expect(new Map(described)).toEqual(DESCRIBED_DEFAULTS);
    expect(checked).toBe(CONFIG_VARIABLE_NAMES.size - DESCRIBED_DEFAULTS.size);
  });

  it('reads the cells it checks: numbers, booleans, unset, addresses and quoted strings', () => {
    expect(literalDefault('40000')).toEqual({ value: 40_000 });
    expect(literalDefault('`true`')).toEqual({ value: true });
    expect(literalDefault('unset')).toEqual({ value: undefined });
    expect(literalDefault('127.0.0.1')).toEqual({ value: '127.0.0.1' });
    expect(literalDefault('`ingress,edge,actors`')).toEqual({ value: 'ingress,edge,actors' });
    expect(literalDefault('host name')).toBeUndefined();
  });

  it("states DRAIN_TIMEOUT_MS's companion: what the shutdown may take after the drain (SHUTDOWN_AFTER_DRAIN_MS)", () => {
    const drain = CONFIG_VARIABLES.find((v) => (v.names as readonly string[]).includes('DRAIN_TIMEOUT_MS'))!;
    expect(drain.meaning).toContain(`up to ${SHUTDOWN_AFTER_DRAIN_MS / 1000} s more`);
    expect(readFileSync(README_PATH, 'utf8')).toContain(`\`DRAIN_TIMEOUT_MS\` + ${SHUTDOWN_AFTER_DRAIN_MS / 1000} s exits 1`);
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
