/**
 * The doctor's cluster read over a private Redis holding a cluster written by the project's own
 * classes (ring store, membership, leases) with no node running: a dead ring node, a lease held
 * by a non-owner, a stuck epoch — states a live cluster heals within seconds, held still here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { Membership } from '../../cluster/membership.ts';
import { RingStore } from '../../cluster/ring-store.ts';
import { ShardLeases } from '../../cluster/shard-leases.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { readClusterState } from '../../tools/doctor/cluster-state.ts';
import { RedisClients } from '../support/redis-node.ts';
import { runCli } from '../support/run-cli.ts';

const SHARDS = 8;
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

/**
 * A cluster of n1 and n2 as the nodes would have written it: the ring, both node records and
 * heartbeats, each node's progress at the ring's epoch, and every lease held by its owner.
 * Returns what the test needs to spoil it.
 */
async function writtenCluster(): Promise<{ keys: KeyLayout; owners: readonly string[]; members: Map<string, Membership> }> {
  const keys = new KeyLayout(`${redis.cluster}d${seq++}`);
  const ring = await new RingStore(client, keys, silentLogger).create({
    shardCount: SHARDS,
    nodes: [
      { id: 'n1', weight: 1, state: 'active' },
      { id: 'n2', weight: 1, state: 'active' },
    ],
  });
  const { owners } = buildShardTable(ring);
  const members = new Map<string, Membership>();
  for (const id of ['n1', 'n2']) {
    // Role-less records: no address for the ports check to try.
    const m = new Membership(client, keys, { id, http: '', grpc: '', peer: '', startedAt: Date.now() }, silentLogger, { ttlMs: 60_000 });
    await m.start();
    members.set(id, m);
    const mine = owners.flatMap((o, s) => (o === id ? [s] : []));
    await new ShardLeases(client, keys, id, () => {}, silentLogger, { ttlMs: 60_000, renewEveryMs: 60_000 }).acquire(mine);
    await client.set(
      keys.progress(id),
      JSON.stringify({ epoch: ring.epoch, owned: mine.length, pending: 0, done: mine.length, at: Date.now() }),
      'PX',
      60_000,
    );
  }
  return { keys, owners, members };
}

const doctor = (keys: KeyLayout) =>
  runCli('tools/doctor.ts', [], { REDIS_URL: redis.url, CLUSTER: keys.cluster, ADMIN_TOKEN: undefined, NODE_ID: 'doctor-test' }, 30_000);

describe('doctor reading a cluster from Redis', () => {
  it('reads the ring, the nodes, their heartbeats and progress, and every lease as the nodes wrote them', async () => {
    const { keys, owners, members } = await writtenCluster();
    const state = await readClusterState(client, keys);
    expect(state.ring?.epoch).toBe(1);
    expect(state.owners).toEqual(owners);
    expect(state.leases).toEqual(owners);
    expect(state.registered.map((n) => n.id)).toEqual(['n1', 'n2']);
    expect([...state.heartbeats.keys()]).toEqual(['n1', 'n2']);
    const hb = state.heartbeats.get('n1')!;
    expect(hb.ttlLeftMs).toBeGreaterThan(50_000);
    expect(Math.abs(hb.writtenAtMs! - Date.now())).toBeLessThan(10_000);
    expect(state.progress.get('n2')).toMatchObject({ epoch: 1, pending: 0 });
    for (const m of members.values()) await m.stop();
  });

  it('a ring node whose heartbeat is gone: heartbeats fails naming it, exit 1', async () => {
    const { keys, members } = await writtenCluster();
    await members.get('n2')!.stop(); // deletes its heartbeat, as an expired one would be gone
    const run = await doctor(keys);
    await members.get('n1')!.stop();
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(
      /^fail +heartbeats: +n2 in the ring without a heartbeat \(none for over 6\.0 s\): down or cut off from Redis — /m,
    );
    // Its shards' leases are still held by it until they lapse: not yet a lease problem.
    expect(run.stdout).toMatch(/^ok +leases: +8\/8 shards leased by their owner$/m);
  });

  it('a lease held by a live node that does not own the shard (written directly): leases fails, exit 1', async () => {
    const { keys, owners, members } = await writtenCluster();
    const shard = owners.indexOf('n1');
    await client.set(keys.lease(shard), 'n2', 'PX', 60_000);
    const run = await doctor(keys);
    for (const m of members.values()) await m.stop();
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toContain(
      `fail  leases:        7/8 shards leased by their owner; 1 held by a node that is not the owner and is not handing off: shard ${shard} held by n2, owned by n1`,
    );
    expect(run.stdout).toMatch(/^ok +heartbeats: +2 alive \(n1, n2\)$/m);
  });

  it('a live node that stays on an older epoch: ring fails naming it and its epoch, exit 1', async () => {
    const { keys, members } = await writtenCluster();
    await new RingStore(client, keys, silentLogger).compareAndSet(1, {
      nodes: [
        { id: 'n1', weight: 1, state: 'active' },
        { id: 'n2', weight: 2, state: 'active' },
      ],
    });
    // n1 follows epoch 2 (its leases are taken as the new table says); n2 stays on epoch 1.
    await client.set(keys.progress('n1'), JSON.stringify({ epoch: 2, owned: 0, pending: 0, done: 0, at: Date.now() }), 'PX', 60_000);
    const run = await doctor(keys);
    for (const m of members.values()) await m.stop();
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +ring: +epoch 2, but n2 routes by epoch 1 — /m);
  });

  it('a live node whose oldest handoff is over a minute old: handoffs fails naming it, exit 1', async () => {
    const { keys, members } = await writtenCluster();
    await client.set(
      keys.progress('n2'),
      JSON.stringify({ epoch: 1, owned: 3, pending: 1, done: 3, oldestHandoffMs: 95_000, at: Date.now() }),
      'PX',
      60_000,
    );
    const run = await doctor(keys);
    for (const m of members.values()) await m.stop();
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +handoffs: +stuck for over 60 s: n2 \(oldest 95 s\) — /m);
  });
});
