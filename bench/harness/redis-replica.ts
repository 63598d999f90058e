/**
 * A private redis-server replicating the benchmark's Redis (`--replicaof`), for the runs with
 * `REDIS_WAIT_REPLICAS` set: free loopback port, its own temp dir, no persistence of its own (WAIT
 * counts a replica once it has received the write). Resolves once the master lists it as an online
 * replica; and the master's count of WAIT calls, to tell whether the nodes issued any.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisReplica {
  readonly url: string;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** One client call against `url`, disconnected afterwards; errors (refused while starting) reject. */
async function withClient<T>(url: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** `field:value` of an INFO section. */
const infoField = (info: string, field: string): string | undefined =>
  info
    .split('\r\n')
    .find((l) => l.startsWith(`${field}:`))
    ?.slice(field.length + 1);

/** Starts a replica of `masterUrl` (a redis://host:port URL without credentials) and waits until it is in sync. */
export async function startRedisReplica(masterUrl: string, timeoutMs = 20_000): Promise<RedisReplica> {
  const master = new URL(masterUrl);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'iot-redis-replica-'));
  const url = `redis://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--replicaof',
      master.hostname,
      master.port || '6379',
      '--appendonly',
      'no',
      '--save',
      '',
      '--protected-mode',
      'no',
    ],
    { stdio: 'ignore' },
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`the Redis replica exited (${child.exitCode ?? child.signalCode}) before it was in sync`);
    }
    try {
      const link = await withClient(url, async (r) => infoField(await r.info('replication'), 'master_link_status'));
      const online = await withClient(masterUrl, async (r) => Number(infoField(await r.info('replication'), 'connected_slaves') ?? 0));
      if (link === 'up' && online > 0) return { url, stop };
      last = `master_link_status ${link ?? '?'}, the master counts ${online} replicas`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Redis replica of ${masterUrl} was not in sync within ${timeoutMs} ms: ${last}`);
    }
    await sleep(50);
  }
}

/** How many WAIT commands `url` has run since it started (INFO commandstats). */
export async function waitCalls(url: string): Promise<number> {
  const stats = await withClient(url, (r) => r.info('commandstats'));
  return Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}
