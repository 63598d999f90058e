import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { FencedError, RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { counterBehavior } from '../counter-behavior.ts';

const SHARDS = 16;
const shardOf = shardOfActor(SHARDS);
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}k${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/** The journal list of an actor as Redis holds it, decoded. */
async function journalInRedis(client: Awaited<ReturnType<RedisClients['connect']>>, keys: KeyLayout, id: string) {
  const raw = await client.lrange(keys.journal(shardOf(id), id), 0, -1);
  return raw.map((e) => JSON.parse(e) as { seq: number });
}

describe('RedisStore', () => {
  it('writes journal entries and snapshots, trims the journal behind a snapshot, and recovers', async () => {
    const { store } = await clients.node(freshKeys());
    const id = 'device:h1:d1';
    await store.write(id, {
      events: [
        { seq: 1, at: 10, msg: { a: 1 } },
        { seq: 2, at: 11, msg: { a: 2 } },
      ],
    });
    expect(await store.recover(id)).toEqual({
      events: [
        { seq: 1, at: 10, msg: { a: 1 } },
        { seq: 2, at: 11, msg: { a: 2 } },
      ],
    });
    await store.write(id, {
      events: [
        { seq: 3, at: 12, msg: { a: 3 } },
        { seq: 4, at: 13, msg: { a: 4 } },
      ],
      snapshot: { seq: 3, state: { n: 3 } },
    });
    expect(await store.recover(id)).toEqual({ snapshot: { seq: 3, state: { n: 3 } }, events: [{ seq: 4, at: 13, msg: { a: 4 } }] });
  });

  it('rejects a write with a stale fence token and the newer state stands', async () => {
    const keys = freshKeys();
    const old = await clients.node(keys, { owner: 'n1' });
    const id = 'home:h9';
    await old.store.write(id, { events: [{ seq: 1, at: 1, msg: 'old-1' }] });
    // The same node id restarted elsewhere (or a successor): it takes the leases with new tokens.
    const successor = await clients.node(keys, { owner: 'n1' });
    await successor.store.write(id, { events: [{ seq: 2, at: 2, msg: 'new-2' }] });
    await expect(old.store.write(id, { events: [{ seq: 2, at: 3, msg: 'old-2' }] })).rejects.toBeInstanceOf(FencedError);
    expect(old.fenced).toEqual([shardOf(id)]);
    expect((await successor.store.recover(id)).events.map((e) => e.msg)).toEqual(['old-1', 'new-2']);
  });
});

describe('RedisStore journal continuity', () => {
  it('refuses a write that does not start right after the journaled seq, and writes nothing of it', async () => {
    const { store } = await clients.node(freshKeys());
    const id = 'device:h1:late';
    await store.write(id, {
      events: [
        { seq: 1, at: 1, msg: 'one' },
        { seq: 2, at: 2, msg: 'two' },
      ],
    });
    // A late write that lands again, or one from an actor that missed a landed write: refused.
    await expect(store.write(id, { events: [{ seq: 2, at: 3, msg: 'two again' }] })).rejects.toThrow(/SEQ 2/);
    await expect(store.write(id, { events: [{ seq: 4, at: 4, msg: 'four' }] })).rejects.toThrow(/SEQ 2/);
    await store.write(id, { events: [{ seq: 3, at: 5, msg: 'three' }] });
    expect((await store.recover(id)).events.map((e) => e.msg)).toEqual(['one', 'two', 'three']);
  });

  it('skips a snapshot older than the stored one, so a late snapshot cannot hide newer entries', async () => {
    const { store } = await clients.node(freshKeys());
    const id = 'device:h1:snap';
    await store.write(id, { events: [1, 2, 3, 4].map((seq) => ({ seq, at: seq, msg: seq })), snapshot: { seq: 4, state: 'at-4' } });
    await store.write(id, { events: [{ seq: 5, at: 5, msg: 5 }], snapshot: { seq: 2, state: 'at-2' } });
    expect(await store.recover(id)).toEqual({ snapshot: { seq: 4, state: 'at-4' }, events: [{ seq: 5, at: 5, msg: 5 }] });
  });
});

describe('RedisStore journal trimming', () => {
  it('keeps in the Redis list only the entries after the latest snapshot', async () => {
    const keys = freshKeys();
    const { store, client } = await clients.node(keys);
    const id = 'device:h2:lamp';
    const entry = (seq: number) => ({ seq, at: seq * 10, msg: { type: 'report', seq } });
    await store.write(id, { events: [1, 2, 3, 4, 5].map(entry) });
    expect((await journalInRedis(client, keys, id)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);

    // A snapshot at 6 written with entries 6 and 7: only 7 stays.
    await store.write(id, { events: [entry(6), entry(7)], snapshot: { seq: 6, state: { v: 6 } } });
    expect((await journalInRedis(client, keys, id)).map((e) => e.seq)).toEqual([7]);
    expect(JSON.parse((await client.get(keys.snapshot(shardOf(id), id)))!)).toEqual({ seq: 6, state: { v: 6 } });

    await store.write(id, { events: [entry(8), entry(9)] });
    expect((await journalInRedis(client, keys, id)).map((e) => e.seq)).toEqual([7, 8, 9]);

    // A snapshot covering everything (passivation): the list is gone.
    await store.write(id, { events: [], snapshot: { seq: 9, state: { v: 9 } } });
    expect(await client.exists(keys.journal(shardOf(id), id))).toBe(0);
    expect(await store.recover(id)).toEqual({ snapshot: { seq: 9, state: { v: 9 } }, events: [] });
  });

  it('trims behind the periodic and final snapshots of an actor host', async () => {
    const keys = freshKeys();
    const { store, client } = await clients.node(keys);
    const host = new ActorHost(
      { behaviors: [counterBehavior], store, logger: silentLogger, registry: new Registry() },
      { snapshotEvery: 3 },
    );
    const id = 'counter:trim';
    for (let i = 1; i <= 7; i++) expect(await host.ask(id, { type: 'add', n: i })).toEqual({ ok: true, value: (i * (i + 1)) / 2 });
    // Snapshots at 3 and 6; the list holds what came after the last one.
    expect((await journalInRedis(client, keys, id)).map((e) => e.seq)).toEqual([7]);
    expect(JSON.parse((await client.get(keys.snapshot(shardOf(id), id)))!)).toMatchObject({ seq: 6, state: { count: 21 } });
    await host.close(); // final snapshot at 7
    expect(await client.llen(keys.journal(shardOf(id), id))).toBe(0);
    expect(JSON.parse((await client.get(keys.snapshot(shardOf(id), id)))!)).toMatchObject({ seq: 7, state: { count: 28 } });
  });
});

describe('RedisStore failure isolation', () => {
  it('fails only the write that cannot be encoded; the rest of its window is written', async () => {
    const { store } = await clients.node(freshKeys());
    // Same home, so same shard and same script call.
    const good = store.write('device:h3:a', { events: [{ seq: 1, at: 1, msg: 'fine' }] });
    const bad = store.write('device:h3:b', { events: [{ seq: 1, at: 1, msg: { big: 10n } }] });
    const other = store.write('home:h4', { events: [], snapshot: { seq: 1, state: { big: 1n } } });
    const [g, b, o] = await Promise.allSettled([good, bad, other]);
    expect(g.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/cannot encode the write of device:h3:b/) } });
    expect(o).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/cannot encode the write of home:h4/) } });
    expect((await store.recover('device:h3:a')).events).toEqual([{ seq: 1, at: 1, msg: 'fine' }]);
    expect(await store.recover('device:h3:b')).toEqual({ events: [] });
    // The store keeps working.
    await store.write('device:h3:b', { events: [{ seq: 1, at: 2, msg: 'now fine' }] });
    expect((await store.recover('device:h3:b')).events).toEqual([{ seq: 1, at: 2, msg: 'now fine' }]);
  });

  it('still writes after close() flushed the open window', async () => {
    const { store } = await clients.node(freshKeys());
    const before = store.write('home:c1', { events: [{ seq: 1, at: 1, msg: 'before' }] });
    await store.close();
    await expect(before).resolves.toBeUndefined();
    await store.write('home:c1', { events: [{ seq: 2, at: 2, msg: 'after' }] });
    expect((await store.recover('home:c1')).events.map((e) => e.msg)).toEqual(['before', 'after']);
  });

  it('fails the window instead of hanging when a dependency throws', async () => {
    const { client } = await clients.node(freshKeys());
    const store = new RedisStore({
      client,
      keys: freshKeys(),
      shardOf,
      fenceToken: () => {
        throw new Error('lease table bug');
      },
      onFenced: () => {},
      registry: new Registry(),
      logger: silentLogger,
    });
    await expect(store.write('home:x1', { events: [{ seq: 1, at: 1, msg: 1 }] })).rejects.toThrow('lease table bug');
  });

  it('answers callers even when the fence handler throws', async () => {
    const keys = freshKeys();
    const old = await clients.node(keys, { owner: 'n1' });
    await clients.node(keys, { owner: 'n1' }); // takes every shard with newer tokens
    (old.leases as unknown as { lost: () => void }).lost = () => {
      throw new Error('handler bug');
    };
    await expect(old.store.write('home:f1', { events: [{ seq: 1, at: 1, msg: 'x' }] })).rejects.toBeInstanceOf(FencedError);
  });
});
