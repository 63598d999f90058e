/** The ring document on a real Redis: create once, compare-and-set, watch by pub/sub and polling; and ring change validation. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RingDoc, RingNode } from '../../cluster/cluster-types.ts';
import { applyChange, RingChangeError, RingStore, type RingChange } from '../../cluster/ring-store.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../runtime/redis/redis-connection.ts';
import { mulberry32, pick, randomInt } from '../support/prng.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

let redis: TestRedis;
let client: RedisClient;
let seq = 0;

beforeAll(async () => {
  redis = await startTestRedis();
  client = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
  await connectRedis(client);
});

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

const node = (id: string, weight = 1, state: RingNode['state'] = 'active'): RingNode => ({ id, weight, state });

/** A store on a cluster name no other test uses. */
function fresh(): { store: RingStore; keys: KeyLayout } {
  const keys = new KeyLayout(`${redis.cluster}r${seq++}`);
  return { store: new RingStore(client, keys, silentLogger), keys };
}

async function subscribers(channel: string): Promise<number> {
  const reply = (await client.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return reply[1];
}

/** Writes a ring document directly: no CAS, no announcement. */
async function writeDirectly(keys: KeyLayout, doc: RingDoc): Promise<void> {
  await client.set(keys.ring(), JSON.stringify(doc));
}

describe('RingStore', () => {
  it('reads nothing before the ring is created', async () => {
    const { store } = fresh();
    expect(await store.read()).toBeUndefined();
  });

  it('creates the ring at epoch 1 once; a second create returns the stored ring unchanged', async () => {
    const { store } = fresh();
    const first = await store.create({ shardCount: 64, nodes: [node('a')] });
    expect(first).toEqual({ epoch: 1, shardCount: 64, nodes: [node('a')] });
    const second = await store.create({ shardCount: 128, nodes: [node('b', 2)] });
    expect(second).toEqual(first);
    expect(await store.read()).toEqual(first);
  });

  it('lets exactly one of two concurrent writers with the same expected epoch win; the other gets the current ring', async () => {
    const { store, keys } = fresh();
    await store.create({ shardCount: 16, nodes: [node('a')] });
    const other = new RingStore(client, keys, silentLogger);
    const [r1, r2] = await Promise.all([
      store.compareAndSet(1, { nodes: [node('a'), node('b')] }),
      other.compareAndSet(1, { nodes: [node('a'), node('c')] }),
    ]);
    const wins = [r1, r2].filter((r) => r.ok);
    expect(wins).toHaveLength(1);
    const winner = wins[0]!.ok ? wins[0]!.doc : undefined;
    const loser = [r1, r2].find((r) => !r.ok)!;
    expect(winner?.epoch).toBe(2);
    expect(loser).toEqual({ ok: false, current: winner });
    expect(await store.read()).toEqual(winner);
  });

  it('increments the epoch by exactly 1 per change and never changes the shard count', async () => {
    const { store } = fresh();
    let doc = await store.create({ shardCount: 32, nodes: [node('a')] });
    for (let i = 0; i < 5; i++) {
      const r = await store.compareAndSet(doc.epoch, { nodes: [...doc.nodes, node(`n${i}`, i + 1)] });
      if (!r.ok) throw new Error('CAS refused');
      expect(r.doc.epoch).toBe(doc.epoch + 1);
      expect(r.doc.shardCount).toBe(32);
      doc = r.doc;
    }
    expect(doc.epoch).toBe(6);
    expect(await store.compareAndSet(3, { nodes: [node('z')] })).toEqual({ ok: false, current: doc });
    expect(await store.read()).toEqual(doc);
  });

  it('refuses a compare-and-set when there is no ring', async () => {
    const { store } = fresh();
    expect(await store.compareAndSet(1, { nodes: [node('a')] })).toEqual({ ok: false, current: undefined });
    expect(await store.read()).toBeUndefined();
  });

  it('stores weights exactly (no float rounding in the script) and an empty node list as a list', async () => {
    const { store } = fresh();
    await store.create({ shardCount: 8, nodes: [node('a')] });
    const weight = 0.1 + 0.2; // 0.30000000000000004: 17 significant digits
    const r = await store.compareAndSet(1, { nodes: [node('a', weight), node('b', 1e-9, 'draining')] });
    expect(r.ok && r.doc.nodes).toEqual([node('a', weight), node('b', 1e-9, 'draining')]);
    expect((await store.compareAndSet(2, { nodes: [] })).ok).toBe(true);
    expect(await store.read()).toEqual({ epoch: 3, shardCount: 8, nodes: [] });
  });

  it('rejects malformed nodes before touching Redis', async () => {
    const { store } = fresh();
    await store.create({ shardCount: 8, nodes: [node('a')] });
    await expect(store.compareAndSet(1, { nodes: [node('a'), node('a')] })).rejects.toThrow(RingChangeError);
    await expect(store.compareAndSet(1, { nodes: [node('a', 0)] })).rejects.toThrow(/positive finite/);
    await expect(store.create({ shardCount: 0, nodes: [] })).rejects.toThrow(/shardCount/);
    expect((await store.read())?.epoch).toBe(1);
  });

  it('announces each new epoch on the ring channel', async () => {
    const { store, keys } = fresh();
    await store.create({ shardCount: 8, nodes: [node('a')] });
    const sub = client.duplicate();
    const got: string[] = [];
    sub.on('message', (_ch: string, m: string) => got.push(m));
    await sub.connect();
    await sub.subscribe(keys.ringChannel());
    await store.compareAndSet(1, { nodes: [node('b')] });
    await store.compareAndSet(2, { nodes: [node('c')] });
    await vi.waitFor(() => expect(got).toEqual(['2', '3']), { timeout: 2_000, interval: 10 });
    sub.disconnect();
  });

  describe('watch', () => {
    it('reports the current ring at once, then a change by pub/sub (polling effectively off)', async () => {
      const { store, keys } = fresh();
      await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: RingDoc[] = [];
      const stop = store.watch((d) => seen.push(d), 3_600_000);
      await vi.waitFor(
        async () => {
          expect(seen.map((d) => d.epoch)).toEqual([1]);
          expect(await subscribers(keys.ringChannel())).toBe(1);
        },
        { timeout: 5_000, interval: 10 },
      );

      const r = await store.compareAndSet(1, { nodes: [node('a'), node('b')] });
      const t0 = Date.now();
      await vi.waitFor(() => expect(seen.map((d) => d.epoch)).toEqual([1, 2]), { timeout: 1_000, interval: 5 });
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(seen[1]).toEqual(r.ok && r.doc);
      await stop();
    });

    it('picks up a change that was never announced by polling', async () => {
      const { store, keys } = fresh();
      await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: number[] = [];
      const stop = store.watch((d) => seen.push(d.epoch), 50);
      await vi.waitFor(() => expect(seen).toEqual([1]), { timeout: 5_000, interval: 10 });

      await writeDirectly(keys, { epoch: 2, shardCount: 8, nodes: [node('b')] });
      await vi.waitFor(() => expect(seen).toEqual([1, 2]), { timeout: 5_000, interval: 10 });
      await stop();
    });

    it('never reports an older or the same epoch, whether announced or polled', async () => {
      const { store, keys } = fresh();
      let doc = await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: number[] = [];
      const stop = store.watch((d) => seen.push(d.epoch), 5);
      const reads = vi.spyOn(store, 'read');
      for (let i = 0; i < 30; i++) {
        const r = await store.compareAndSet(doc.epoch, { nodes: [node('a', i + 1)] });
        if (!r.ok) throw new Error('CAS refused');
        doc = r.doc;
      }
      await vi.waitFor(() => expect(seen.at(-1)).toBe(31), { timeout: 5_000, interval: 10 });
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);

      // An older document comes back (a restored backup) and is announced: neither path reports it.
      await writeDirectly(keys, { epoch: 7, shardCount: 8, nodes: [node('old')] });
      await client.publish(keys.ringChannel(), '7');
      const before = reads.mock.calls.length;
      await vi.waitFor(() => expect(reads.mock.calls.length).toBeGreaterThan(before + 3), { timeout: 5_000, interval: 10 });
      expect(seen.at(-1)).toBe(31);
      expect(new Set(seen).size).toBe(seen.length);
      await stop();
    });

    it('skips rings up to sinceEpoch', async () => {
      const { store } = fresh();
      await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: number[] = [];
      const stop = store.watch((d) => seen.push(d.epoch), 5, 1);
      const reads = vi.spyOn(store, 'read');
      await vi.waitFor(() => expect(reads.mock.calls.length).toBeGreaterThan(2), { timeout: 5_000, interval: 10 });
      expect(seen).toEqual([]);
      await store.compareAndSet(1, { nodes: [node('b')] });
      await vi.waitFor(() => expect(seen).toEqual([2]), { timeout: 5_000, interval: 10 });
      await stop();
    });

    it('stops: unsubscribes, closes its connection and reports nothing more', async () => {
      const { store, keys } = fresh();
      await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: number[] = [];
      const stop = store.watch((d) => seen.push(d.epoch), 5);
      await vi.waitFor(
        async () => {
          expect(seen).toEqual([1]);
          expect(await subscribers(keys.ringChannel())).toBe(1);
        },
        { timeout: 5_000, interval: 10 },
      );
      await stop();
      expect(await subscribers(keys.ringChannel())).toBe(0);
      await store.compareAndSet(1, { nodes: [node('b')] });
      await writeDirectly(keys, { epoch: 9, shardCount: 8, nodes: [node('c')] });
      // A fresh watcher sees the change: had the stopped one still been polling (every 5 ms), it would have too.
      const later: number[] = [];
      const stop2 = store.watch((d) => later.push(d.epoch), 5);
      await vi.waitFor(() => expect(later).toEqual([9]), { timeout: 5_000, interval: 10 });
      await stop2();
      expect(seen).toEqual([1]);
    });

    it('keeps delivering after a watcher callback throws', async () => {
      const { store } = fresh();
      await store.create({ shardCount: 8, nodes: [node('a')] });
      const seen: number[] = [];
      const stop = store.watch((d) => {
        seen.push(d.epoch);
        if (d.epoch === 1) throw new Error('boom');
      }, 20);
      await vi.waitFor(() => expect(seen).toEqual([1]), { timeout: 5_000, interval: 10 });
      await store.compareAndSet(1, { nodes: [node('b')] });
      await vi.waitFor(() => expect(seen).toEqual([1, 2]), { timeout: 5_000, interval: 10 });
      await stop();
    });
  });
});

describe('applyChange', () => {
  const ring = { nodes: [node('a'), node('b', 2), node('c', 1, 'draining')] };

  it('adds nodes as active with weight 1 by default, after the existing ones', () => {
    expect(applyChange(ring, { add: [{ id: 'd' }, { id: 'e', weight: 3 }] }).nodes).toEqual([...ring.nodes, node('d'), node('e', 3)]);
  });

  it('drains, removes and reweights in place', () => {
    expect(applyChange(ring, { drain: ['a'] }).nodes).toEqual([node('a', 1, 'draining'), node('b', 2), node('c', 1, 'draining')]);
    expect(applyChange(ring, { remove: ['c'] }).nodes).toEqual([node('a'), node('b', 2)]);
    expect(applyChange(ring, { weights: { b: 0.5, c: 4 } }).nodes).toEqual([node('a'), node('b', 0.5), node('c', 4, 'draining')]);
    expect(applyChange(ring, { add: [{ id: 'd' }], drain: ['a'], remove: ['c'], weights: { b: 5 } }).nodes).toEqual([
      node('a', 1, 'draining'),
      node('b', 5),
      node('d'),
    ]);
  });

  it('does not modify the ring it is given', () => {
    const copy = structuredClone(ring);
    applyChange(ring, { add: [{ id: 'd' }], drain: ['a'], remove: ['c'], weights: { b: 5 } });
    expect(ring).toEqual(copy);
  });

  const refused: [string, RingChange, RegExp][] = [
    ['an empty change', {}, /empty/],
    ['an empty change with empty parts', { add: [], drain: [], remove: [], weights: {} }, /empty/],
    ['draining an unknown node', { drain: ['x'] }, /drain node x: it is not in the ring/],
    ['removing an unknown node', { remove: ['x'] }, /remove node x: it is not in the ring/],
    ['reweighting an unknown node', { weights: { x: 2 } }, /reweight node x: it is not in the ring/],
    ['adding a node already in the ring', { add: [{ id: 'b' }] }, /add node b: it is already in the ring/],
    ['adding a node twice', { add: [{ id: 'd' }, { id: 'd' }] }, /node d is named more than once/],
    ['naming a node in two parts', { drain: ['a'], remove: ['a'] }, /node a is named more than once/],
    ['an empty node id', { add: [{ id: '' }] }, /non-empty/],
    ['a zero weight', { weights: { a: 0 } }, /weight of node a must be a positive finite number, got 0/],
    ['a negative weight', { add: [{ id: 'd', weight: -1 }] }, /weight of node d must be a positive finite number, got -1/],
    ['a NaN weight', { weights: { a: NaN } }, /got NaN/],
    ['an infinite weight', { weights: { a: Infinity } }, /got Infinity/],
    ['a weight that is a string', { weights: { a: '2' as unknown as number } }, /got 2/],
    ['removing the last active nodes', { remove: ['a', 'b'] }, /no active node/],
    ['draining the last active nodes', { drain: ['a', 'b'] }, /no active node/],
    ['a change that changes nothing', { drain: ['c'] }, /leaves the ring as it is/],
    ['reweighting to the same weight', { weights: { b: 2 } }, /leaves the ring as it is/],
  ];
  for (const [what, change, message] of refused) {
    it(`refuses ${what}`, () => {
      expect(() => applyChange(ring, change)).toThrow(RingChangeError);
      expect(() => applyChange(ring, change)).toThrow(message);
    });
  }

  it('gives RingChangeError a stable code', () => {
    try {
      applyChange(ring, {});
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ name: 'RingChangeError', code: 'invalid_ring_change' });
    }
  });

  it('keeps ids unique, weights positive and one node active over random change sequences (fixed seed)', () => {
    const rand = mulberry32(20240611);
    let doc: Pick<RingDoc, 'nodes'> = { nodes: [node('n0')] };
    let next = 1;
    let applied = 0;
    for (let step = 0; step < 2_000; step++) {
      const ids = doc.nodes.map((n) => n.id);
      const kind = randomInt(rand, 4);
      const change: RingChange =
        kind === 0 || ids.length === 0
          ? { add: [{ id: `n${next++}`, weight: 0.5 + randomInt(rand, 4) }] }
          : kind === 1
            ? { drain: [pick(rand, ids)] }
            : kind === 2
              ? { remove: [pick(rand, ids)] }
              : { weights: { [pick(rand, ids)]: randomInt(rand, 3) === 0 ? 0 : 1 + randomInt(rand, 5) } };
      try {
        doc = applyChange(doc, change);
        applied++;
      } catch (err) {
        expect(err).toBeInstanceOf(RingChangeError);
        continue;
      }
      expect(new Set(doc.nodes.map((n) => n.id)).size).toBe(doc.nodes.length);
      expect(doc.nodes.every((n) => Number.isFinite(n.weight) && n.weight > 0)).toBe(true);
      expect(doc.nodes.some((n) => n.state === 'active')).toBe(true);
    }
    expect(applied).toBeGreaterThan(500);
  });
});
