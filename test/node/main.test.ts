import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLogLine, startNodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';

const root = join(import.meta.dirname, '..', '..');

/** Every line of `output` parsed as JSON: fails the test on a line that is not a JSON object. */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = parseLogLine(line);
      if (parsed === undefined) throw new Error(`not a JSON log line: ${line}`);
      return parsed as Record<string, unknown>;
    });
}

/** Runs node/main.ts until it exits by itself: its exit code and everything it printed. */
function runUntilExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'node', 'main.ts')], {
      cwd: root,
      env: { ...process.env, HTTP_PORT: '0', GRPC_PORT: '0', PEER_PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the node did not exit within 20 s:\n${stdout}${stderr}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port held by another listener for the test, the way another process would hold it. */
let holder: Server | undefined;
async function takePort(): Promise<number> {
  holder = createServer();
  await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', resolve));
  return (holder.address() as { port: number }).port;
}
afterEach(async () => {
  await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
  holder = undefined;
});

describe('npm start (node/main.ts)', () => {
  it('prints its id and actual ports, generates an admin token, serves, and exits 0 on SIGTERM', async () => {
    const node = await startNodeProcess({ NODE_ID: 'start-test' });
    try {
      expect(node.nodeId).toBe('start-test');
      expect(node.httpPort).toBeGreaterThan(0);
      expect(node.grpcPort).toBeGreaterThan(0);
      expect(node.adminToken).toMatch(/^admin_/);
      expect(node.store).toBe('memory (not durable)');
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

  it('prints only JSON lines, at LOG_LEVEL=info too: the token first, then the start line, then shutdown', async () => {
    const node = await startNodeProcess({ NODE_ID: 'json-test', LOG_LEVEL: 'info' });
    expect((await fetch(`http://127.0.0.1:${node.httpPort}/healthz`)).status).toBe(200);
    expect(await node.stop('SIGTERM')).toBe(0);
    const lines = jsonLines(node.output());
    const token = lines.findIndex((l) => l.msg === 'admin token generated (set ADMIN_TOKEN to choose one)');
    const start = lines.findIndex((l) => l.msg === 'listening');
    expect(token).toBeGreaterThanOrEqual(0);
    expect(token).toBeLessThan(start);
    expect(lines[token]).toMatchObject({ level: 30, node: 'json-test', adminToken: node.adminToken });
    expect(lines[start]).toMatchObject({
      level: 30,
      node: 'json-test',
      http: `127.0.0.1:${node.httpPort}`,
      grpc: `127.0.0.1:${node.grpcPort}`,
      store: 'memory (not durable)',
    });
    // No REDIS_URL: no peer port, and no peer field.
    expect(lines[start]).not.toHaveProperty('peer');
    expect(lines.slice(start).map((l) => l.msg)).toEqual(expect.arrayContaining(['signal received: shutting down', 'stopped']));
    expect(lines.find((l) => l.msg === 'signal received: shutting down')).toMatchObject({ signal: 'SIGTERM' });
  });

  it('prints the start line at LOG_LEVEL=warn and with a chosen ADMIN_TOKEN, which it never prints', async () => {
    const adminToken = 'admin-token-chosen-by-the-operator';
    const node = await startNodeProcess({ NODE_ID: 'quiet-test', ADMIN_TOKEN: adminToken });
    try {
      expect(node.adminToken).toBeUndefined();
      expect(node.output()).not.toContain(adminToken);
      expect(jsonLines(node.output()).map((l) => l.msg)).toContain('listening');
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
  });

  it('prints the addresses others reach, an IPv6 HOST bracketed', async () => {
    const node = await startNodeProcess({ NODE_ID: 'start-v6-test', HOST: '::1' });
    try {
      expect(node.addresses).toEqual({ http: `[::1]:${node.httpPort}`, grpc: `[::1]:${node.grpcPort}`, peer: undefined });
      expect((await fetch(`http://[::1]:${node.httpPort}/healthz`)).status).toBe(200);
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
  });

  it('prints ADVERTISE_HOST in its addresses instead of the bind address', async () => {
    const node = await startNodeProcess({ NODE_ID: 'advertise-test', HOST: '0.0.0.0', ADVERTISE_HOST: 'advertise-test.iot-peers' });
    try {
      expect(node.addresses).toMatchObject({
        http: `advertise-test.iot-peers:${node.httpPort}`,
        grpc: `advertise-test.iot-peers:${node.grpcPort}`,
      });
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
  });

  it('refuses a bad setting with one fatal JSON line (CONFIG_INVALID) that names it, and exit code 2', async () => {
    const run = await runUntilExit({ HTTP_PORT: 'eighty' });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('');
    const lines = jsonLines(run.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, code: 'CONFIG_INVALID' });
    expect(lines[0]!.msg).toContain('HTTP_PORT=eighty');
  });

  it.each(['HTTP_PORT', 'GRPC_PORT', 'METRICS_PORT'])(
    'a %s held by another process: one fatal JSON line (PORT_TAKEN) naming the variable and port, no stack, exit code 2',
    async (variable) => {
      const port = await takePort();
      const run = await runUntilExit({ NODE_ID: 'taken-test', HOST: '127.0.0.1', [variable]: String(port) });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe('');
      const lines = jsonLines(run.stdout);
      const fatal = lines.filter((l) => l.level === 60);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ code: 'PORT_TAKEN', variable, host: '127.0.0.1', port });
      expect(fatal[0]!.msg).toContain(`${variable}=${port}`);
      expect(fatal[0]!.msg).toContain('set ' + variable + ' to a free port');
      expect(run.stdout).not.toMatch(/"stack"|\n\s+at /);
      // The other lines (warnings of the parts that started) are JSON too, and nothing claims it listens.
      expect(lines.map((l) => l.msg)).not.toContain('listening');
    },
  );

  it("a PEER_PORT held by another process: PORT_TAKEN too, and grpc-js's own error report is a JSON line, not plain text", async () => {
    const redis = await startTestRedis();
    try {
      const port = await takePort();
      const run = await runUntilExit({
        NODE_ID: 'peer-taken-test',
        REDIS_URL: redis.url,
        CLUSTER: redis.cluster,
        SHARDS: '8',
        PEER_PORT: String(port),
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe('');
      const lines = jsonLines(run.stdout);
      expect(lines.filter((l) => l.level === 60)).toEqual([
        expect.objectContaining({ code: 'PORT_TAKEN', variable: 'PEER_PORT', host: '127.0.0.1', port }),
      ]);
      // grpc-js reports the failed bind through its logger as well: routed into pino.
      expect(lines).toContainEqual(
        expect.objectContaining({ component: 'grpc', level: 50, msg: expect.stringContaining('No address added') }),
      );
    } finally {
      await redis.stop();
    }
  });
});
