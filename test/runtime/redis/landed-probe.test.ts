/**
 * RedisStore's probe after a window call that timed out (`landed`): a window is released as
 * written only if its seqs are in Redis *and* the shard's fence is still this node's token — a new
 * owner that took the shard over meanwhile may have written the same seqs.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardLeases } from '../../../cluster/shard-leases.ts';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { JournalEntry } from '../../../runtime/persistence-port.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients, type TestRedisNode } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

const SHARDS = 4;
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

const entry = (seq: number, msg: unknown): JournalEntry => ({ seq, at: 1_700_000_000_000 + seq, msg });

/**
 * A store over `node`'s client whose next fenced-write call runs `meanwhile` (instead of the call,
 * or after it with `run`), then fails as a timeout does.
 */
function timingOutStore(node: TestRedisNode, keys: KeyLayout) {
  let next: { meanwhile: () => Promise<void>; run: boolean } | undefined;
  const client = node.client;
  const proxy = new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop === 'fencedWrite' && next !== undefined) {
        const { meanwhile, run } = next;
        next = undefined;
        return async (...args: string[]) => {
          if (run) await (value as (...a: string[]) => Promise<string[]>).apply(target, args);
          await meanwhile();
          throw new Error('Command timed out');
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const store = new RedisStore({
    client: proxy,
    keys,
    shardOf: node.store.shardOf,
    fenceToken: (s) => node.leases.token(s),
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
  });
  return { store, timeOutNext: (meanwhile: () => Promise<void>, run = false) => (next = { meanwhile, run }) };
}

describe('RedisStore after a timed-out window', () => {
  it('does not release a window refused while a takeover wrote the same seqs of the same actor (no phantom effects)', async () => {
    const keys = new KeyLayout(`${redis.cluster}lp1`);
    const a = await clients.node(keys, { shards: SHARDS, owner: 'node-a' });
    const { store, timeOutNext } = timingOutStore(a, keys);
    const actor = 'counter:h1:x';
    await store.write(actor, { events: [entry(1, 'a1')] });
    // A's heartbeat lapsed while its call waited: B takes the shard over and writes seq 2 itself.
    timeOutNext(async () => {
      const b = await takeOver(keys, 'node-b');
      await b.write(actor, { events: [entry(2, 'b2')] });
    });
    await expect(store.write(actor, { events: [entry(2, 'a2')] })).rejects.toThrow(/timed out/);
    const shard = a.store.shardOf(actor);
    expect(await a.client.hget(keys.actorMeta(shard, actor), 'last')).toBe('2'); // B's seq 2, not A's
  });

  it('still releases a window that Redis ran before the timeout, while the fence is still this node', async () => {
    const keys = new KeyLayout(`${redis.cluster}lp2`);
    const a = await clients.node(keys, { shards: SHARDS, owner: 'node-a' });
    const { store, timeOutNext } = timingOutStore(a, keys);
    const actor = 'counter:h2:x';
    await store.write(actor, { events: [entry(1, 'a1')] });
    timeOutNext(async () => {}, true);
    await expect(store.write(actor, { events: [entry(2, 'a2')] })).resolves.toBeUndefined();
  });
});

/** Another node's store after it took every shard over whoever held it (the holder's heartbeat expired). */
async function takeOver(keys: KeyLayout, owner: string): Promise<RedisStore> {
  const client = await clients.connect();
  const leases = new ShardLeases(client, keys, owner, () => {}, silentLogger);
  await leases.acquire(
    Array.from({ length: SHARDS }, (_, s) => s),
    { force: true },
  );
  return new RedisStore({
    client,
    keys,
    shardOf: shardOfActor(SHARDS),
    fenceToken: (s) => leases.token(s),
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
  });
}
