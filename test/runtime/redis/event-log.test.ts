/** The event logs the fence script writes with each window: atomic with the step, capped, expiring, announced once per log per window. */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compareEventIds } from '../../../edge-api/events/event-id.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { LogAppend } from '../../../runtime/persistence-port.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { FencedError, RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { counterBehavior, counterTellOf } from '../counter-behavior.ts';

const SHARDS = 16;
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
const subscribers: Redis[] = [];
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}ev${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  for (const s of subscribers) s.disconnect();
  await redis.stop();
});

/** Every message published on `channel` from now on, as parsed JSON. */
async function listen(channel: string): Promise<unknown[][]> {
  const sub = new Redis(redis.url);
  subscribers.push(sub);
  const got: unknown[][] = [];
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) got.push((JSON.parse(message) as { e: unknown[] }).e);
  });
  await sub.subscribe(channel);
  return got;
}

/** Every announcement's `p` (the log's newest id before its window) on `channel` from now on. */
async function listenPrev(channel: string): Promise<string[]> {
  const sub = new Redis(redis.url);
  subscribers.push(sub);
  const got: string[] = [];
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) got.push((JSON.parse(message) as { p: string }).p);
  });
  await sub.subscribe(channel);
  return got;
}

/** A log's entries as Redis holds them: id, at and the decoded entry. */
async function logOf(client: RedisClient, key: string) {
  const raw = await client.xrange(key, '-', '+');
  return raw.map(([id, fields]) => ({
    id,
    at: Number(fields[fields.indexOf('at') + 1]),
    entry: JSON.parse(fields[fields.indexOf('e') + 1]!),
  }));
}

describe('event logs written with the window', () => {
  it("writes a step's log entries in the step's own script call, in step order, with growing ids, and announces them once per window", async () => {
    const keys = freshKeys();
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const effects: unknown[] = [];
    const host = new ActorHost({
      behaviors: [counterBehavior],
      store,
      logger: silentLogger,
      registry: new Registry(),
      tellOf: counterTellOf,
      // Every `added` effect is an event of log "L" (in the window's shard).
      logOf: (e) => ('added' in (e as object) ? { log: 'L', entry: e } : undefined),
      onEffects: (_from, e) => effects.push(...e),
    });
    const shard = store.shardOf('counter:h1:a');
    const key = keys.events(shard, 'L');
    const announced = await listen(keys.eventsChannel(shard, 'L'));
    await host.ask('counter:h1:a', { type: 'get' });
    await host.ask('counter:h1:b', { type: 'get' });
    const calls = vi.spyOn(client as RedisClient & { fencedWrite: (...args: string[]) => Promise<string[]> }, 'fencedWrite');
    // a's relay and the add of b it causes share one window: one call, b's entry in it.
    expect(await host.ask('counter:h1:a', { type: 'relay', to: 'counter:h1:b', n: 5 })).toEqual({ ok: true, value: 5 });
    expect(calls).toHaveBeenCalledTimes(1);
    const first = await logOf(client, key);
    expect(first.map((e) => e.entry)).toEqual([{ added: 5 }]);
    expect(Number.isSafeInteger(first[0]!.at) && first[0]!.at > 0).toBe(true);
    await vi.waitFor(() => expect(announced).toEqual([first.map((e) => [e.id, e.at, e.entry])]));
    // The effect still runs once the window is durable.
    expect(effects).toEqual([{ added: 5 }]);

    // Two steps of one turn: one window, one call, two entries in step order, one announcement.
    const both = await Promise.all([host.ask('counter:h1:a', { type: 'add', n: 1 }), host.ask('counter:h1:b', { type: 'add', n: 2 })]);
    expect(both.every((r) => r.ok)).toBe(true);
    expect(calls).toHaveBeenCalledTimes(2);
    const log = await logOf(client, key);
    expect(log.map((e) => e.entry)).toEqual([{ added: 5 }, { added: 1 }, { added: 2 }]);
    for (let i = 1; i < log.length; i++) expect(compareEventIds(log[i]!.id, log[i - 1]!.id)).toBeGreaterThan(0);
    await vi.waitFor(() => expect(announced).toHaveLength(2));
    expect(announced[1]).toEqual(log.slice(1).map((e) => [e.id, e.at, e.entry]));
    await host.close();
  });

  it('writes no entry for a window that is not written: fenced out, or refused for its journal position', async () => {
    const keys = freshKeys();
    const old = await clients.node(keys, { owner: 'n1', shards: SHARDS });
    const id = 'home:h9';
    const shard = old.store.shardOf(id);
    const key = keys.events(shard, 'h9');
    const appends: LogAppend[] = [{ log: 'h9', at: 1, entry: { topic: 't', data: 1 } }];
    await old.store.commit(shard, [{ actorId: id, batch: { events: [{ seq: 1, at: 1, msg: 'one' }] } }], appends);
    expect(await logOf(old.client, key)).toHaveLength(1);
    const announced = await listen(keys.eventsChannel(shard, 'h9'));
    const successor = await clients.node(keys, { owner: 'n1', shards: SHARDS });
    await expect(
      old.store.commit(
        shard,
        [{ actorId: id, batch: { events: [{ seq: 2, at: 2, msg: 'stale' }] } }],
        [{ log: 'h9', at: 2, entry: 'stale' }],
      ),
    ).rejects.toBeInstanceOf(FencedError);
    // Refused for its position (seq 5 does not follow 1): all or nothing, the entry too.
    await expect(
      successor.store.commit(
        shard,
        [{ actorId: id, batch: { events: [{ seq: 5, at: 3, msg: 'gap' }] } }],
        [{ log: 'h9', at: 3, entry: 'x' }],
      ),
    ).rejects.toThrow(/not written/);
    expect((await logOf(old.client, key)).map((e) => e.entry)).toEqual([{ topic: 't', data: 1 }]);
    // And nothing was announced for them (a marker write goes through after them).
    await successor.store.commit(
      shard,
      [{ actorId: id, batch: { events: [{ seq: 2, at: 4, msg: 'two' }] } }],
      [{ log: 'h9', at: 4, entry: 'ok' }],
    );
    await vi.waitFor(() => expect(announced).toHaveLength(1));
    expect(announced[0]!.map((e) => (e as unknown[])[2])).toEqual(['ok']);
  });

  it('caps each log at about EVENT_LOG_LENGTH entries and expires it EVENT_LOG_TTL_MS after its last window', async () => {
    const keys = freshKeys();
    const { client, leases } = await clients.node(keys, { shards: SHARDS });
    const store = new RedisStore({
      client,
      keys,
      shardOf: () => 3,
      fenceToken: (s) => leases.token(s),
      onFenced: () => {},
      registry: new Registry(),
      logger: silentLogger,
      logRetention: { length: 10, ttlMs: 30_000 },
    });
    const key = keys.events(3, 'big');
    for (let w = 0; w < 10; w++) {
      const appends = Array.from({ length: 100 }, (_, i) => ({ log: 'big', at: 1_000 + w * 100 + i, entry: { n: w * 100 + i } }));
      await store.commit(3, [], appends);
    }
    const log = await logOf(client, key);
    // MAXLEN ~ trims whole stream nodes (100 entries by default): about 10 kept, never all 1,000.
    expect(log.length).toBeGreaterThanOrEqual(10);
    expect(log.length).toBeLessThanOrEqual(10 + 100);
    // The newest are kept, in order, with growing ids.
    expect(log.at(-1)!.entry).toEqual({ n: 999 });
    for (let i = 1; i < log.length; i++) expect(compareEventIds(log[i]!.id, log[i - 1]!.id)).toBeGreaterThan(0);
    const ttl = await client.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('chains its announcements: each names the newest id the log had before its window', async () => {
    const keys = freshKeys();
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const shard = store.shardOf('home:h5');
    const key = keys.events(shard, 'h5');
    const prevs = await listenPrev(keys.eventsChannel(shard, 'h5'));
    const entry = (i: number): LogAppend => ({ log: 'h5', at: 1, entry: { topic: 't', data: i } });
    await store.commit(shard, [], [entry(1), entry(2)]);
    // Written outside a window (an announcement that never came): the next one still names it.
    const stray = (await client.xadd(key, '*', 'at', '1', 'e', '{}'))!;
    await store.commit(shard, [], [entry(3)]);
    const ids = (await client.xrange(key, '-', '+')).map(([id]) => id);
    await vi.waitFor(() => expect(prevs).toEqual(['', stray]));
    expect(ids[1]).not.toBe(stray);
  });

  it('writes the window without the entries of a log whose key holds another type, and says so (metric, log)', async () => {
    const keys = freshKeys();
    const { client, store, registry } = await clients.node(keys, { shards: SHARDS });
    const id = 'home:h3';
    const shard = store.shardOf(id);
    await client.set(keys.events(shard, 'h3'), 'not a stream');
    await store.commit(
      shard,
      [{ actorId: id, batch: { events: [{ seq: 1, at: 1, msg: 'one' }] } }],
      [
        { log: 'h3', at: 1, entry: 1 },
        { log: 'h3b', at: 1, entry: 2 },
      ],
    );
    expect(await store.recover(id)).toMatchObject({ events: [{ seq: 1, msg: 'one' }] });
    expect(await client.get(keys.events(shard, 'h3'))).toBe('not a stream');
    expect((await logOf(client, keys.events(shard, 'h3b'))).map((e) => e.entry)).toEqual([2]);
    const skipped = await registry.getSingleMetric('iot_event_log_skipped_total')!.get();
    expect(skipped.values).toEqual([expect.objectContaining({ labels: { reason: 'wrongtype' }, value: 1 })]);
  });

  it('writes the window without an entry it cannot encode (the host refuses those in their steps)', async () => {
    const keys = freshKeys();
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const id = 'home:h4';
    const shard = store.shardOf(id);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await store.commit(
      shard,
      [{ actorId: id, batch: { events: [{ seq: 1, at: 1, msg: 'one' }] } }],
      [
        { log: 'h4', at: 1, entry: cyclic },
        { log: 'h4', at: 1, entry: 'kept' },
      ],
    );
    expect(await store.recover(id)).toMatchObject({ events: [{ seq: 1, msg: 'one' }] });
    expect((await logOf(client, keys.events(shard, 'h4'))).map((e) => e.entry)).toEqual(['kept']);
  });
});
