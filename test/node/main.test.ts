import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseLogLine, startNodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';

const root = join(import.meta.dirname, '..', '..');

/**
 * The keys of a JSON object's top level, in order and with repeats (JSON.parse keeps the last of
 * a repeated key silently): what a log collector that rejects or merges duplicates would see.
 */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      // A key: a string at depth 1 followed by a colon.
      if (depth === 1 && json[end + 1] === ':') keys.push(JSON.parse(json.slice(i, end + 1)) as string);
      i = end;
    } else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return keys;
}

/** Every line of `output` parsed as JSON: fails the test on a line that is not a JSON object or that repeats a key. */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = parseLogLine(line);
      if (parsed === undefined) throw new Error(`not a JSON log line: ${line}`);
      const keys = topLevelKeys(line);
      if (keys.length !== Object.keys(parsed).length) throw new Error(`a key repeats in the log line: ${line}`);
      return parsed as Record<string, unknown>;
    });
}

/** Spawns node/main.ts (source, under tsx) with ports 0 and LOG_LEVEL=info unless `env` says otherwise. */
function spawnMain(env: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, ['--import', 'tsx', join(root, 'node', 'main.ts')], {
    cwd: root,
    env: { ...process.env, HTTP_PORT: '0', GRPC_PORT: '0', PEER_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs node/main.ts until it exits by itself: its exit code and everything it printed. With
 * `readAfterMs`, stdout is not read for that long: a slow reader, whose pipe fills up.
 */
function runUntilExit(env: Record<string, string>, readAfterMs = 0): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnMain(env);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    if (readAfterMs > 0) child.stdout.pause();
    child.stdout.on('data', (d: string) => (stdout += d));
    if (readAfterMs > 0) setTimeout(() => child.stdout.resume(), readAfterMs);
    child.stderr.on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the node did not exit within 20 s:\n${stdout}${stderr}`));
    }, 20_000);
    // 'close', not 'exit': every byte of the pipes has been read.
    child.once('close', (code) => {
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

  it('writes a buffered line (the access log) within the periodic flush, in order between the start and stop lines', async () => {
    const node = await startNodeProcess({ NODE_ID: 'buffered-test' });
    try {
      // One request, then silence: the access line must not wait for the 4 KB buffer to fill.
      expect((await fetch(`http://127.0.0.1:${node.httpPort}/v1/homes/nope`)).status).toBe(401);
      const deadline = Date.now() + 2_000;
      while (!node.output().includes('"route":"/v1/homes/:homeId"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const access = jsonLines(node.output()).find((l) => l.route === '/v1/homes/:homeId');
      expect(access).toMatchObject({ level: 30, method: 'GET', status: 401 });
    } finally {
      expect(await node.stop('SIGTERM')).toBe(0);
    }
    const lines = jsonLines(node.output());
    const at = (pred: (l: Record<string, unknown>) => boolean): number => lines.findIndex(pred);
    const access = at((l) => l.route === '/v1/homes/:homeId');
    expect(at((l) => l.msg === 'listening')).toBeLessThan(access);
    expect(access).toBeLessThan(at((l) => l.msg === 'stopped'));
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

  it("a PEER_PORT held by another process: PORT_TAKEN too, and grpc-js's own error report is no second error line", async () => {
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
      // grpc-js reports the failed bind through its logger as well: kept at debug, so the fatal line stands alone.
      expect(lines.filter((l) => l.level === 50)).toEqual([]);
      expect(run.stdout).not.toContain('No address added');
    } finally {
      await redis.stop();
    }
  });

  it('prints its fatal line whole to a slow reader of stdout (the line is written before the process exits)', async () => {
    // A line larger than a pipe's buffer (64 KiB), and nobody reading for a while: an asynchronous
    // writer would still be writing it when process.exit ends the process.
    const value = 'x'.repeat(100_000);
    const run = await runUntilExit({ HTTP_PORT: value }, 1_000);
    expect(run.code).toBe(2);
    const lines = jsonLines(run.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, code: 'CONFIG_INVALID' });
    expect(lines[0]!.msg).toContain(`HTTP_PORT=${value} is not a port`);
  });

  it('a SIGTERM while the start waits for Redis stops it: exit 0 and a "stopped" line within seconds', async () => {
    // A Redis that accepts the connection and never answers: the start hangs on it.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const child = spawnMain({ NODE_ID: 'stuck-start', REDIS_URL: `redis://127.0.0.1:${port}`, SHARDS: '8' });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      await vi.waitFor(() => expect(sockets.length).toBeGreaterThan(0), { timeout: 10_000 });
      const signalled = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(4_000);
      const lines = jsonLines(stdout);
      expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['signal received: shutting down', 'stopped']));
      expect(lines.at(-1)).toMatchObject({ component: 'main', node: 'stuck-start', msg: 'stopped', startAborted: true });
      expect(lines.map((l) => l.msg)).not.toContain('listening');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('a second SIGINT during the shutdown exits at once with 130 and says so', async () => {
    const node = await startNodeProcess({ NODE_ID: 'second-signal', LOG_LEVEL: 'info' });
    const auth = { authorization: `Bearer ${node.adminToken}` };
    const created = await fetch(`http://127.0.0.1:${node.httpPort}/v1/homes/h1`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Flat', timezone: 'UTC' }),
    });
    expect(created.status).toBeLessThan(300);
    // An open event stream holds the shutdown for its grace period (2 s): time for a second signal.
    const stream = await fetch(`http://127.0.0.1:${node.httpPort}/v1/homes/h1/events`, { headers: auth });
    expect(stream.status).toBe(200);
    node.child.kill('SIGINT');
    await vi.waitFor(() => expect(node.output()).toContain('signal received: shutting down'));
    const signalled = Date.now();
    expect(await node.stop('SIGINT')).toBe(130);
    expect(Date.now() - signalled).toBeLessThan(1_500);
    await stream.body?.cancel().catch(() => {});
    const lines = jsonLines(node.output());
    expect(lines.at(-1)).toMatchObject({ level: 40, component: 'main', signal: 'SIGINT', msg: expect.stringContaining('second SIGINT') });
    expect(lines.map((l) => l.msg)).not.toContain('stopped');
  });

  it('prints "stopped" once, as the last line, and no line repeats a key', async () => {
    const node = await startNodeProcess({ NODE_ID: 'stopped-once', LOG_LEVEL: 'debug' });
    expect((await fetch(`http://127.0.0.1:${node.httpPort}/healthz`)).status).toBe(200);
    expect(await node.stop('SIGTERM')).toBe(0);
    // jsonLines refuses a line with a repeated key.
    const lines = jsonLines(node.output());
    expect(lines.filter((l) => l.msg === 'stopped')).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', component: 'main' });
  });
});

describe('topLevelKeys (the duplicate-key detector of these tests)', () => {
  it('finds a repeated key that JSON.parse hides, and ignores keys and braces inside values', () => {
    expect(topLevelKeys('{"component":"main","component":"grpc","msg":"x"}')).toEqual(['component', 'component', 'msg']);
    expect(topLevelKeys('{"a":{"b":1,"c":[{"d":2}]},"e":"{\\"f\\":1}","g":"q\\"h:"}')).toEqual(['a', 'e', 'g']);
  });
});
