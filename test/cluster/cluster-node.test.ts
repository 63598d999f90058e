/** ClusterNode over a fake ring store: catchUp (a node behind a peer's epoch reads the stored ring, once for concurrent callers), and a drain stopped by its signal. */
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterNode } from '../../cluster/cluster-node.ts';
import type { RingDoc, ShardTable } from '../../cluster/cluster-types.ts';
import type { Membership } from '../../cluster/membership.ts';
import type { RingNodes, RingStore } from '../../cluster/ring-store.ts';
import type { ShardManager } from '../../cluster/shard-manager.ts';
import { silentLogger } from '../../runtime/logger.ts';

const ring = (epoch: number, nodes = ['n1', 'n2']): RingDoc => ({
  epoch,
  shardCount: 8,
  nodes: nodes.map((id) => ({ id, weight: 1, state: 'active' as const })),
});

const nodes: ClusterNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function setup(stored: RingDoc) {
  const store = { doc: stored, reads: 0 };
  const ringStore = {
    read: async () => {
      store.reads++;
      return store.doc;
    },
    // No announcements: only catchUp brings a newer ring here.
    watch: () => async () => {},
  } as unknown as RingStore;
  const membership = {
    start: async () => {},
    stop: async () => {},
    alive: async (ids: readonly string[]) => new Set(ids),
    ttlMs: 2_000,
    mayServe: () => true,
  } as unknown as Membership;
  const tables: ShardTable[] = [];
  const shards = { applyTable: (t: ShardTable) => tables.push(t) } as unknown as ShardManager;
  let reroutes = 0;
  const node = new ClusterNode({
    self: { id: 'n1', http: '', grpc: '', peer: '', startedAt: 0 },
    shardCount: 8,
    ringStore,
    membership,
    shards,
    reroute: () => reroutes++,
    autoJoin: false,
    logger: silentLogger,
    checkEveryMs: 60_000,
  });
  nodes.push(node);
  await node.start();
  return { node, store, tables, reroutes: () => reroutes };
}

describe('ClusterNode.inRing', () => {
  it('is true while the ring it follows lists this node, draining included, and false once a ring without it is adopted', async () => {
    const { node, store } = await setup(ring(3, ['n2']));
    expect(node.inRing).toBe(false);
    store.doc = ring(4, ['n1', 'n2']);
    await node.catchUp(4);
    expect(node.inRing).toBe(true);
    store.doc = { ...ring(5, ['n2']), nodes: [...ring(5, ['n2']).nodes, { id: 'n1', weight: 1, state: 'draining' }] };
    await node.catchUp(5);
    expect(node.inRing).toBe(true);
    store.doc = ring(6, ['n2', 'n3']);
    await node.catchUp(6);
    expect(node.inRing).toBe(false);
  });
});

describe('ClusterNode.catchUp', () => {
  it('reads and adopts the stored ring when a peer routed with a newer epoch; concurrent callers share one read', async () => {
    const { node, store, tables, reroutes } = await setup(ring(3));
    expect(node.epoch).toBe(3);
    store.doc = ring(5, ['n1', 'n2', 'n3']);
    const readsBefore = store.reads;
    await Promise.all([node.catchUp(5), node.catchUp(4), node.catchUp(5)]);
    expect(store.reads - readsBefore).toBe(1);
    expect(node.epoch).toBe(5);
    expect(tables.map((t) => t.epoch)).toEqual([3, 5]);
    expect(reroutes()).toBe(2);
  });

  it('reads nothing when it is not behind', async () => {
    const { node, store } = await setup(ring(6));
    const readsBefore = store.reads;
    await node.catchUp(6);
    await node.catchUp(2);
    expect(store.reads).toBe(readsBefore);
  });
});

describe('ClusterNode.drain with a signal (DRAIN_TIMEOUT_MS at shutdown)', () => {
  it('stops waiting for its handoffs once aborted, rejects with the reason, and leaves the ring alone', async () => {
    let doc = ring(3);
    const written: RingNodes[] = [];
    const ringStore = {
      read: async () => doc,
      compareAndSet: async (epoch: number, next: RingNodes) => {
        written.push(next);
        doc = { ...next, epoch: epoch + 1, shardCount: 8 };
        return { ok: true, doc };
      },
      watch: () => async () => {},
    } as unknown as RingStore;
    const membership = {
      start: async () => {},
      stop: async () => {},
      alive: async (ids: readonly string[]) => new Set(ids),
      ttlMs: 2_000,
      mayServe: () => true,
    };
    // A handoff that never finishes: this node keeps owning a shard.
    let polls = 0;
    const shards = {
      applyTable: () => {},
      settled: async () => {},
      count: () => {
        polls++;
        return 1;
      },
      pending: 0,
    };
    const node = new ClusterNode({
      self: { id: 'n1', http: '', grpc: '', peer: '', startedAt: 0 },
      shardCount: 8,
      ringStore,
      membership: membership as unknown as Membership,
      shards: shards as unknown as ShardManager,
      reroute: () => {},
      autoJoin: false,
      logger: silentLogger,
      checkEveryMs: 60_000,
    });
    nodes.push(node);
    await node.start();
    const stop = new AbortController();
    const draining = node.drain(stop.signal);
    await vi.waitFor(() => expect(polls).toBeGreaterThan(2));
    expect(written.map((w) => w.nodes.find((n) => n.id === 'n1')?.state)).toEqual(['draining']);
    const reason = new Error('the drain did not finish within DRAIN_TIMEOUT_MS');
    stop.abort(reason);
    await expect(draining).rejects.toBe(reason);
    // Before the fix it polled every 50 ms for ever, and removed itself from the ring on a closed connection.
    const pollsAtAbort = polls;
    await delay(200);
    expect(polls).toBe(pollsAtAbort);
    expect(written).toHaveLength(1);
    expect(doc.nodes.map((n) => n.id)).toEqual(['n1', 'n2']);
  });
});
