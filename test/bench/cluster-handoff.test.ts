import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('cluster-handoff benchmark (smoke: the harness works end to end; no timing is checked)', () => {
  it('joins a 4th node through the ops API, reports the handoff and the forwarding overhead', async () => {
    const { code, text } = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(root, 'bench', 'cluster-handoff.ts'), '--homes', '12', '--devices', '5', '--shards', '64', '--seconds', '1'],
        { cwd: root },
      );
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => resolve({ code, text }));
    });
    expect(code, text).toBe(0);
    expect(text).toMatch(/join 3 → 4: \d+ of 64 shards moved, all served after \d+ ms/);
    expect(text).toMatch(/after the move: \d+ reports acked in total, 0 errors/);
    expect(text).toMatch(/local ack p50 [\d.]+ ms .* forwarded p50 [\d.]+ ms/);
  }, 120_000);
});
