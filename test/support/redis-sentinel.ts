/**
 * A real Redis Sentinel group on loopback for tests: a master, `replicas` replicas and three
 * Sentinels (quorum 2, a master is down after 1 s), each on a free port in a private temp dir,
 * stopped and removed by `stop` (also when the start fails half way).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePortPair, halt, waitForPong } from './redis-cluster.ts';

export const SENTINEL_MASTER = 'iotmaster';

export interface TestRedisSentinel {
  /** `redis-sentinel://127.0.0.1:s1,…/iotmaster[?sentinelPassword=…]`: the REDIS_URL a node takes. */
  readonly url: string;
  /** A cluster name no other test uses. */
  readonly cluster: string;
  /** Port of the master at start, then of each replica. */
  readonly dataPorts: readonly number[];
  readonly sentinelPorts: readonly number[];
  /** The port the Sentinels name as master now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the redis-server on `port` (no restart). */
  kill(port: number): Promise<void>;
  /** Waits until the Sentinels name a master other than `oldPort` that says `role:master`; returns its port. */
  promoted(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  /** Replicas of the master (default 2: after a failover the new master still has one). */
  readonly replicas?: number;
  /** A password the Sentinels themselves require (`requirepass` of the Sentinels); the URL carries it as `sentinelPassword`. */
  readonly sentinelPassword?: string;
}

let seq = 0;

export async function startTestRedisSentinel(options: SentinelOptions = {}): Promise<TestRedisSentinel> {
  const replicas = options.replicas ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'iot-redis-sentinel-'));
  const processes = new Map<number, ChildProcess>();
  const stop = async (): Promise<void> => {
    await Promise.all([...processes.values()].map((c) => halt(c, 3_000)));
    rmSync(dir, { recursive: true, force: true });
  };
  const dataPorts: number[] = [];
  const sentinelPorts: number[] = [];
  const auth = options.sentinelPassword;
  const sentinel = (port: number): Redis => {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(auth ? { password: auth } : {}),
    });
    c.on('error', () => {});
    return c;
  };
  const askMaster = async (): Promise<number | undefined> => {
    for (const port of sentinelPorts) {
      const c = sentinel(port);
      try {
        await c.connect();
        const reply = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string] | null;
        if (reply) return Number(reply[1]);
      } catch {
        // that Sentinel is not answering: ask the next
      } finally {
        c.disconnect();
      }
    }
    return undefined;
  };
  try {
    for (let i = 0; i <= replicas; i++) dataPorts.push(await freePortPair());
    for (let i = 0; i < 3; i++) sentinelPorts.push(await freePortPair());
    const [masterPort] = dataPorts as [number];
    for (const [i, port] of dataPorts.entries()) {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', `dump-${port}.rdb`];
      args.push('--appendonly', 'yes', '--appendfilename', `aof-${port}.aof`, '--appenddirname', `aof-${port}`, '--appendfsync', 'always');
      args.push('--save', '', '--protected-mode', 'no', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0');
      if (i > 0) args.push('--replicaof', '127.0.0.1', String(masterPort));
      processes.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
    }
    await Promise.all(dataPorts.map((p) => waitForPong(p)));
    await waitForReplicas(masterPort, replicas);
    for (const port of sentinelPorts) {
      const conf = join(dir, `sentinel-${port}.conf`);
      const lines = [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
        ...(auth ? [`requirepass ${auth}`] : []),
      ];
      writeFileSync(conf, `${lines.join('\n')}\n`);
      processes.set(port, spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
    }
    const deadline = Date.now() + 10_000;
    for (const port of sentinelPorts) {
      for (;;) {
        const c = sentinel(port);
        try {
          await c.connect();
          const reply = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string] | null;
          if (reply && Number(reply[1]) === masterPort) break;
        } catch {
          if (Date.now() > deadline) throw new Error(`Sentinel on port ${port} did not name the master within 10 s`);
        } finally {
          c.disconnect();
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const query = auth ? `?sentinelPassword=${encodeURIComponent(auth)}` : '';
  return {
    url: `redis-sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${SENTINEL_MASTER}${query}`,
    cluster: `s${process.pid}x${Date.now().toString(36)}x${seq++}`,
    dataPorts,
    sentinelPorts,
    masterPort: async () => {
      const port = await askMaster();
      if (port === undefined) throw new Error('no Sentinel names a master');
      return port;
    },
    kill: async (port) => {
      const child = processes.get(port);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    promoted: async (oldPort, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const port = await askMaster();
        if (port !== undefined && port !== oldPort && (await roleOf(port)) === 'master') return port;
        if (Date.now() > deadline) throw new Error(`no replica of port ${oldPort} was promoted within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop,
  };
}

async function roleOf(port: number): Promise<string | undefined> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    return /role:(\w+)/.exec(await c.info('replication'))?.[1];
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

/** Waits until the master on `port` has `count` replicas online and in sync. */
export async function waitForReplicas(port: number, count: number, timeoutMs = 15_000): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  c.on('error', () => {});
  const deadline = Date.now() + timeoutMs;
  try {
    await c.connect();
    for (;;) {
      const info = await c.info('replication');
      const online = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
      if (online >= count) return;
      if (Date.now() > deadline)
        throw new Error(`the master on port ${port} has ${online} of ${count} replicas online after ${timeoutMs} ms:\n${info}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    c.disconnect();
  }
}
