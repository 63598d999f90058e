/** RedisEventFeed over a real redis-server: replay after an id, live delivery, gaps, catch-up after a lost connection or an outage. */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfHome } from '../../../cluster/shard-of.ts';
import type { FeedBatch } from '../../../edge-api/events/home-event-feed.ts';
import { RedisEventFeed, REPLAY_PAGE } from '../../../edge-api/events/redis-event-feed.ts';
import { compareEventIds } from '../../../edge-api/events/event-id.ts';
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
  const feed = async (client?: RedisClient, options: { checkEveryMs?: number } = {}): Promise<RedisEventFeed> => {
    const f = new RedisEventFeed({
      client: client ?? (await clients.connect()),
      keys,
      shardOfHome: (h) => shardOfHome(h, SHARDS),
      logger: silentLogger,
      retryMs: 100,
      logLength: retention.length,
      ...options,
    });
    feeds.push(f);
    return f;
  };
  /** Appends `n` entries to the log of `homeId` as a window would, but announces none (announcements lost). */
  const writeUnannounced = async (homeId: string, n = 1): Promise<string[]> => {
    const key = keys.events(shardOfHome(homeId, SHARDS), homeId);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const entry = JSON.stringify({ topic: 'quiet', data: { i } });
      ids.push((await node.client.xadd(key, 'MAXLEN', '~', String(retention.length), '*', 'at', '1', 'e', entry))!);
    }
    return ids;
  };
  return { keys, node, store, write, writeUnannounced, feed };
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

  it('catches up from the log when an announcement was lost: the next one names an id it never saw', async () => {
    const { write, writeUnannounced, feed } = await setup();
    const f = await feed();
    const r = recorder();
    await f.subscribe('lost', r.listener).following;
    const before = await write('lost', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual(before));
    const quiet = await writeUnannounced('lost', 2);
    const next = await write('lost', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...quiet, ...next]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.ids()).toEqual([...before, ...quiet, ...next]);
    expect(r.gaps()).toEqual([]);
  });

  it('finds an entry never announced, with none after it, by its periodic check of the newest id', async () => {
    const { write, writeUnannounced, feed } = await setup();
    const f = await feed(undefined, { checkEveryMs: 100 });
    const r = recorder();
    await f.subscribe('tail', r.listener).following;
    const before = await write('tail', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual(before));
    const quiet = await writeUnannounced('tail', 1);
    await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...quiet]), { timeout: 5_000 });
    expect(r.gaps()).toEqual([]);
  });

  it('moves a Last-Event-ID beyond the log (another log, a tail a failover lost) into it: a reset, then every new event', async () => {
    const { write, feed } = await setup();
    await write('ahead', 3);
    const f = await feed();
    const r = recorder();
    f.subscribe('ahead', r.listener, '999999999999999-0');
    await vi.waitFor(() => expect(r.batches).toEqual([{ events: [], gap: true, gapAfter: '999999999999999-0', replay: true }]));
    const next = await write('ahead', 2);
    await vi.waitFor(() => expect(r.ids()).toEqual(next));
    // And on an empty log.
    const empty = recorder();
    f.subscribe('ahead-empty', empty.listener, '999999999999999-0');
    await vi.waitFor(() => expect(empty.gaps()).toHaveLength(1));
    const first = await write('ahead-empty', 1);
    await vi.waitFor(() => expect(empty.ids()).toEqual(first));
  });

  it('tells a gap when entries after a position that is no entry were trimmed before they were read (retention 10, 300 unseen)', async () => {
    const { write, writeUnannounced, feed } = await setup({ length: 10, ttlMs: 60_000 });
    const f = await feed();
    const r = recorder();
    // An empty log: the follower's position is no entry (nothing to find when it catches up).
    await f.subscribe('gone', r.listener).following;
    await writeUnannounced('gone', 300);
    const next = await write('gone', 1);
    await vi.waitFor(() => expect(r.gaps()).toHaveLength(1));
    expect(r.gaps()[0]).toMatchObject({ gap: true, gapAfter: null, replay: true });
    await vi.waitFor(() => expect(r.ids().at(-1)).toBe(next[0]));
    const ids = r.ids();
    expect(ids.length).toBeLessThan(300);
    expect([...ids].sort(compareEventIds)).toEqual(ids);
  });

  it('reads a long replay a page at a time (XRANGE with COUNT), the next page once the subscriber drained the last', async () => {
    const { write, feed } = await setup({ length: 5_000, ttlMs: 60_000 });
    const written = await write('long', 1_000);
    const client = await clients.connect();
    const xrange = vi.spyOn(client, 'xrange');
    const f = await feed(client);
    const r = recorder();
    const sub = f.subscribe('long', r.listener, written[0]);
    await sub.following;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.ids()).toEqual(written.slice(1, 1 + REPLAY_PAGE));
    for (const call of xrange.mock.calls) expect(call.slice(3)).toEqual(['COUNT', REPLAY_PAGE + 1]);
    let pages = 1;
    while (r.ids().length < written.length - 1) {
      const had = r.ids().length;
      sub.drained();
      await vi.waitFor(() => expect(r.ids().length).toBeGreaterThan(had));
      expect(r.ids().length - had).toBeLessThanOrEqual(REPLAY_PAGE);
      pages++;
    }
    expect(r.ids()).toEqual(written.slice(1));
    expect(pages).toBe(Math.ceil(999 / REPLAY_PAGE));
    // Then live.
    sub.drained();
    const live = await write('long', 1);
    await vi.waitFor(() => expect(r.ids().at(-1)).toBe(live[0]));
  });

  it('catches up after a lost connection with one read of the newest id per home, not one read per stream', async () => {
    const { keys, node, write, feed } = await setup();
    const client = await clients.connect();
    const f = await feed(client);
    const followers = Array.from({ length: 5 }, () => recorder());
    for (const r of followers) await f.subscribe('many', r.listener).following;
    const before = await write('many', 1);
    for (const r of followers) await vi.waitFor(() => expect(r.ids()).toEqual(before));
    const xrange = vi.spyOn(client, 'xrange');
    const xrevrange = vi.spyOn(client, 'xrevrange');
    const channel = keys.eventsChannel(shardOfHome('many', SHARDS), 'many');
    const sub = (f as unknown as { sub: Redis }).sub;
    const back = new Promise<void>((resolve) => sub.once('ready', () => resolve()));
    await (node.client as Redis).client('KILL', 'TYPE', 'pubsub');
    await back;
    await vi.waitFor(async () => {
      const [, n] = (await (node.client as Redis).pubsub('NUMSUB', channel)) as [string, number];
      expect(Number(n)).toBe(1);
    });
    await vi.waitFor(() => expect(xrevrange).toHaveBeenCalledTimes(1));
    // Nothing was missed: no stream reads the log.
    expect(xrange).not.toHaveBeenCalled();
    const after = await write('many', 1);
    for (const r of followers) await vi.waitFor(() => expect(r.ids()).toEqual([...before, ...after]));
    expect(xrange).not.toHaveBeenCalled();
  });

  it('leaves no subscription behind for a home unfollowed while its subscriber connection is down', async () => {
    const { keys, node, feed } = await setup();
    const f = await feed();
    const numsub = async (home: string): Promise<number> => {
      const [, n] = (await (node.client as Redis).pubsub('NUMSUB', keys.eventsChannel(shardOfHome(home, SHARDS), home))) as [
        string,
        number,
      ];
      return Number(n);
    };
    await f.subscribe('stays', () => {}).following;
    const leaving = f.subscribe('leaves', () => {});
    await leaving.following;
    expect(await numsub('leaves')).toBe(1);
    const sub = (f as unknown as { sub: Redis }).sub;
    // Unfollowed as the connection drops, before it is back.
    sub.once('close', () => leaving.unsubscribe());
    await (node.client as Redis).client('KILL', 'TYPE', 'pubsub');
    await vi.waitFor(async () => expect(await numsub('stays')).toBe(1), { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await numsub('leaves')).toBe(0);
  });

  it('keeps windows written, and followers served (from the log), for a writer whose ACL user may not publish', async () => {
    const { keys, node, feed } = await setup();
    await (node.client as Redis).call('ACL', 'SETUSER', 'nopublish', 'on', '>secret', '~*', '+@all', 'resetchannels');
    const writerClient = new Redis(redis.url, { username: 'nopublish', password: 'secret', lazyConnect: true });
    await writerClient.connect();
    try {
      const writer = new RedisStore({
        client: writerClient,
        keys,
        shardOf: (id) => shardOfHome(id, SHARDS),
        fenceToken: (s) => node.leases.token(s),
        onFenced: () => {},
        registry: new Registry(),
        logger: silentLogger,
      });
      const shard = shardOfHome('acl', SHARDS);
      await expect(writerClient.publish(keys.eventsChannel(shard, 'acl'), 'x')).rejects.toThrow(/NOPERM/);
      const f = await feed(undefined, { checkEveryMs: 100 });
      const r = recorder();
      await f.subscribe('acl', r.listener).following;
      await writer.commit(shard, [], [{ log: 'acl', at: 1, entry: { topic: 'a', data: 1 } }]);
      await writer.commit(shard, [], [{ log: 'acl', at: 2, entry: { topic: 'a', data: 2 } }]);
      const ids = (await node.client.xrange(keys.events(shard, 'acl'), '-', '+')).map(([id]) => id);
      expect(ids).toHaveLength(2);
      await vi.waitFor(() => expect(r.ids()).toEqual(ids), { timeout: 5_000 });
    } finally {
      writerClient.disconnect();
    }
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
      // The format of an older writer (entries only, no `p`): still followed.
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
