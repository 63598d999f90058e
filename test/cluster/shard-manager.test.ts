/** ShardManager on a real Redis with a real actor host: acquiring by the table, handoffs that flush before the lease goes, live and dead holders, lost leases, and two nodes never owning a shard at once. */
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ShardTable } from '../../cluster/cluster-types.ts';
import { ShardLeases } from '../../cluster/shard-leases.ts';
import { ShardManager } from '../../cluster/shard-manager.ts';
import { shardOfActor, shardOfHome } from '../../cluster/shard-of.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { ActorWrite, PersistencePort, Recovered } from '../../runtime/persistence-port.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../runtime/redis/redis-store.ts';
import { counterBehavior } from '../runtime/counter-behavior.ts';
import { mulberry32, pick, randomInt, shuffle } from '../support/prng.ts';
import { RedisClients } from '../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

const SHARDS = 8;
const shardOf = shardOfActor(SHARDS);

let redis: TestRedis;
let clients: RedisClients;
let client: RedisClient;
let seq = 0;

beforeAll(async () => {
  redis = await startTestRedis();
  clients = new RedisClients(() => redis.url);
  client = await clients.connect();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}sm${seq++}`);

/** A home whose actors live in `shard`, and its counter actor. */
function counterIn(shard: number): string {
  for (let i = 0; ; i++) if (shardOfHome(`home${i}`, SHARDS) === shard) return `counter:home${i}`;
}

const table = (epoch: number, owner: (shard: number) => string): ShardTable => ({
  epoch,
  owners: Array.from({ length: SHARDS }, (_, s) => owner(s)),
});
const allShards = Array.from({ length: SHARDS }, (_, s) => s);
/** Lets `n` turns of the event loop pass (Redis replies due meanwhile are handled): a delay counted in turns, not milliseconds. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/**
 * The node's RedisStore, observed: records who held the shard's lease when each final snapshot had
 * been written, and can hold snapshot writes at a gate (the handoff is then mid-flush).
 */
class ObservedStore implements PersistencePort {
  readonly durable = true;
  readonly snapshots: { actorId: string; count: unknown; leaseHolder: string | null }[] = [];
  heldSnapshots = 0;
  private gate: Promise<void> | undefined;
  private open: () => void = () => {};

  constructor(
    readonly inner: RedisStore,
    private readonly keys: KeyLayout,
  ) {}

  get shardOf(): (actorId: string) => number {
    return this.inner.shardOf;
  }

  holdSnapshots(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  releaseSnapshots(): void {
    this.gate = undefined;
    this.open();
  }

  recover(actorId: string): Promise<Recovered> {
    return this.inner.recover(actorId);
  }

  recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered | Error>> {
    return this.inner.recoverMany(actorIds);
  }

  async commit(shard: number, writes: readonly ActorWrite[]): Promise<void> {
    const snapshots = writes.filter((w) => w.batch.snapshot);
    if (snapshots.length === 0) return this.inner.commit(shard, writes);
    if (this.gate) {
      this.heldSnapshots++;
      await this.gate;
    }
    await this.inner.commit(shard, writes);
    // Read once the snapshot is durable and before the host learns so: the lease must still be ours.
    const leaseHolder = await client.get(this.keys.lease(shard));
    for (const w of snapshots) {
      this.snapshots.push({ actorId: w.actorId, count: (w.batch.snapshot!.state as { count: number }).count, leaseHolder });
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface TestNode {
  readonly id: string;
  readonly keys: KeyLayout;
  readonly leases: ShardLeases;
  readonly host: ActorHost;
  readonly store: ObservedStore;
  readonly manager: ShardManager;
  readonly registry: Registry;
  /** Shards onOwned reported, in order. */
  readonly ownedCalls: number[];
  /** Shards the leases reported lost, in order. */
  readonly lostCalls: number[];
  /** Nodes isAlive was asked about, in order. */
  readonly aliveChecks: string[];
}

const nodes: TestNode[] = [];
const bareLeases: ShardLeases[] = [];

/** A node as the composition root wires it: leases (renewed by hand), a fenced RedisStore, an actor host and the manager. */
async function startNode(
  id: string,
  keys: KeyLayout,
  opts: { alive?: (nodeId: string) => boolean; retryMs?: number; clock?: () => number; mayServe?: () => boolean } = {},
): Promise<TestNode> {
  const nodeClient = await clients.connect();
  const registry = new Registry();
  const ownedCalls: number[] = [];
  const lostCalls: number[] = [];
  const aliveChecks: string[] = [];
  let manager: ShardManager | undefined;
  let host: ActorHost | undefined;
  const leases = new ShardLeases(
    nodeClient,
    keys,
    id,
    (shard) => {
      lostCalls.push(shard);
      host?.evict((actorId) => shardOf(actorId) === shard);
      manager?.lost(shard);
    },
    silentLogger,
    { ttlMs: 15_000, renewEveryMs: 3_600_000 },
  );
  const inner = new RedisStore({
    client: nodeClient,
    keys,
    shardOf,
    fenceToken: (s) => leases.token(s),
    onFenced: (s, _current, used) => leases.lost(s, 'fenced', used),
    registry,
    logger: silentLogger,
  });
  const store = new ObservedStore(inner, keys);
  host = new ActorHost({ behaviors: [counterBehavior], store, logger: silentLogger, registry });
  manager = new ShardManager({
    nodeId: id,
    shardCount: SHARDS,
    leases,
    host,
    shardOf,
    isAlive: async (nodeId) => {
      aliveChecks.push(nodeId);
      return opts.alive?.(nodeId) ?? true;
    },
    onOwned: (s) => ownedCalls.push(s),
    logger: silentLogger,
    registry,
    retryMs: opts.retryMs ?? 20,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.mayServe ? { mayServe: opts.mayServe } : {}),
  });
  const node = { id, keys, leases, host, store, manager, registry, ownedCalls, lostCalls, aliveChecks };
  nodes.push(node);
  return node;
}

/** Another node's leases alone (a holder that is flushing, or dead). */
function holder(id: string, keys: KeyLayout): ShardLeases {
  const l = new ShardLeases(client, keys, id, () => {}, silentLogger, { ttlMs: 15_000, renewEveryMs: 3_600_000 });
  bareLeases.push(l);
  return l;
}

afterEach(async () => {
  // Hand everything to nobody (ends acquisition loops, flushes actors), then stop.
  for (const n of nodes) n.manager.applyTable(table(Number.MAX_SAFE_INTEGER, () => 'nobody'));
  // A handoff stuck here is a failure of the test that left it, not a reason to wait a fixed time.
  await vi.waitFor(() => expect(nodes.filter((n) => n.manager.pending > 0).map((n) => n.id)).toEqual([]), { timeout: 5_000 });
  for (const n of nodes.splice(0)) {
    await n.host.close();
    await n.leases.releaseAll();
  }
  for (const l of bareLeases.splice(0)) await l.releaseAll();
});

async function gauge(registry: Registry, name: string): Promise<number> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? Number.NaN;
}

describe('ShardManager', () => {
  it('acquires the shards the table gives this node, takes their leases and reports each through onOwned', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys);
    expect(n1.manager.epoch).toBe(0);
    expect(n1.manager.ownerOf(0)).toBeUndefined();
    const mine = allShards.filter((s) => s % 2 === 0);

    n1.manager.applyTable(table(1, (s) => (s % 2 === 0 ? 'n1' : 'n2')));
    for (const s of allShards) expect(n1.manager.state(s)).toBe(s % 2 === 0 ? 'acquiring' : 'released');
    expect(n1.manager.pending).toBe(mine.length);
    await n1.manager.settled();

    for (const s of allShards) {
      expect(n1.manager.state(s)).toBe(s % 2 === 0 ? 'owned' : 'released');
      expect(await client.get(keys.lease(s))).toBe(s % 2 === 0 ? 'n1' : null);
      expect(n1.leases.token(s) !== undefined).toBe(s % 2 === 0);
    }
    expect([...n1.ownedCalls].sort((a, b) => a - b)).toEqual(mine);
    expect(n1.manager.epoch).toBe(1);
    expect(n1.manager.ownerOf(1)).toBe('n2');
    expect(n1.manager.pending).toBe(0);
    expect(n1.manager.done).toBe(mine.length);
    expect(await gauge(n1.registry, 'iot_cluster_shards_owned')).toBe(mine.length);
    expect(await gauge(n1.registry, 'iot_cluster_handoffs_in_flight')).toBe(0);
    expect(await gauge(n1.registry, 'iot_cluster_ring_epoch')).toBe(1);
  });

  it('hands a shard off under a newer table: its actors are passivated with a final snapshot while the lease is still held, then the lease is released', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys);
    n1.manager.applyTable(table(1, () => 'n1'));
    await n1.manager.settled();
    const moving = counterIn(1);
    const staying = counterIn(2);
    expect(await n1.host.ask(moving, { type: 'add', n: 5 })).toEqual({ ok: true, value: 5 });
    expect(await n1.host.ask(staying, { type: 'add', n: 7 })).toEqual({ ok: true, value: 7 });
    const oldToken = n1.leases.token(1)!;

    n1.store.holdSnapshots();
    n1.manager.applyTable(table(2, (s) => (s === 1 ? 'n2' : 'n1')));
    expect(n1.manager.state(1)).toBe('handing-off');
    expect(n1.manager.pending).toBe(1);
    let settled = false;
    const settling = n1.manager.settled().then(() => (settled = true));

    // Mid-flush: the final snapshot waits at the gate, and the lease is still this node's.
    await vi.waitFor(() => expect(n1.store.heldSnapshots).toBe(1));
    expect(await client.get(keys.lease(1))).toBe('n1');
    expect(n1.leases.token(1)).toBe(oldToken);
    expect(n1.manager.state(1)).toBe('handing-off');
    expect(settled).toBe(false);

    n1.store.releaseSnapshots();
    await settling;
    expect(n1.manager.state(1)).toBe('released');
    expect(await client.exists(keys.lease(1))).toBe(0);
    expect(n1.leases.token(1)).toBeUndefined();
    // Only the moving shard's actor was flushed, and the lease was still held when its snapshot landed.
    expect(n1.store.snapshots).toEqual([{ actorId: moving, count: 5, leaseHolder: 'n1' }]);
    expect(n1.host.isResident(moving)).toBe(false);
    expect(n1.host.isResident(staying)).toBe(true);
    expect(n1.manager.state(2)).toBe('owned');
    expect(await client.get(keys.lease(2))).toBe('n1');
    expect(n1.manager.done).toBe(SHARDS + 1);

    // The new owner takes the lease at once, with a newer fence token, and serves the flushed state.
    const n2 = await startNode('n2', keys);
    n2.manager.applyTable(table(2, (s) => (s === 1 ? 'n2' : 'n1')));
    await n2.manager.settled();
    expect(n2.manager.state(1)).toBe('owned');
    expect(BigInt(n2.leases.token(1)!)).toBeGreaterThan(BigInt(oldToken));
    expect(await n2.host.ask(moving, { type: 'get' })).toEqual({ ok: true, value: 5 });
  });

  it('ignores a table that is not newer than the one it follows', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys);
    n1.manager.applyTable(table(5, () => 'n1'));
    await n1.manager.settled();

    n1.manager.applyTable(table(4, () => 'n2'));
    n1.manager.applyTable(table(5, () => 'n2'));
    expect(n1.manager.epoch).toBe(5);
    expect(n1.manager.ownerOf(0)).toBe('n1');
    expect(n1.manager.count('owned')).toBe(SHARDS);
    expect(n1.manager.pending).toBe(0);
    for (const s of allShards) expect(await client.get(keys.lease(s))).toBe('n1');
  });

  it('waits for a live holder to release a shard before taking it, and settles only then', async () => {
    const keys = freshKeys();
    const n2 = holder('n2', keys);
    expect((await n2.acquire([3])).size).toBe(0);
    const n2Token = n2.token(3)!;
    const n1 = await startNode('n1', keys, { alive: () => true, retryMs: 10 });
    expect(n1.manager.pending).toBe(0);
    await n1.manager.settled(); // nothing pending: at once

    n1.manager.applyTable(table(1, (s) => (s === 3 || s === 4 ? 'n1' : 'n2')));
    let settled = false;
    const settling = n1.manager.settled().then(() => (settled = true));
    await vi.waitFor(() => expect(n1.manager.state(4)).toBe('owned'));
    // Several attempts, each finding the holder alive: it is flushing, so n1 waits.
    await vi.waitFor(() => expect(n1.aliveChecks.filter((id) => id === 'n2').length).toBeGreaterThanOrEqual(3));
    expect(n1.manager.state(3)).toBe('acquiring');
    expect(n1.manager.pending).toBe(1);
    expect(await client.get(keys.lease(3))).toBe('n2');
    expect(n1.leases.token(3)).toBeUndefined();
    expect(settled).toBe(false);
    expect(n1.ownedCalls).toEqual([4]);

    await n2.release([3]);
    await settling;
    expect(n1.manager.state(3)).toBe('owned');
    expect(await client.get(keys.lease(3))).toBe('n1');
    expect(BigInt(n1.leases.token(3)!)).toBeGreaterThan(BigInt(n2Token));
    expect(n1.ownedCalls).toEqual([4, 3]);
  });

  it('reports the age of its oldest handoff in flight, acquiring or handing off, and 0 once none is', async () => {
    const keys = freshKeys();
    let now = 1_000;
    const n1 = await startNode('n1', keys, { alive: () => true, retryMs: 10, clock: () => now });
    const oldest = () => gauge(n1.registry, 'iot_cluster_handoff_oldest_seconds');
    expect(await oldest()).toBe(0);
    n1.manager.applyTable(table(1, (s) => (s === 3 ? 'n2' : 'n1')));
    await n1.manager.settled();
    expect(await oldest()).toBe(0);

    // Shard 1 goes to n2 and its flush is held: a handoff that started at 1 s.
    const moving = counterIn(1);
    expect(await n1.host.ask(moving, { type: 'add', n: 1 })).toEqual({ ok: true, value: 1 });
    n1.store.holdSnapshots();
    n1.manager.applyTable(table(2, (s) => (s === 1 || s === 3 ? 'n2' : 'n1')));
    expect(n1.manager.state(1)).toBe('handing-off');
    now = 6_000;
    expect(await oldest()).toBe(5);

    // Shard 3 comes here while a live n2 holds it (flushing): an acquisition that started at 6 s.
    const n2 = holder('n2', keys);
    expect((await n2.acquire([3])).size).toBe(0);
    n1.manager.applyTable(table(3, (s) => (s === 1 ? 'n2' : 'n1')));
    expect(n1.manager.state(3)).toBe('acquiring');
    now = 9_500;
    expect(await oldest()).toBe(8.5);
    expect(await gauge(n1.registry, 'iot_cluster_handoffs_in_flight')).toBe(2);

    // The handoff ends: the acquisition, 3.5 s old, is the oldest left.
    n1.store.releaseSnapshots();
    await vi.waitFor(() => expect(n1.manager.state(1)).toBe('released'));
    expect(await oldest()).toBe(3.5);
    await n2.release([3]);
    await n1.manager.settled();
    expect(await oldest()).toBe(0);
  });

  it("takes a dead holder's lease over at once with a new, larger fence token (the dead node's renewal is then refused)", async () => {
    const keys = freshKeys();
    const lostByDead: number[] = [];
    const dead = new ShardLeases(client, keys, 'dead', (s) => lostByDead.push(s), silentLogger, { ttlMs: 15_000, renewEveryMs: 3_600_000 });
    bareLeases.push(dead);
    await dead.acquire([5]);
    const deadToken = dead.token(5)!;
    const n1 = await startNode('n1', keys, { alive: (id) => id !== 'dead' });

    n1.manager.applyTable(table(1, () => 'n1'));
    await n1.manager.settled();
    expect(n1.manager.state(5)).toBe('owned');
    expect(n1.aliveChecks).toEqual(['dead']);
    expect(await client.get(keys.lease(5))).toBe('n1');
    expect(BigInt(n1.leases.token(5)!)).toBeGreaterThan(BigInt(deadToken));
    expect(await client.get(keys.fence(5))).toBe(n1.leases.token(5));

    await dead.renew();
    expect(lostByDead).toEqual([5]);
  });

  it('settles only once both its acquisitions and its handoffs are done', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys, { retryMs: 10 });
    n1.manager.applyTable(table(1, (s) => (s === 0 ? 'n1' : 'n2')));
    await n1.manager.settled();
    await n1.host.ask(counterIn(0), { type: 'add', n: 1 });
    const n2 = holder('n2', keys);
    await n2.acquire([6]);

    n1.store.holdSnapshots();
    n1.manager.applyTable(table(2, (s) => (s === 6 ? 'n1' : 'n2')));
    let settled = false;
    const settling = Promise.all([n1.manager.settled(), n1.manager.settled()]).then(() => (settled = true));
    await vi.waitFor(() => expect(n1.store.heldSnapshots).toBe(1));
    expect(n1.manager.pending).toBe(2);

    n1.store.releaseSnapshots();
    await vi.waitFor(() => expect(n1.manager.state(0)).toBe('released'));
    await vi.waitFor(() => expect(n1.aliveChecks.length).toBeGreaterThanOrEqual(2));
    expect(n1.manager.pending).toBe(1);
    expect(settled).toBe(false);

    await n2.release([6]);
    await settling; // every waiter ran
    expect(n1.manager.pending).toBe(0);
    expect(n1.manager.state(6)).toBe('owned');
  });

  it('re-acquires a shard whose lease was lost while the table still gives it to this node, recovering its actors from Redis', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys, { retryMs: 10 });
    n1.manager.applyTable(table(1, () => 'n1'));
    await n1.manager.settled();
    const actor = counterIn(6);
    await n1.host.ask(actor, { type: 'add', n: 2 });

    const usurper = holder('n3', keys);
    await usurper.acquire([6], { force: true });
    await n1.leases.renew(); // refused: the lease moved on → lost → evicted and manager.lost
    expect(n1.lostCalls).toEqual([6]);
    expect(n1.host.isResident(actor)).toBe(false);
    expect(n1.manager.state(6)).toBe('acquiring');
    expect(n1.manager.count('owned')).toBe(SHARDS - 1);

    // The usurper is alive: n1 waits for it, then takes the shard back with a newer token.
    await vi.waitFor(() => expect(n1.aliveChecks).toContain('n3'));
    const usurperToken = usurper.token(6)!;
    await usurper.release([6]);
    await vi.waitFor(() => expect(n1.manager.state(6)).toBe('owned'));
    expect(BigInt(n1.leases.token(6)!)).toBeGreaterThan(BigInt(usurperToken));
    expect(n1.ownedCalls.filter((s) => s === 6)).toHaveLength(2);
    expect(await n1.host.ask(actor, { type: 'get' })).toEqual({ ok: true, value: 2 });
  });

  it('self-fence: past the serving deadline an owned shard reads released at once; fence() stops every shard without writing and takes nothing until unfence()', async () => {
    const keys = freshKeys();
    let serving = true;
    const n1 = await startNode('n1', keys, { retryMs: 10, mayServe: () => serving });
    n1.manager.applyTable(table(1, (s) => (s < 6 ? 'n1' : 'n2')));
    await n1.manager.settled();
    const actor = counterIn(3);
    expect(await n1.host.ask(actor, { type: 'add', n: 4 })).toEqual({ ok: true, value: 4 });
    const tokens = allShards.filter((s) => s < 6).map((s) => BigInt(n1.leases.token(s)!));
    const snapshotsBefore = n1.store.snapshots.length;

    // The deadline passed (a pause): synchronous, before any timer ran the fence itself.
    serving = false;
    expect(n1.manager.state(3)).toBe('released');
    expect(n1.manager.serving).toBe(false);
    const mark = n1.manager.fenceMark;
    const dropped = n1.manager.fence();
    expect(dropped.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(n1.manager.servedSince(mark)).toBe(false);
    expect(n1.manager.isFenced).toBe(true);
    expect(n1.manager.fence()).toEqual([]); // once
    serving = true; // heartbeat fresh again, but not unfenced yet
    for (const s of allShards) expect(n1.manager.state(s)).toBe('released');
    expect(n1.manager.serving).toBe(false);
    expect(n1.host.isResident(actor)).toBe(false);
    for (const s of allShards) expect(n1.leases.token(s)).toBeUndefined();
    expect(n1.lostCalls).toEqual([]); // not a lost lease: the manager stopped them itself
    expect(n1.store.snapshots.length).toBe(snapshotsBefore); // evicted, not flushed
    // A newer table while fenced acquires nothing.
    n1.manager.applyTable(table(2, (s) => (s < 7 ? 'n1' : 'n2')));
    await turns(20);
    expect(n1.manager.count('acquiring') + n1.manager.count('owned')).toBe(0);
    expect(await client.get(keys.lease(3))).toBe('n1'); // the old lease lapses by itself (or is taken over)

    n1.manager.unfence();
    expect(n1.manager.isFenced).toBe(false);
    await n1.manager.settled();
    expect(n1.manager.count('owned')).toBe(7);
    allShards.filter((s) => s < 6).forEach((s, i) => expect(BigInt(n1.leases.token(s)!)).toBeGreaterThan(tokens[i]!)); // fence tokens only grow
    expect(await n1.host.ask(actor, { type: 'get' })).toEqual({ ok: true, value: 4 }); // recovered from Redis
  });

  it('back from a self-fence, gives back the forgotten leases of shards the ring moved away: their new owner takes them at once, not after the lease TTL', async () => {
    const keys = freshKeys();
    let serving = true;
    const n1 = await startNode('n1', keys, { retryMs: 10, mayServe: () => serving });
    const n2 = await startNode('n2', keys, { retryMs: 20, alive: () => true }); // n1 stays alive throughout
    const first = table(1, () => 'n1');
    n1.manager.applyTable(first);
    n2.manager.applyTable(first);
    await n1.manager.settled();
    const oldToken = n1.leases.token(3)!;

    serving = false;
    n1.manager.fence();
    // While n1 is fenced the ring moves shard 3 to n2: its lease still names n1, alive, so n2 waits.
    const second = table(2, (s) => (s === 3 ? 'n2' : 'n1'));
    n1.manager.applyTable(second);
    n2.manager.applyTable(second);
    await vi.waitFor(() => expect(n2.aliveChecks).toContain('n1'));
    expect(n2.manager.state(3)).toBe('acquiring');

    serving = true;
    const recoveredAt = performance.now();
    n1.manager.unfence();
    await vi.waitFor(() => expect(n2.manager.state(3)).toBe('owned'), { timeout: 5_000, interval: 10 }); // the lease TTL is 15 s
    const tookMs = performance.now() - recoveredAt;
    console.log(`[shard-manager] shard moved away during a self-fence owned by its new owner ${Math.round(tookMs)} ms after recovery`);
    expect(BigInt(n2.leases.token(3)!)).toBeGreaterThan(BigInt(oldToken));
    await n1.manager.settled();
    expect(n1.manager.count('owned')).toBe(SHARDS - 1); // the others taken again with new tokens
  });

  it('gives back a lease whose acquisition lands after a self-fence', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys, { retryMs: 10 });
    n1.manager.applyTable(table(1, () => 'n1'));
    expect(n1.manager.count('acquiring')).toBe(SHARDS);
    n1.manager.fence(); // while the acquisition is in flight
    await vi.waitFor(async () => {
      for (const s of allShards) expect(await client.get(keys.lease(s))).toBeNull();
    });
    expect(n1.manager.count('owned')).toBe(0);
    for (const s of allShards) expect(n1.leases.token(s)).toBeUndefined();
  });

  it('ignores lost() for a shard it does not own', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys);
    n1.manager.applyTable(table(1, (s) => (s === 0 ? 'n1' : 'n2')));
    await n1.manager.settled();
    n1.manager.lost(1);
    expect(n1.manager.state(1)).toBe('released');
    expect(n1.manager.pending).toBe(0);
    expect(await client.exists(keys.lease(1))).toBe(0);
  });

  it('stops acquiring a shard that a newer table gives elsewhere while it waited for a live holder', async () => {
    const keys = freshKeys();
    const n2 = holder('n2', keys);
    await n2.acquire([3]);
    const n1 = await startNode('n1', keys, { retryMs: 10 });
    n1.manager.applyTable(table(1, (s) => (s === 3 ? 'n1' : 'n2')));
    await vi.waitFor(() => expect(n1.aliveChecks.length).toBeGreaterThanOrEqual(1));
    expect(n1.manager.state(3)).toBe('acquiring');

    n1.manager.applyTable(table(2, (s) => (s === 3 ? 'n3' : 'n2')));
    // Released at once, so that the router re-routes what waited for it to the new owner.
    expect(n1.manager.state(3)).toBe('released');
    expect(n1.manager.pending).toBe(0);
    await n1.manager.settled();
  });

  it('gives a lease straight back when a newer table moved the shard away while the lease was being taken', async () => {
    const keys = freshKeys();
    const n1 = await startNode('n1', keys);
    // Hold n1's lease acquisition in flight until the newer table has arrived.
    let letGo: () => void = () => {};
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const acquire = n1.leases.acquire.bind(n1.leases);
    const spy = vi.spyOn(n1.leases, 'acquire').mockImplementation(async (shards, options) => {
      await gate;
      return acquire(shards, options);
    });
    n1.manager.applyTable(table(1, (s) => (s === 2 ? 'n1' : 'n2')));
    await vi.waitFor(() => expect(spy).toHaveBeenCalledTimes(1));

    n1.manager.applyTable(table(2, () => 'n3'));
    expect(n1.manager.state(2)).toBe('released');
    letGo();
    // The acquisition went through in Redis, but the shard is not ours: the lease must not stay.
    await vi.waitFor(async () => {
      expect(n1.leases.token(2)).toBeUndefined();
      expect(await client.exists(keys.lease(2))).toBe(0);
    });
    await n1.manager.settled();
    expect(n1.manager.state(2)).toBe('released');
    expect(n1.ownedCalls).toEqual([]);
    spy.mockRestore();
  });

  it.each([0x5eed, 7, 2024])(
    'never lets two nodes own a shard at once while both follow the same random sequence of tables (seed %i)',
    async (seed) => {
      const keys = freshKeys();
      const rand = mulberry32(seed);
      const n1 = await startNode('n1', keys, { retryMs: 5 });
      const n2 = await startNode('n2', keys, { retryMs: 5 });
      const pair = [n1, n2];
      const actors = allShards.map(counterIn);
      const expected = new Map(actors.map((a) => [a, 0]));

      const violations: string[] = [];
      let samples = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const s of allShards) {
            if (n1.manager.state(s) === 'owned' && n2.manager.state(s) === 'owned')
              violations.push(`shard ${s} owned by both (sample ${samples})`);
            if (n1.leases.token(s) !== undefined && n2.leases.token(s) !== undefined)
              violations.push(`shard ${s} leased by both (sample ${samples})`);
          }
          samples++;
          await new Promise((r) => setImmediate(r));
        }
      })();

      let last = table(0, () => 'nobody');
      for (let epoch = 1; epoch <= 15; epoch++) {
        last = table(epoch, () => pick(rand, ['n1', 'n2']));
        const [first, second] = shuffle(rand, pair) as [TestNode, TestNode];
        first.manager.applyTable(last);
        // The announcement reaches the other node a few event-loop turns later (or at once).
        if (rand() < 0.6) await turns(randomInt(rand, 15));
        second.manager.applyTable(last);
        if (rand() < 0.5) await Promise.all(pair.map((n) => n.manager.settled()));
        // Traffic to whichever node serves each actor's shard right now.
        const adds = actors.flatMap((a) => {
          const server = pair.find((n) => n.manager.state(shardOf(a)) === 'owned');
          if (!server) return [];
          expected.set(a, expected.get(a)! + 1);
          return [server.host.ask(a, { type: 'add', n: 1 })];
        });
        for (const r of await Promise.all(adds)) expect(r.ok).toBe(true);
      }
      await Promise.all(pair.map((n) => n.manager.settled()));
      sampling = false;
      await sampler;

      expect(violations).toEqual([]);
      expect(samples).toBeGreaterThan(50);
      for (const s of allShards) {
        const owner = last.owners[s]!;
        const other = owner === 'n1' ? n2 : n1;
        const self = owner === 'n1' ? n1 : n2;
        expect(self.manager.state(s)).toBe('owned');
        expect(other.manager.state(s)).toBe('released');
        expect(await client.get(keys.lease(s))).toBe(owner);
      }
      // Every acknowledged add survived the handoffs.
      for (const a of actors) {
        const owner = last.owners[shardOf(a)] === 'n1' ? n1 : n2;
        expect(await owner.host.ask(a, { type: 'get' })).toEqual({ ok: true, value: expected.get(a) });
      }
    },
  );
});
