/**
 * The README's configuration table, rendered from node/config-variables.ts (a test keeps the two
 * equal). `tsx tools/config-table.ts` prints it; `--write` replaces the table in README.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CONFIG_VARIABLES, type ConfigVariable } from '../node/config-variables.ts';

const HEADER = ['| variable | default | meaning |', '|---|---|---|'];

/** The Markdown table of `variables`, one row per entry, as the README shows it. */
export function renderConfigTable(variables: readonly ConfigVariable[] = CONFIG_VARIABLES): string {
  const rows = variables.map((v) => {
    const cells = [v.names.map((n) => `\`${n}\``).join(', '), v.default, v.meaning];
    for (const cell of cells)
      if (cell.includes('|') || cell.includes('\n')) throw new Error(`a table cell may not hold | or a line break: ${cell}`);
    return `| ${cells.join(' | ')} |`;
  });
  return [...HEADER, ...rows].join('\n');
}

/** Where the configuration table sits in `readme`: its first line to the line after its last row. */
export function findConfigTable(readme: string): { start: number; end: number } {
  const start = readme.indexOf(`${HEADER[0]}\n${HEADER[1]}\n`);
  if (start < 0) throw new Error(`README.md has no configuration table (a line "${HEADER[0]}" followed by "${HEADER[1]}")`);
  let end = start;
  for (;;) {
    const next = readme.indexOf('\n', end);
    if (next < 0) return { start, end: readme.length };
    if (!readme.startsWith('|', next + 1)) return { start, end: next };
    end = next + 1;
  }
}

/** The configuration table as README.md has it now. */
export function readmeConfigTable(readme: string): string {
  const { start, end } = findConfigTable(readme);
  return readme.slice(start, end);
}

/** `readme` with its configuration table replaced by the rendered one. */
export function withRenderedConfigTable(readme: string): string {
  const { start, end } = findConfigTable(readme);
  return `${readme.slice(0, start)}${renderConfigTable()}${readme.slice(end)}`;
}

export const README_PATH = join(import.meta.dirname, '..', 'README.md');

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--write')) {
    writeFileSync(README_PATH, withRenderedConfigTable(readFileSync(README_PATH, 'utf8')));
    process.stdout.write(`README.md: configuration table rewritten from node/config-variables.ts\n`);
  } else {
    process.stdout.write(`${renderConfigTable()}\n`);
  }
}
