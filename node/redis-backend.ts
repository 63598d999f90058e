/** The durable backend of a node: Redis connection, shard leases with fence tokens, the store, credentials. */
import type { Registry } from 'prom-client';
import { ShardLeases } from '../cluster/shard-leases.ts';
import { shardOfActor } from '../cluster/shard-of.ts';
import { RedisCredentialStore } from '../edge-api/auth/redis-credential-store.ts';
import type { Logger } from '../runtime/logger.ts';
import { KeyLayout } from '../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../runtime/redis/redis-connection.ts';
import { RedisStore } from '../runtime/redis/redis-store.ts';

export interface RedisBackend {
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  readonly store: RedisStore;
  readonly credentials: RedisCredentialStore;
  readonly leases: ShardLeases;
  readonly shardCount: number;
  readonly shardOf: (actorId: string) => number;
  readonly version: string;
  close(): Promise<void>;
}

export interface RedisBackendConfig {
  readonly url: string;
  readonly cluster: string;
  readonly nodeId: string;
  /** Shard count for a new cluster; an existing cluster keeps the one stored with it. */
  readonly shards: number;
  /** Called when a shard's lease is lost: the node must stop that shard's actors without writing. */
  readonly onShardLost: (shard: number) => void;
}

/** The cluster's shard count: fixed when the cluster is created (first node) and stored with it. */
async function clusterShardCount(client: RedisClient, keys: KeyLayout, proposed: number, log: Logger): Promise<number> {
  await client.hsetnx(keys.meta(), 'shards', String(proposed));
  const stored = Number(await client.hget(keys.meta(), 'shards'));
  if (stored !== proposed)
    log.warn({ stored, configured: proposed }, "SHARDS differs from the cluster's stored shard count; using the stored one");
  return stored;
}

/** Connects, checks the version, reads (or fixes) the shard count; leases are taken by the shard manager. */
export async function openRedisBackend(config: RedisBackendConfig, registry: Registry, logger: Logger): Promise<RedisBackend> {
  const log = logger.child({ component: 'redis' });
  const client = createRedisClient(config.url, { failFast: true, commandTimeoutMs: 5_000, name: `iot:${config.nodeId}` });
  let lastError = '';
  client.on('error', (err: Error) => {
    // ioredis repeats connection errors on every retry: log each distinct one once.
    if (err.message !== lastError) log.error({ err: err.message }, 'redis connection error');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) log.info('redis connection restored');
    lastError = '';
  });
  const version = await connectRedis(client);
  const keys = new KeyLayout(config.cluster);
  const shardCount = await clusterShardCount(client, keys, config.shards, log);
  const shardOf = shardOfActor(shardCount);

  const leases = new ShardLeases(client, keys, config.nodeId, (shard) => config.onShardLost(shard), logger);
  const store = new RedisStore({
    client,
    keys,
    shardOf,
    fenceToken: (shard) => leases.token(shard),
    onFenced: (shard, _current, used) => leases.lost(shard, 'a write was fenced: another node took the shard', used),
    registry,
    logger,
  });
  log.info({ version, shards: shardCount, cluster: config.cluster }, 'redis store ready');
  return {
    client,
    keys,
    store,
    credentials: new RedisCredentialStore(client, keys),
    leases,
    shardCount,
    shardOf,
    version,
    close: async () => {
      await store.close();
      await leases.releaseAll();
      await client.quit().catch(() => client.disconnect());
    },
  };
}
