/**
 * A real Redis Cluster on loopback for tests: three masters (`redis-server --cluster-enabled yes`)
 * on free ports in a private temp dir, joined with `redis-cli --cluster create`, stopped and
 * removed by `stop` (also when the start fails half way).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

export interface TestRedisCluster {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: the REDIS_URL a node takes. */
  readonly url: string;
  /** A cluster name no other test uses. */
  readonly cluster: string;
  readonly ports: readonly number[];
  /** Stops every redis-server (SIGTERM, then SIGKILL after 5 s) and removes the temp dir. */
  stop(): Promise<void>;
}

/** A free TCP port on loopback, and its cluster-bus port (+10000) free too. */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (port + 10_000 > 65_535) continue;
    if ((await listenOnce(port + 10_000).catch(() => undefined)) !== undefined) return port;
  }
  throw new Error('no free port pair (port, port + 10000) on 127.0.0.1');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const got = (srv.address() as { port: number }).port;
      srv.close(() => resolve(got));
    });
  });
}

/** Answers once `redis-server` on `port` replies PONG; throws after `timeoutMs`. */
export async function waitForPong(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      probe.disconnect();
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process exited. */
export function halt(child: ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

let seq = 0;

export interface RedisClusterOptions {
  /** Masters (default 3). */
  readonly masters?: number;
  /** Replicas of each master (default 0); with some, `start` returns once every master has them online. */
  readonly replicasPerMaster?: number;
}

/** Starts cluster-enabled redis-servers and joins them into one cluster with every slot covered. */
export async function startTestRedisCluster(options: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'iot-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => halt(c)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePortPair();
      ports.push(port);
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      // `--appendfsync always`: an acked report is on disk, as in production.
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          nodeDir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--save',
          '',
          '--protected-mode',
          'no',
          // Replicas sync at once (the default waits 5 s for more replicas to share the transfer).
          '--repl-diskless-sync-delay',
          '0',
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
    }
    await Promise.all(ports.map((p) => waitForPong(p)));
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { timeout: 30_000 },
    );
    await waitForClusterOk(ports, replicas);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    cluster: `c${process.pid}x${Date.now().toString(36)}x${seq++}`,
    ports,
    stop,
  };
}

/** Waits until every node says `cluster_state:ok` and knows every slot, and every master has `replicas` replicas online. */
async function waitForClusterOk(ports: readonly number[], replicas: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const cli = async (port: number, ...args: string[]): Promise<string> =>
    (await run('redis-cli', ['-p', String(port), ...args], { timeout: 5_000 })).stdout;
  for (;;) {
    const infos = await Promise.all(ports.map((port) => cli(port, 'cluster', 'info')));
    const replication = await Promise.all(ports.map((port) => cli(port, 'info', 'replication')));
    const mastersReady = replication
      .filter((r) => /role:master/.test(r))
      .every((r) => (r.match(/^slave\d+:.*state=online/gm) ?? []).length >= replicas);
    if (mastersReady && infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_ok:16384/.test(i))) return;
    if (Date.now() > deadline)
      throw new Error(`the Redis Cluster did not reach cluster_state:ok within ${timeoutMs} ms:\n${infos.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
