/** RedisEventFeed over a real redis-server: replay after an id, live delivery, gaps, catch-up after a lost connection or an outage. */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfHome } from '../../../cluster/shard-of.ts';
import type { FeedBatch } from '../../../edge-api/events/home-event-feed.ts';
import { RedisEventFeed } from '../../../edge-api/events/redis-event-feed.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

const SHARDS = 16;
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
const feeds: RedisEventFeed[] = [];
let clusters = 0;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  for (const f of feeds) await f.close();
  clients.disconnectAll();
  await redis.stop();
});

/** A fresh cluster on the file's Redis: a writer (the store, as a node writes windows) and feeds over it. */
async function setup(retention = { length: 200, ttlMs: 60_000 }) {
  const keys = new KeyLayout(`${redis.cluster}f${clusters++}`);
  const node = await clients.node(keys, { shards: SHARDS });
  const store = new RedisStore({
    client: node.client,
    keys,
    shardOf: (id) => shardOfHome(id, SHARDS),
    fenceToken: (s) => node.leases.token(s),
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
    logRetention: retention,
  });
  /** Writes `n` events of `homeId` as one window; resolves their ids. */
  const write = async (homeId: string, n = 1, tag = 'e'): Promise<string[]> => {
    const shard = shardOfHome(homeId, SHARDS);
    const key = keys.events(shard, homeId);
    const before = (await node.client.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
    const appends = Array.from({ length: n }, (_, i) => ({ log: homeId, at: Date.now(), entry: { topic: tag, data: { i } } }));
    await store.commit(shard, [], appends);
    const written = await node.client.xrange(key, before === undefined ? '-' : `(${before}`, '+');
    return written.map(([id]) => id);
  };
  const feed = async (client?: RedisClient): Promise<RedisEventFeed> => {
    const f = new RedisEventFeed({
      client: client ?? (await clients.connect()),
      keys,
      shardOfHome: (h) => shardOfHome(h, SHARDS),
      logger: silentLogger,
      retryMs: 100,
    });
    feeds.push(f);
    return f;
  };
  return { keys, node, write, feed };
}

/** A listener that records every batch, and the ids it was given in order. */
function recorder() {
  const batches: FeedBatch[] = [];
  return {
    batches,
    listener: (b: FeedBatch) => void batches.push(b),
    ids: () => batches.flatMap((b) => b.events.map((e) => e.id)),
    gaps: () => batches.filter((b) => b.gap),
  };
}

describe('RedisEventFeed', () => {
  it('replays the entries after Last-Event-ID from the log, then delivers live ones: each once, in order', async () => {
    const { write, feed } = await setup();
    const early = await write('h1', 5, 'tick');
    const f = await feed();
    const r = recorder();
    const sub = f.subscribe('h1', r.listener, early[1]);
    await vi.waitFor(() => expect(r.ids()).toEqual(early.slice(2)));
    expect(r.batches[0]).toMatchObject({ replay: true, gap: false });
    expect(r.batches[0]!.events[0]).toMatchObject({ topic: 'tick', data: { i: 2 } });
    const late = await write('h1', 2, 'tick');
    await write('h2', 1); // another home: not this follower's
    await vi.waitFor(() => expect(r.ids()).toEqual([...early.slice(2), ...late]));
    expect(r.batches.at(-1)).toMatchObject({ replay: false, gap: false });
    expect(r.gaps()).toEqual([]);
    sub.unsubscribe();
  });

  it('subscribes before it reads: followers that join while windows are written get every later entry exactly once', async () => {
    const { write, feed } = await setup();
    const [start] = await write('busy', 1);
    const f = await feed();
    const followers: ReturnType<typeof recorder>[] = [];
    const writing = (async () => {
      const ids: string[] = [];
      for (let w = 0; w < 60; w++) ids.push(...(await write('busy', 1 + (w % 3))));
      return ids;
    })();
    for (let k = 0; k < 6; k++) {
      const r = recorder();
      followers.push(r);
      f.subscribe('busy', r.listener, start);
      await new Promise((resolve) => setTimeout(resolve, 5 * k));
    }
    const written = await writing;
    for (const r of followers) await vi.waitFor(() => expect(r.ids()).toEqual(written));
  });

  it('tells a gap for an id trimmed from the log, and for one that is no event id (an old numeric id): reset, then on', async () => {
    const { write, feed } = await setup({ length: 10, ttlMs: 60_000 });
    const first = await write('trim', 1);
    let all = first;
    for (let w = 0; w < 3; w++) all = all.concat(await write('trim', 100));
    const f = await feed();
    const trimmed = recorder();
    f.subscribe('trim', trimmed.listener, first[0]);
    await vi.waitFor(() => expect(trimmed.batches).toHaveLength(1));
    const [reset] = trimmed.batches;
    expect(reset).toMatchObject({ gap: true, gapAfter: first[0], replay: true });
    // What the log still keeps follows the reset: the newest entries, in order.
    expect(reset!.events.length).toBeGreaterThanOrEqual(10);
    expect(reset!.events.map((e) => e.id)).toEqual(all.slice(-reset!.events.length));

    for (const bad of ['42', 'nonsense']) {
      const r = recorder();
      f.subscribe('trim', r.listener, bad);
      await vi.waitFor(() => expect(r.batches).toEqual([{ events: [], gap: true, gapAfter: bad, replay: true }]));
      const next = await write('trim', 1);
      await vi.waitFor(() => expect(r.ids()).toEqual(next));
    }
  });

  it('catches up from the log after its subscriber connection is killed: what was published meanwhile arrives once', async () => {
    const { node, write, feed } = await setup();
    const f = await feed();
    const r = recorder();
    // Written once it follows (a write before that is before the stream, for a stream without Last-Event-ID).
    await f.subscribe('kill', r.listener).following;
    const before = await write('kill', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual(before));
    // Pub/sub drops what is published while the connection is down; ioredis reconnects ~100 ms later.
    await (node.client as Redis).client('KILL', 'TYPE', 'pubsub');
    const meanwhile = await write('kill', 3);
    await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...meanwhile]), { timeout: 10_000 });
    // They came from the log (the catch-up), not from the channel.
    expect(r.batches.filter((b) => b.replay).flatMap((b) => b.events.map((e) => e.id))).toEqual(meanwhile);
    const after = await write('kill', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...meanwhile, ...after]), { timeout: 10_000 });
    expect(r.gaps()).toEqual([]);
  });

  it('keeps a stream whose reads fail open, and delivers its replay once a read works', async () => {
    const { write, feed } = await setup();
    const ids = await write('flaky', 3);
    const real = await clients.connect();
    let failures = 2;
    const flaky = new Proxy(real, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if ((prop === 'xrange' || prop === 'xrevrange') && failures > 0)
          return () => {
            failures--;
            return Promise.reject(new Error('Connection is closed.'));
          };
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const f = await feed(flaky);
    const r = recorder();
    f.subscribe('flaky', r.listener, ids[0]);
    await vi.waitFor(() => expect(r.ids()).toEqual(ids.slice(1)), { timeout: 5_000 });
    expect(failures).toBe(0);
    const live = await write('flaky', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual([...ids.slice(1), ...live]));
  });

  it("subscribes a home's channel while a local stream follows it, once for many, and unsubscribes when the last leaves", async () => {
    const { keys, node, feed } = await setup();
    const f = await feed();
    const channel = keys.eventsChannel(shardOfHome('sub', SHARDS), 'sub');
    const subscribed = async (): Promise<number> => {
      const [, n] = (await (node.client as Redis).pubsub('NUMSUB', channel)) as [string, number];
      return Number(n);
    };
    const a = f.subscribe('sub', () => {});
    const b = f.subscribe('sub', () => {});
    await vi.waitFor(async () => expect(await subscribed()).toBe(1));
    expect(f.followed).toBe(1);
    a.unsubscribe();
    a.unsubscribe(); // twice: nothing more
    expect(f.followed).toBe(1);
    b.unsubscribe();
    expect(f.followed).toBe(0);
    await vi.waitFor(async () => expect(await subscribed()).toBe(0));
  });

  // Last: it stops the file's redis-server.
  it('keeps streams open while Redis is down and catches up once it is back, with no event twice', async () => {
    const { keys, feed } = await setup();
    const f = await feed();
    const r = recorder();
    await f.subscribe('outage', r.listener).following;
    const shard = shardOfHome('outage', SHARDS);
    const key = keys.events(shard, 'outage');
    const channel = keys.eventsChannel(shard, 'outage');
    // Written as the fence script does (XADD, then PUBLISH of [[id, at, entry]]), from a plain client.
    const writer = new Redis(redis.url, { maxRetriesPerRequest: null });
    writer.on('error', () => {});
    const emit = async (i: number): Promise<string> => {
      const entry = { topic: 'o', data: { i } };
      const id = (await writer.xadd(key, '*', 'at', '1', 'e', JSON.stringify(entry)))!;
      await writer.publish(channel, JSON.stringify([[id, 1, entry]]));
      return id;
    };
    const before = [await emit(1)];
    await vi.waitFor(() => expect(r.ids()).toEqual(before));
    redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.start();
    // Written as soon as Redis is back: some before the feed has resubscribed (caught up), some after (live).
    const after: string[] = [];
    for (let i = 2; i <= 6; i++) {
      after.push(await emit(i));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...after]), { timeout: 15_000 });
    writer.disconnect();
  });
});
