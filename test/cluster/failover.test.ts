/**
 * Failover in seconds, on fakes: heartbeats refreshed every TTL / 5, the self-fence deadline on a
 * fake clock, a broken peer stream as a suspicion confirmed through the heartbeat and acted on by
 * any node (not only a coordinator), removals that converge, and a node that fenced itself
 * following the ring again once its heartbeat is fresh.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterNode } from '../../cluster/cluster-node.ts';
import type { RingDoc, ShardTable } from '../../cluster/cluster-types.ts';
import { Membership, selfFenceMarginMs } from '../../cluster/membership.ts';
import type { RingNodes, RingStore } from '../../cluster/ring-store.ts';
import type { ShardManager } from '../../cluster/shard-manager.ts';
import { silentLogger, type Logger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';

const info = (id: string) => ({ id, http: '', grpc: '', peer: '', startedAt: 0 });

/** A Redis client that records heartbeat writes; `hold` keeps the next writes unanswered until released. */
class FakeRedis {
  readonly sets: { key: string; args: unknown[] }[] = [];
  private held: (() => void)[] | undefined;

  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const r of held) r();
  }

  set(key: string, ...args: unknown[]): Promise<'OK'> {
    this.sets.push({ key, args });
    if (!this.held) return Promise.resolve('OK');
    const held = this.held;
    return new Promise((resolve) => held.push(() => resolve('OK')));
  }

  pipeline() {
    const p = {
      set: (key: string, ...args: unknown[]) => (this.sets.push({ key, args }), p),
      sadd: () => p,
      exec: async () => [],
    };
    return p;
  }

  async del(): Promise<number> {
    return 1;
  }
}

const membershipOn = (redis: FakeRedis, ttlMs: number, clock: () => number): Membership =>
  new Membership(redis as unknown as RedisClient, new KeyLayout('fo'), info('n1'), silentLogger, { ttlMs, clock });

afterEach(() => {
  vi.useRealTimers();
});

describe('Membership heartbeat', () => {
  it('refreshes the heartbeat every TTL / 5, each write with the TTL', async () => {
    vi.useFakeTimers();
    const redis = new FakeRedis();
    const m = membershipOn(redis, 2_000, () => 0);
    await m.start();
    expect(m.refreshEveryMs).toBe(400);
    const heartbeats = () => redis.sets.filter((x) => x.key.endsWith(':hb:n1'));
    expect(heartbeats()).toHaveLength(1); // the registration's
    await vi.advanceTimersByTimeAsync(2_000);
    const beats = heartbeats().slice(1);
    expect(beats).toHaveLength(5);
    for (const b of beats) expect(b.args.slice(1)).toEqual(['PX', 2_000]);
    await m.stop();
  });

  it('refuses a TTL too short to refresh five times', () => {
    expect(() => membershipOn(new FakeRedis(), 4, () => 0)).toThrow(/ttlMs/);
  });

  it('self-fence deadline: may serve until the last successful write was sent TTL − margin ago, measured from the send, not the reply', async () => {
    vi.useFakeTimers();
    let now = 1_000;
    const redis = new FakeRedis();
    const m = membershipOn(redis, 2_000, () => now);
    expect(m.mayServe()).toBe(false); // before the first heartbeat
    await m.start(); // sent at 1000
    const margin = selfFenceMarginMs(2_000);
    expect(margin).toBe(200);
    expect(m.servingDeadline).toBe(1_000 + 2_000 - margin);
    now = 2_800;
    expect(m.mayServe()).toBe(true);
    now = 2_801;
    expect(m.mayServe()).toBe(false);

    // A refresh sent at 3000 whose reply comes 1.5 s later: the deadline counts from 3000.
    now = 3_000;
    redis.hold();
    await vi.advanceTimersByTimeAsync(400);
    expect(m.mayServe()).toBe(false);
    now = 4_500;
    redis.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(m.servingDeadline).toBe(3_000 + 1_800);
    expect(m.fresh).toBe(true);
    // The deadline passed meanwhile: the lapse is latched until the node went through its fence and resumes.
    expect(m.mayServe()).toBe(false);
    expect(m.resume()).toBe(true);
    expect(m.mayServe()).toBe(true);
    now = 4_801;
    expect(m.mayServe()).toBe(false);
    expect(m.resume()).toBe(false); // stale: stays latched
    expect(m.mayServe()).toBe(false);

    await m.stop();
    now = 0;
    expect(m.mayServe()).toBe(false); // a node that left serves nothing
  });

  it('latches a lapse seen by nobody: a refresh sent before the deadline whose reply lands after it does not bring serving back', async () => {
    vi.useFakeTimers();
    let now = 1_000;
    const redis = new FakeRedis();
    const m = membershipOn(redis, 2_000, () => now);
    await m.start(); // deadline 2800
    now = 2_700;
    redis.hold();
    await vi.advanceTimersByTimeAsync(400); // a refresh sent at 2700, unanswered
    now = 2_900; // past the deadline; nobody asked mayServe meanwhile
    redis.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(m.servingDeadline).toBe(2_700 + 1_800);
    expect(m.fresh).toBe(true);
    expect(m.hasLapsed).toBe(true);
    expect(m.mayServe()).toBe(false);
    await m.stop();
  });

  it('keeps a margin under a quarter of the TTL for short TTLs', () => {
    expect(selfFenceMarginMs(300)).toBe(75);
    expect(selfFenceMarginMs(10_000)).toBe(1_000);
  });
});

const ring = (epoch: number, ids: readonly string[]): RingDoc => ({
  epoch,
  shardCount: 8,
  nodes: ids.map((id) => ({ id, weight: 1, state: 'active' as const })),
});

/** A ring store over one document, with compare-and-set on the epoch; counts the successful changes. */
class FakeRingStore {
  changes = 0;
  conflicts = 0;
  constructor(public doc: RingDoc) {}

  async read(): Promise<RingDoc> {
    await Promise.resolve();
    return this.doc;
  }

  async compareAndSet(epoch: number, next: RingNodes): Promise<{ ok: true; doc: RingDoc } | { ok: false }> {
    await new Promise((r) => setImmediate(r)); // two nodes' reads can interleave
    if (epoch !== this.doc.epoch) {
      this.conflicts++;
      return { ok: false };
    }
    this.changes++;
    this.doc = { ...next, epoch: epoch + 1, shardCount: this.doc.shardCount };
    return { ok: true, doc: this.doc };
  }

  watch(): () => Promise<void> {
    return async () => {};
  }
}

/** Heartbeats of every node as one set of live ids; counts reads per node. */
class FakeHeartbeats {
  readonly reads = new Map<string, number>();
  /** performance.now() of a node's last heartbeat write, when set (else: 50 ms before any read). */
  readonly refreshedAt = new Map<string, number>();
  constructor(readonly live: Set<string>) {}

  membership(self: string, ttlMs = 2_000) {
    return {
      ttlMs,
      serving: true,
      start: async () => {},
      stop: async () => {},
      mayServe(): boolean {
        return this.serving;
      },
      get fresh(): boolean {
        return this.serving;
      },
      resume(): boolean {
        return this.serving;
      },
      alive: async (ids: readonly string[]) => {
        for (const id of ids) this.reads.set(id, (this.reads.get(id) ?? 0) + 1);
        return new Set(ids.filter((id) => this.live.has(id) || id === self));
      },
      /** A live node's heartbeat as written `age` ms ago (`ages`, default: at the suspicion's start). */
      heartbeatLeftMs: async (id: string) => {
        this.reads.set(id, (this.reads.get(id) ?? 0) + 1);
        if (!this.live.has(id) && id !== self) return undefined;
        const refreshed = this.refreshedAt.get(id);
        return refreshed === undefined ? ttlMs - 50 : Math.max(0, refreshed + ttlMs - performance.now());
      },
    };
  }
}

/** A shard manager reduced to what ClusterNode calls: tables adopted, fences and unfences. */
function fakeShards() {
  return {
    tables: [] as ShardTable[],
    fences: 0,
    unfences: 0,
    applyTable(t: ShardTable) {
      this.tables.push(t);
    },
    fence() {
      this.fences++;
      return [1, 2, 3];
    },
    unfence() {
      this.unfences++;
    },
  };
}

/** A logger whose lines are kept (parsed) for the test to read. */
function recordingLogger(): { logger: Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const started: ClusterNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

async function clusterNode(opts: {
  id: string;
  store: FakeRingStore;
  beats: FakeHeartbeats;
  logger?: Logger;
  ttlMs?: number;
  checkEveryMs?: number;
  autoJoin?: boolean;
  registry?: Registry;
}) {
  const membership = opts.beats.membership(opts.id, opts.ttlMs);
  const shards = fakeShards();
  let reroutes = 0;
  const node = new ClusterNode({
    self: info(opts.id),
    shardCount: 8,
    ringStore: opts.store as unknown as RingStore,
    membership: membership as unknown as Membership,
    shards: shards as unknown as ShardManager,
    reroute: () => reroutes++,
    autoJoin: opts.autoJoin ?? false,
    logger: opts.logger ?? silentLogger,
    checkEveryMs: opts.checkEveryMs ?? 3_600_000,
    suspectEveryMs: 20,
    fenceCheckEveryMs: 10,
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
  started.push(node);
  await node.start();
  return { node, membership, shards, reroutes: () => reroutes };
}

describe('ClusterNode suspicion', () => {
  it('a broken peer stream makes any node (here not the lowest id) watch the heartbeat closely and take the node out once Redis shows it expired', async () => {
    const store = new FakeRingStore(ring(5, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2', 'n3']));
    beats.refreshedAt.set('n3', performance.now() - 100); // its last heartbeat, before the stream broke
    const { node, shards } = await clusterNode({ id: 'n2', store, beats });
    const watching = node.suspect('n3');
    expect(node.suspicion('n3')).toBe(watching);
    // Still alive: watched, not removed.
    await vi.waitFor(() => expect(beats.reads.get('n3') ?? 0).toBeGreaterThanOrEqual(3));
    expect(store.doc.epoch).toBe(5);
    const killedAt = performance.now();
    beats.live.delete('n3'); // its heartbeat expired
    expect(await watching).toBe('dead');
    const confirmedIn = performance.now() - killedAt;
    expect(confirmedIn).toBeLessThan(1_000); // polled every 20 ms here (100 ms by default), not the 500 ms check
    expect(store.doc).toMatchObject({ epoch: 6, nodes: [{ id: 'n1' }, { id: 'n2' }] });
    expect(node.epoch).toBe(6);
    expect(node.suspicion('n3')).toBeUndefined();
    expect(shards.tables.at(-1)!.owners.every((o) => o === 'n1' || o === 'n2')).toBe(true);
  });

  it('ends the watch as alive as soon as Redis shows a heartbeat written after the suspicion began, and ignores nodes outside the ring, itself, and a second suspicion', async () => {
    const store = new FakeRingStore(ring(2, ['n1', 'n2']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    beats.refreshedAt.set('n2', performance.now() - 50);
    const { node } = await clusterNode({ id: 'n1', store, beats });
    const first = node.suspect('n2');
    expect(node.suspect('n2')).toBe(first);
    expect(await node.suspect('n1')).toBe('gone');
    expect(await node.suspect('stranger')).toBe('gone');
    await vi.waitFor(() => expect(beats.reads.get('n2') ?? 0).toBeGreaterThanOrEqual(3));
    const refreshed = performance.now();
    beats.refreshedAt.set('n2', refreshed); // its next heartbeat: it was a stream hiccup
    expect(await first).toBe('alive');
    expect(performance.now() - refreshed).toBeLessThan(1_000); // not the whole TTL (2 s)
    expect(store.changes).toBe(0);
  });

  it('two nodes that both confirm a death converge on one removal, without errors', async () => {
    const store = new FakeRingStore(ring(9, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    const logs = recordingLogger();
    const a = await clusterNode({ id: 'n1', store, beats, logger: logs.logger });
    const b = await clusterNode({ id: 'n2', store, beats, logger: logs.logger });
    expect(await Promise.all([a.node.suspect('n3'), b.node.suspect('n3')])).toEqual(['dead', 'dead']);
    expect(store.changes).toBe(1);
    expect(store.doc).toMatchObject({ epoch: 10, nodes: [{ id: 'n1' }, { id: 'n2' }] });
    await vi.waitFor(() => expect([a.node.epoch, b.node.epoch]).toEqual([10, 10]));
    expect(logs.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(logs.lines.filter((l) => l.msg.startsWith('heartbeats expired'))).toHaveLength(1);
    expect(logs.lines.filter((l) => /failed/.test(l.msg))).toEqual([]);
  });

  it('the regular check takes out a node nobody streams to after one read showing its heartbeat expired', async () => {
    const store = new FakeRingStore(ring(3, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2', 'n3']));
    await clusterNode({ id: 'n2', store, beats, checkEveryMs: 30 });
    await vi.waitFor(() => expect(beats.reads.get('n3') ?? 0).toBeGreaterThanOrEqual(2));
    beats.live.delete('n3');
    const readsBefore = beats.reads.get('n3')!;
    await vi.waitFor(() => expect(store.doc.nodes.map((n) => n.id)).toEqual(['n1', 'n2']));
    expect(beats.reads.get('n3')! - readsBefore).toBeLessThanOrEqual(2); // one read that saw it dead (one more may have been in flight)
  });

  it('runs one liveness check at a time: a slow Redis does not pile them up', async () => {
    const store = new FakeRingStore(ring(3, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2', 'n3']));
    const { membership } = await clusterNode({ id: 'n1', store, beats, checkEveryMs: 10 });
    let inFlight = 0;
    let most = 0;
    let checks = 0;
    membership.alive = async (ids: readonly string[]) => {
      checks++;
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 150)); // 15 check intervals
      inFlight--;
      return new Set(ids);
    };
    await vi.waitFor(() => expect(checks).toBeGreaterThanOrEqual(3), { timeout: 5_000 });
    expect(most).toBe(1);
  });

  it('leaves the ring alone when removing the dead would leave no active node', async () => {
    const store = new FakeRingStore({
      epoch: 4,
      shardCount: 8,
      nodes: [
        { id: 'n1', weight: 1, state: 'draining' },
        { id: 'n2', weight: 1, state: 'active' },
      ],
    });
    const beats = new FakeHeartbeats(new Set(['n1']));
    const logs = recordingLogger();
    const { node } = await clusterNode({ id: 'n1', store, beats, logger: logs.logger });
    expect(await node.suspect('n2')).toBe('dead');
    expect(store.changes).toBe(0);
    expect(logs.lines.find((l) => l.msg === 'cannot take dead nodes out')).toBeDefined();
  });
});

describe('ClusterNode self-fence', () => {
  it('fences every shard once the serving deadline passed, judges nobody meanwhile, and re-joins the ring it was taken out of once the heartbeat is fresh', async () => {
    const store = new FakeRingStore(ring(7, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    const logs = recordingLogger();
    const registry = new Registry();
    const { node, membership, shards, reroutes } = await clusterNode({
      id: 'n2',
      store,
      beats,
      logger: logs.logger,
      autoJoin: true,
      checkEveryMs: 20,
      registry,
    });
    const selfFences = async () => (await registry.getSingleMetric('iot_cluster_self_fences_total')!.get()).values[0]?.value;
    expect(await selfFences()).toBe(0); // exposed from the start
    // n3 is dead, but first this node is paused past its deadline: it must not judge anyone.
    membership.serving = false;
    await vi.waitFor(() => expect(shards.fences).toBe(1));
    expect(await selfFences()).toBe(1);
    expect(node.fenced).toBe(true);
    expect(reroutes()).toBeGreaterThan(0);
    const fence = logs.lines.find((l) => l.msg.startsWith('self-fence'));
    expect(fence).toMatchObject({ level: 50, shards: 3, ttlMs: 2_000, fencedAt: expect.any(String) });
    const readsWhileFenced = beats.reads.get('n3') ?? 0;
    expect(await node.suspect('n3')).toBe('unjudged'); // watched without judging (ttl 2 s + 20 ms): says nothing of n3
    expect(beats.reads.get('n3') ?? 0).toBe(readsWhileFenced);
    expect(store.changes).toBe(0);
    expect(shards.fences).toBe(1);

    // Meanwhile the others took this node out of the ring (and n3 with it).
    store.doc = ring(8, ['n1']);
    membership.serving = true;
    await vi.waitFor(() => expect(shards.unfences).toBe(1));
    expect(node.fenced).toBe(false);
    expect(store.doc).toMatchObject({ epoch: 9, nodes: [{ id: 'n1' }, { id: 'n2' }] });
    expect(node.epoch).toBe(9);
    expect(logs.lines.find((l) => l.msg.startsWith('heartbeat fresh again'))).toBeDefined();
  }, 10_000);

  it('fences (evict, new tokens) when a refresh sent before the deadline lands after it but before the fence check ran', async () => {
    vi.useFakeTimers();
    let now = 1_000;
    const redis = new FakeRedis();
    const membership = membershipOn(redis, 2_000, () => now);
    const shards = fakeShards();
    const node = new ClusterNode({
      self: info('n1'),
      shardCount: 8,
      ringStore: new FakeRingStore(ring(1, ['n1'])) as unknown as RingStore,
      membership,
      shards: shards as unknown as ShardManager,
      reroute: () => {},
      autoJoin: false,
      logger: silentLogger,
      checkEveryMs: 3_600_000,
      fenceCheckEveryMs: 50,
    });
    await node.start(); // heartbeat sent at 1000: deadline 2800
    now = 2_700;
    redis.hold();
    await vi.advanceTimersByTimeAsync(400); // a refresh sent at 2700 waits (fence checks ran meanwhile, serving)
    expect(shards.fences).toBe(0);
    now = 2_900; // a pause past the deadline: the reply lands before any fence check runs
    redis.release();
    await Promise.resolve();
    await Promise.resolve();
    expect(membership.fresh).toBe(true);
    await vi.advanceTimersByTimeAsync(50);
    expect(shards.fences).toBe(1); // not resumed with the old tokens and actors
    await vi.advanceTimersByTimeAsync(100);
    expect(shards.unfences).toBe(1); // fresh again: recovered through the fence
    expect(membership.mayServe()).toBe(true);
    await node.stop();
  });

  it('does not unfence when the heartbeat went stale again while it re-joined the ring', async () => {
    const store = new FakeRingStore(ring(2, ['n1', 'n2']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    const { membership, shards } = await clusterNode({ id: 'n1', store, beats, autoJoin: true });
    membership.serving = false;
    await vi.waitFor(() => expect(shards.fences).toBe(1));
    store.doc = ring(3, ['n2']); // taken out while fenced
    const cas = store.compareAndSet.bind(store);
    let joins = 0;
    store.compareAndSet = async (epoch, next) => {
      joins++;
      membership.serving = false; // stale again while its re-join is in flight
      return cas(epoch, next);
    };
    membership.serving = true;
    await vi.waitFor(() => expect(joins).toBe(1));
    await new Promise((r) => setTimeout(r, 100));
    expect(shards.unfences).toBe(0);
    store.compareAndSet = cas;
    membership.serving = true;
    await vi.waitFor(() => expect(shards.unfences).toBe(1));
  });

  it('after a fence while still in the ring, takes its shards again without changing the ring; taken out just after, it joins again', async () => {
    const store = new FakeRingStore(ring(2, ['n1', 'n2']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    const { node, membership, shards } = await clusterNode({ id: 'n1', store, beats, autoJoin: true });
    membership.serving = false;
    await vi.waitFor(() => expect(shards.fences).toBe(1));
    membership.serving = true;
    await vi.waitFor(() => expect(shards.unfences).toBe(1));
    expect(store.changes).toBe(0);
    // n2 had seen its heartbeat expired and takes it out right after it read the ring.
    store.doc = ring(3, ['n2']);
    await node.catchUp(3);
    await vi.waitFor(() => expect(store.doc).toMatchObject({ epoch: 4, nodes: [{ id: 'n2' }, { id: 'n1' }] }));
    expect(node.inRing).toBe(true);
  });

  it('back from a fence, judges nobody for a TTL (after an outage of Redis the others need time to write their heartbeats again)', async () => {
    const store = new FakeRingStore(ring(2, ['n1', 'n2', 'n3']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2', 'n3']));
    const { membership, shards } = await clusterNode({ id: 'n1', store, beats, ttlMs: 400, checkEveryMs: 20 });
    membership.serving = false;
    await vi.waitFor(() => expect(shards.fences).toBe(1));
    beats.live.delete('n3'); // its heartbeat expired during the outage too
    membership.serving = true;
    await vi.waitFor(() => expect(shards.unfences).toBe(1));
    const back = performance.now();
    await vi.waitFor(() => expect(store.doc.nodes.map((n) => n.id)).toEqual(['n1', 'n2']), { timeout: 3_000 });
    expect(performance.now() - back).toBeGreaterThanOrEqual(350);
  });

  it('does not join again after it drained itself out', async () => {
    const store = new FakeRingStore(ring(2, ['n1', 'n2']));
    const beats = new FakeHeartbeats(new Set(['n1', 'n2']));
    const { node, membership, shards } = await clusterNode({ id: 'n1', store, beats, autoJoin: true });
    membership.serving = false;
    await vi.waitFor(() => expect(shards.fences).toBe(1));
    membership.serving = true;
    await vi.waitFor(() => expect(shards.unfences).toBe(1));
    Object.assign(shards, { settled: async () => {}, count: () => 0, pending: 0 });
    await node.drain();
    expect(store.doc.nodes.map((n) => n.id)).toEqual(['n2']);
    await new Promise((r) => setTimeout(r, 100));
    expect(store.doc.nodes.map((n) => n.id)).toEqual(['n2']);
  });
});
