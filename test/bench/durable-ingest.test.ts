import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('durable-ingest benchmark (smoke: the harness works end to end; no timing is checked)', () => {
  it('measures the raw pipeline, the memory store and the Redis store, and writes its JSON', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    try {
      const { code, text } = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', join(root, 'bench', 'durable-ingest.ts'), '--duration', '1', '--hubs', '2', '--rate', '1000', '--out', out],
          { cwd: root },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr.on('data', (d: Buffer) => (text += d.toString()));
        child.on('exit', (code) => resolve({ code, text }));
      });
      expect(code, text).toBe(0);
      expect(text).toMatch(/raw ioredis pipeline .* \d+ ops\/s/);
      expect(text).toMatch(/memory +flood \d+ reports\/s .* errors 0/);
      expect(text).toMatch(/redis +flood \d+ reports\/s .* errors 0/);
      const [file] = readdirSync(out);
      const result = JSON.parse(readFileSync(join(out, file!), 'utf8')) as { results: { store: string; floodReportsPerSec: number }[] };
      expect(result.results.map((r) => r.store)).toEqual(['memory', 'redis']);
      expect(result.results.every((r) => r.floodReportsPerSec > 0)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 90_000);
});
