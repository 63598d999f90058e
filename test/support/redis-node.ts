/** The durable side of a test node over a private Redis: client, shard leases and the Redis store. */
import { Registry } from 'prom-client';
import { ShardLeases, type ShardLeasesConfig } from '../../cluster/shard-leases.ts';
import { shardOfActor } from '../../cluster/shard-of.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../runtime/redis/redis-store.ts';

export interface TestRedisNode {
  readonly client: RedisClient;
  readonly leases: ShardLeases;
  readonly store: RedisStore;
  readonly registry: Registry;
  /** Shards whose writes Redis fenced, in order. */
  readonly fenced: number[];
  /** Shards the leases reported lost, in order. */
  readonly lost: number[];
}

export interface TestRedisNodeOptions {
  readonly owner?: string;
  readonly shards?: number;
  readonly leases?: Partial<ShardLeasesConfig>;
}

/**
 * Opens fail-fast clients (as the node does) and remembers them; `disconnectAll` in `afterAll`.
 * Connection errors are expected in tests that kill Redis, so they are swallowed here.
 */
export class RedisClients {
  private readonly open: RedisClient[] = [];

  constructor(private readonly url: () => string) {}

  async connect(): Promise<RedisClient> {
    const client = createRedisClient(this.url(), { failFast: true, commandTimeoutMs: 2_000 });
    client.on('error', () => {});
    await connectRedis(client);
    this.open.push(client);
    return client;
  }

  /** A node that takes every shard's lease as `owner` (a same-owner restart takes new fence tokens). */
  async node(keys: KeyLayout, options: TestRedisNodeOptions = {}): Promise<TestRedisNode> {
    const shards = options.shards ?? 16;
    const client = await this.connect();
    const fenced: number[] = [];
    const lost: number[] = [];
    const leases = new ShardLeases(client, keys, options.owner ?? 'n1', (s) => lost.push(s), silentLogger, options.leases);
    const heldElsewhere = await leases.acquire(Array.from({ length: shards }, (_, i) => i));
    if (heldElsewhere.size > 0) throw new Error(`shards held elsewhere: ${[...heldElsewhere.keys()].join(',')}`);
    const registry = new Registry();
    const store = new RedisStore({
      client,
      keys,
      shardOf: shardOfActor(shards),
      fenceToken: (s) => leases.token(s),
      onFenced: (s) => {
        fenced.push(s);
        leases.lost(s, 'fenced');
      },
      registry,
      logger: silentLogger,
    });
    return { client, leases, store, registry, fenced, lost };
  }

  disconnectAll(): void {
    for (const c of this.open.splice(0)) c.disconnect();
  }
}
