/** Connects ioredis to standalone, Sentinel or Cluster Redis from one URL, and checks the version. */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { FENCED_WRITE_COMMAND } from './fenced-write.ts';

export type RedisClient = Redis | Cluster;

/** Oldest Redis we run on (GETEX, LPOS, Lua `redis.setresp`, ...). */
export const MIN_REDIS_VERSION = [6, 2, 0] as const;

export interface ConnectionOptions {
  /** Fail commands at once while disconnected instead of queueing them (the store's writes). */
  readonly failFast: boolean;
  /** Milliseconds after which a command is failed. */
  readonly commandTimeoutMs?: number;
  /** ioredis connection name shown in CLIENT LIST. */
  readonly name?: string;
}

function hostsOf(list: string): { host: string; port: number }[] {
  return list.split(',').map((hp) => {
    const [host, port] = hp.split(':');
    return { host: host || '127.0.0.1', port: Number(port || 6379) };
  });
}

/**
 * URLs: `redis://[user:pass@]host:port[/db]` and `rediss://…` (standalone),
 * `redis-sentinel://[:pass@]host:port,host:port/<master name>` (Sentinel),
 * `redis-cluster://[:pass@]host:port,host:port` (Cluster).
 */
export function createRedisClient(url: string, opts: ConnectionOptions): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: !opts.failFast,
    // Batches the small commands of a tick (per Cluster node); the shard windows go out as issued.
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: [FENCED_WRITE_COMMAND],
    maxRetriesPerRequest: opts.failFast ? 0 : 20,
    lazyConnect: true,
    ...(opts.commandTimeoutMs ? { commandTimeout: opts.commandTimeoutMs } : {}),
    ...(opts.name ? { connectionName: opts.name } : {}),
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  };
  const m = /^(redis-sentinel|redis-cluster):\/\/(?:([^:@]*):([^@]*)@)?([^/]+)(?:\/(.+))?$/.exec(url);
  if (m) {
    const [, scheme, username, password, hosts, rest] = m;
    const auth = { ...(username ? { username } : {}), ...(password ? { password: decodeURIComponent(password) } : {}) };
    if (scheme === 'redis-sentinel') {
      if (!rest) throw new Error('a redis-sentinel:// URL needs the master name as its path');
      return new Redis({ ...common, ...auth, sentinels: hostsOf(hosts!), name: rest });
    }
    return new Cluster(hostsOf(hosts!), {
      redisOptions: { ...common, ...auth },
      enableOfflineQueue: !opts.failFast,
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: [FENCED_WRITE_COMMAND],
      lazyConnect: true,
    });
  }
  return new Redis(url, common);
}

/**
 * True when `version` (`major.minor.patch` as INFO reports it) is at least MIN_REDIS_VERSION.
 * Parts compare as numbers (6.10 is newer than 6.9); missing parts count as 0.
 */
export function isSupportedRedisVersion(version: string): boolean {
  if (!/^\d+(\.\d+)*$/.test(version)) return false;
  const parts = version.split('.').map(Number);
  for (let i = 0; i < MIN_REDIS_VERSION.length; i++) {
    const have = parts[i] ?? 0;
    const need = MIN_REDIS_VERSION[i]!;
    if (have !== need) return have > need;
  }
  return true;
}

/** Connects and checks the server version; throws naming what is wrong. */
export async function connectRedis(client: RedisClient): Promise<string> {
  await client.connect();
  const info = await (client instanceof Cluster ? client.nodes('master')[0]!.info('server') : client.info('server'));
  const version = /redis_version:([\d.]+)/.exec(info)?.[1];
  if (version === undefined) throw new Error('Redis did not report its version (no redis_version in INFO server)');
  if (!isSupportedRedisVersion(version)) {
    throw new Error(`Redis ${version} is too old: ${MIN_REDIS_VERSION.join('.')} or newer is needed`);
  }
  return version;
}
