/** The ring document on a real Redis: create once, compare-and-set, watch by pub/sub and polling; and ring change validation. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RingDoc, RingNode } from '../../cluster/cluster-types.ts';
import { MAX_RING_NODES, MAX_RING_POINTS, MAX_STORED_WEIGHT, MAX_WEIGHT, POINTS_PER_WEIGHT } from '../../cluster/hash-ring.ts';
import { applyChange, decodeRing, RingChangeError, RingStore, type RingChange } from '../../cluster/ring-store.ts';
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
    // A write keeps weights up to MAX_STORED_WEIGHT (applyChange holds new ones to MAX_WEIGHT); a new ring is strict.
    await expect(store.compareAndSet(1, { nodes: [node('a', MAX_STORED_WEIGHT * 2)] })).rejects.toThrow(`at most ${MAX_STORED_WEIGHT}`);
    await expect(store.create({ shardCount: 8, nodes: [node('b', 1e308)] })).rejects.toThrow(RingChangeError);
    await expect(store.create({ shardCount: 8, nodes: [node('b', MAX_WEIGHT + 1)] })).rejects.toThrow(`at most ${MAX_WEIGHT}`);
    await expect(store.create({ shardCount: 0, nodes: [] })).rejects.toThrow(/shardCount/);
    expect((await store.read())?.epoch).toBe(1);
  });

  it('reads a ring stored with a weight above MAX_WEIGHT, warning once naming the node to reweight', async () => {
    const { keys } = fresh();
    const lines: { level: number; msg: string; nodeId?: string }[] = [];
    const store = new RingStore(client, keys, pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }));
    await writeDirectly(keys, { epoch: 4, shardCount: 8, nodes: [node('a', 20), node('b')] });
    expect(await store.read()).toEqual({ epoch: 4, shardCount: 8, nodes: [node('a', 20), node('b')] });
    await store.read();
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ nodeId: 'a', msg: expect.stringContaining('reweight it to at most 16') });
    // A write after a change keeps it too (strict on what the change sets, lenient on the rest).
    const r = await store.compareAndSet(4, applyChange({ nodes: [node('a', 20), node('b')] }, { add: [{ id: 'c' }] }));
    expect(r.ok && r.doc.nodes).toEqual([node('a', 20), node('b'), node('c')]);
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
        const r = await store.compareAndSet(doc.epoch, { nodes: [node('a', 1 + i / 10)] }); // weights stay <= MAX_WEIGHT
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
    ['a weight above MAX_WEIGHT', { weights: { a: MAX_WEIGHT + 0.5 } }, /weight of node a must be at most 16, got 16.5/],
    ['adding a node of weight 1e308', { add: [{ id: 'd', weight: 1e308 }] }, /weight of node d must be at most 16, got 1e\+308/],
    ['an infinite weight', { weights: { a: Infinity } }, /got Infinity/],
    ['a weight that is a string', { weights: { a: '2' as unknown as number } }, /got "2"/],
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

  it('accepts a weight of exactly MAX_WEIGHT', () => {
    expect(applyChange(ring, { weights: { a: MAX_WEIGHT } }).nodes[0]).toEqual(node('a', MAX_WEIGHT));
  });

  it('reads a stored ring with a weight above MAX_WEIGHT (written before it existed) as it is, not clamped', () => {
    const stored = JSON.stringify({ epoch: 3, shardCount: 8, nodes: [node('a'), node('b', 20)] });
    expect(decodeRing(stored, 'iot:ring')).toEqual({ epoch: 3, shardCount: 8, nodes: [node('a'), node('b', 20)] });
  });

  it('refuses a stored ring with a weight above MAX_STORED_WEIGHT (too costly to compute), naming the key', () => {
    const stored = JSON.stringify({ epoch: 3, shardCount: 8, nodes: [node('a'), node('b', 20_000)] });
    expect(() => decodeRing(stored, 'iot:ring')).toThrow(
      `iot:ring does not hold a valid ring document: weight of node b must be at most ${MAX_STORED_WEIGHT}, got 20000`,
    );
  });

  describe('a ring stored with a weight above MAX_WEIGHT', () => {
    const old = { nodes: [node('a', 20), node('b', 2)] };
    it('keeps that weight through a change that does not name the node', () => {
      expect(applyChange(old, { add: [{ id: 'c' }] }).nodes).toEqual([node('a', 20), node('b', 2), node('c')]);
    });
    it('can be reweighted down to MAX_WEIGHT, but no change sets a weight above it', () => {
      expect(applyChange(old, { weights: { a: MAX_WEIGHT } }).nodes[0]).toEqual(node('a', MAX_WEIGHT));
      expect(() => applyChange(old, { weights: { a: 19 } })).toThrow(`weight of node a must be at most ${MAX_WEIGHT}, got 19`);
    });
  });

  describe('the size of the ring', () => {
    const many = (n: number, weight: number, from = 0): { id: string; weight: number }[] =>
      Array.from({ length: n }, (_, i) => ({ id: `m${from + i}`, weight }));

    it(`refuses a change that gives the active nodes more than ${MAX_RING_POINTS} control points (weights adding up past 256)`, () => {
      // 2 300 nodes of weight 16 once blocked a node's event loop 9.6 s in one plan.
      expect(() => applyChange(ring, { add: many(2_300, MAX_WEIGHT) })).toThrow(RingChangeError);
      // Active a and b weigh 3 (draining c has no points); 15 nodes of 16 make 243, a 16th makes 259 > 256.
      expect(applyChange(ring, { add: many(15, MAX_WEIGHT) }).nodes).toHaveLength(18);
      expect(() => applyChange(ring, { add: many(16, MAX_WEIGHT) })).toThrow(
        `the change would give the active nodes ${(3 + 256) * POINTS_PER_WEIGHT} control points, more than ${MAX_RING_POINTS}`,
      );
      // A draining node has no points: draining one makes room for another.
      const full = applyChange(ring, { add: many(15, MAX_WEIGHT) });
      expect(() => applyChange(full, { add: [{ id: 'x', weight: MAX_WEIGHT }] })).toThrow(/control points/);
      expect(applyChange(full, { add: [{ id: 'x', weight: MAX_WEIGHT }], drain: ['m0'] }).nodes).toHaveLength(19);
    });

    it(`refuses a change that leaves more than ${MAX_RING_NODES} nodes in the ring`, () => {
      const big = applyChange(ring, { add: many(MAX_RING_NODES - 3, 0.01) });
      expect(big.nodes).toHaveLength(MAX_RING_NODES);
      expect(() => applyChange(big, { add: many(1, 0.01, MAX_RING_NODES) })).toThrow(
        `the change would leave ${MAX_RING_NODES + 1} nodes in the ring, more than ${MAX_RING_NODES}`,
      );
    });

    it('lets a ring stored past the caps (before they existed) shrink or stay, never grow', () => {
      const past = { nodes: [...many(20, MAX_WEIGHT).map((a) => node(a.id, a.weight))] }; // 320 of weight
      expect(applyChange(past, { weights: { m0: 1 } }).nodes[0]).toEqual(node('m0', 1));
      expect(applyChange(past, { remove: ['m1'], add: [{ id: 'x', weight: 1 }] }).nodes).toHaveLength(20);
      expect(() => applyChange(past, { add: [{ id: 'x', weight: 1 }] })).toThrow(/control points/);
    });
  });

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
