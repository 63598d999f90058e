import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startNodeProcess } from '../../tools/process/node-process.ts';

const root = join(import.meta.dirname, '..', '..');

describe('npm start (node/main.ts)', () => {
  it('prints its id and actual ports, generates an admin token, serves, and exits 0 on SIGTERM', async () => {
    const node = await startNodeProcess({ NODE_ID: 'start-test' });
    try {
      expect(node.nodeId).toBe('start-test');
      expect(node.httpPort).toBeGreaterThan(0);
      expect(node.grpcPort).toBeGreaterThan(0);
      expect(node.adminToken).toMatch(/^admin_/);
      expect(node.output()).toMatch(/NOT durable/);
      const health = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`http://127.0.0.1:${node.httpPort}/readyz`);
      expect(ready.status).toBe(200);
      const home = await fetch(`http://127.0.0.1:${node.httpPort}/v1/homes/h1`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${node.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Flat', timezone: 'UTC' }),
      });
      expect(home.status).toBeLessThan(300);
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
  });

  it('prints the addresses others reach, an IPv6 HOST bracketed, in a start line the process tools still parse', async () => {
    const node = await startNodeProcess({ NODE_ID: 'start-v6-test', HOST: '::1' });
    try {
      expect(node.output()).toContain(`node start-v6-test listening http=[::1]:${node.httpPort} grpc=[::1]:${node.grpcPort} store=`);
      expect((await fetch(`http://[::1]:${node.httpPort}/healthz`)).status).toBe(200);
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
  });

  it('refuses a bad setting with a message that names it and exit code 2', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'node', 'main.ts')], {
      cwd: root,
      env: { ...process.env, HTTP_PORT: 'eighty', GRPC_PORT: '0' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('HTTP_PORT=eighty');
  });
});
