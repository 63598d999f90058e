/** A private redis-server (free port, temp dir, append-only file) for tests and benchmarks, or REDIS_URL when given. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly url: string;
  /** A cluster name no other test uses, so tests never see each other's (or leftover) keys. */
  readonly cluster: string;
  /** Stops redis-server gracefully (it writes its AOF) and starts it again on the same port and dir. */
  restart(): Promise<void>;
  /** Kills redis-server (SIGKILL) without restarting it. */
  kill(): void;
  /** Starts it again after `kill`. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

let clusterSeq = 0;
const uniqueCluster = (): string => `t${process.pid}x${Date.now().toString(36)}x${clusterSeq++}`;

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

async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    probe.on('error', () => {}); // refused while redis-server starts: retried below
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server at ${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      probe.disconnect();
    }
  }
}

/**
 * Starts a private redis-server unless REDIS_URL is set (then that server is used, and isolation
 * comes from a unique cluster name; restart and kill need a private server).
 */
export async function startTestRedis(): Promise<TestRedis> {
  const cluster = uniqueCluster();
  const external = process.env.REDIS_URL;
  if (external) {
    const unsupported = async (): Promise<void> => {
      throw new Error('restarting Redis needs the private test server: unset REDIS_URL');
    };
    return { url: external, cluster, restart: unsupported, kill: () => void unsupported(), start: unsupported, stop: async () => {} };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'iot-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'no',
      ],
      { stdio: 'ignore' },
    );
    await waitForPing(url);
  };
  const halt = (signal: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve(); // already exited (a killed child has a signalCode and no exitCode)
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  await start();
  return {
    url,
    cluster,
    restart: async () => {
      await halt('SIGTERM');
      await start();
    },
    kill: () => void halt('SIGKILL'),
    start,
    stop: async () => {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
