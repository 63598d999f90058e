/**
 * The doctor's cluster read over a private Redis holding a cluster written by the project's own
 * classes (ring store, membership, leases) with no node running: a dead ring node, a lease held
 * by a non-owner, a stuck epoch, a ring gone backwards or lost — states a live cluster heals
 * within seconds (or never), held still here. Membership and leases run with the production TTLs
 * (heartbeats refreshed, leases renewed by this process), so doctor's own assumptions hold and
 * every check's level is asserted in each scenario: an extra failure cannot hide.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { Membership } from '../../cluster/membership.ts';
import { RingStore } from '../../cluster/ring-store.ts';
import { defaultShardLeasesConfig, ShardLeases } from '../../cluster/shard-leases.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { heartbeatTtlOf, readClusterState } from '../../tools/doctor/cluster-state.ts';
import { RedisClients } from '../support/redis-node.ts';
import { runCli, type CliRun } from '../support/run-cli.ts';

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

interface WrittenCluster {
  readonly keys: KeyLayout;
  readonly owners: readonly string[];
  readonly members: Map<string, Membership>;
  readonly leases: Map<string, ShardLeases>;
  /** Stops the heartbeats and lease renewals (leases are released). */
  stop(): Promise<void>;
}

/**
 * A cluster of n1 and n2 as the nodes would have written it: the ring, both node records and
 * heartbeats (refreshed), each node's progress at the ring's epoch, and every lease held (and
 * renewed) by its owner. Returns what the test needs to spoil it.
 */
async function writtenCluster(): Promise<WrittenCluster> {
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
  const leases = new Map<string, ShardLeases>();
  for (const id of ['n1', 'n2']) {
    // Role-less records: no address for the ports check to try.
    const m = new Membership(client, keys, { id, http: '', grpc: '', peer: '', startedAt: Date.now() }, silentLogger);
    await m.start();
    members.set(id, m);
    const mine = owners.flatMap((o, s) => (o === id ? [s] : []));
    const l = new ShardLeases(client, keys, id, () => {}, silentLogger);
    await l.acquire(mine);
    leases.set(id, l);
    await client.set(
      keys.progress(id),
      JSON.stringify({ epoch: ring.epoch, owned: mine.length, pending: 0, done: mine.length, at: Date.now() }),
      'PX',
      60_000,
    );
  }
  return {
    keys,
    owners,
    members,
    leases,
    async stop() {
      for (const m of members.values()) await m.stop();
      for (const l of leases.values()) await l.releaseAll();
    },
  };
}

const doctor = (keys: KeyLayout) =>
  runCli('tools/doctor.ts', [], { REDIS_URL: redis.url, CLUSTER: keys.cluster, ADMIN_TOKEN: undefined, NODE_ID: 'doctor-test' }, 30_000);

/** Every check's level, by name. */
function levels(run: CliRun): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of run.stdout.matchAll(/^(ok|warn|fail) +([a-z-]+): /gm)) out[m[2]!] = m[1]!;
  return out;
}

/** The levels of a healthy written cluster (no --url: no `node` line), with `over` laid over them. */
const expected = (over: Record<string, string> = {}): Record<string, string> => ({
  configuration: 'ok',
  redis: 'ok',
  persistence: 'ok',
  eviction: 'ok',
  clock: 'ok',
  heartbeats: 'ok',
  ring: 'ok',
  leases: 'ok',
  handoffs: 'ok',
  ports: 'ok',
  ...over,
});

describe('doctor reading a cluster from Redis', () => {
  it('reads the ring, the nodes, their heartbeats and progress, and every lease as the nodes wrote them', async () => {
    const c = await writtenCluster();
    const state = await readClusterState(client, c.keys);
    await c.stop();
    expect(state.ring?.epoch).toBe(1);
    expect(state.owners).toEqual(c.owners);
    expect(state.leases).toEqual(c.owners);
    expect(state.registered.map((n) => n.id)).toEqual(['n1', 'n2']);
    expect(state.badRecords).toEqual([]);
    expect([...state.heartbeats.keys()]).toEqual(['n1', 'n2']);
    expect(state.heartbeatTtlMs).toBe(2_000);
    const hb = state.heartbeats.get('n1')!;
    expect(hb.ttlLeftMs).toBeGreaterThan(1_000);
    expect(Math.abs(hb.writtenAtMs! - Date.now())).toBeLessThan(10_000);
    expect(state.progress.get('n2')).toMatchObject({ epoch: 1, pending: 0 });
  });

  it('a healthy cluster: every check ok, exit 0', async () => {
    const c = await writtenCluster();
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected());
    expect(run.code, run.out).toBe(0);
    expect(run.stdout).toMatch(/^ok +clock: +clocks against Redis: this machine [+-]\d+ ±\d+ ms, node n1 [+-]\d+ ±\d+ ms, node n2 /m);
  });

  it('a ring node whose heartbeat is gone: heartbeats fails naming it, and leases fails for the shards it still holds, exit 1', async () => {
    const c = await writtenCluster();
    await c.members.get('n2')!.stop(); // deletes its heartbeat, as an expired one would be gone; its leases are still renewed
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ heartbeats: 'fail', leases: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(
      /^fail +heartbeats: +n2 in the ring without a heartbeat \(none for over 2\.0 s\): down or cut off from Redis — /m,
    );
    const n2Shards = c.owners.filter((o) => o === 'n2').length;
    expect(run.stdout).toMatch(
      new RegExp(
        `^fail +leases: +${SHARDS - n2Shards}/${SHARDS} shards leased by their owner; ${n2Shards} held by down owner n2 \\(unserved until taken over\\) — `,
        'm',
      ),
    );
  });

  it('a node with its own HEARTBEAT_TTL_MS is judged by the TTL in its record: 45 s without a refresh of a 60 s TTL is late, and its clock reads right, exit 0', async () => {
    const c = await writtenCluster();
    expect(heartbeatTtlOf(await readClusterState(client, c.keys), 'n1')).toBe(2_000); // written by Membership with the default
    await c.members.get('n2')!.stop(); // no more refreshes; written again below as a node with a 60 s TTL would have
    await client.set(c.keys.node('n2'), JSON.stringify({ id: 'n2', http: '', grpc: '', peer: '', startedAt: 0, heartbeatTtlMs: 60_000 }));
    await client.set(c.keys.heartbeat('n2'), String(Date.now() - 45_000), 'PX', 15_000);
    const run = await doctor(c.keys);
    await c.stop();
    // By the default 2 s TTL this heartbeat would look fresh, and n2's clock 58 s off.
    expect(levels(run), run.out).toEqual(expected({ heartbeats: 'warn' }));
    expect(run.code, run.out).toBe(0);
    expect(run.stdout).toMatch(/^warn +heartbeats: +late heartbeat: n2 \(not refreshed for 4\d\.\d s\); it refreshes every 12\.0 s — /m);
  });

  it('a lease held by a live node that does not own the shard (written directly): leases fails, exit 1', async () => {
    const c = await writtenCluster();
    const shard = c.owners.indexOf('n1');
    await client.set(c.keys.lease(shard), 'n2', 'PX', defaultShardLeasesConfig.ttlMs * 4);
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ leases: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toContain(
      `fail  leases:        7/8 shards leased by their owner; 1 held by a node that is not the owner and is not handing off: shard ${shard} held by n2, owned by n1`,
    );
    expect(run.stdout).toMatch(/^ok +heartbeats: +2 alive \(n1, n2\)$/m);
  });

  it('a live node that stays on an older epoch: ring fails naming it and its epoch, exit 1', async () => {
    const c = await writtenCluster();
    await new RingStore(client, c.keys, silentLogger).compareAndSet(1, {
      nodes: [
        { id: 'n1', weight: 1, state: 'active' },
        { id: 'n2', weight: 3, state: 'active' },
      ],
    });
    // n1 follows epoch 2; n2 stays on epoch 1 and keeps renewing n1's shards it should have taken.
    await client.set(c.keys.progress('n1'), JSON.stringify({ epoch: 2, owned: 0, pending: 0, done: 0, at: Date.now() }), 'PX', 60_000);
    const run = await doctor(c.keys);
    await c.stop();
    // The shards epoch 2 gives n2 stay with n1, which is done moving: unserved by their owner, a failure of its own.
    expect(levels(run), run.out).toEqual(expected({ ring: 'fail', leases: 'fail', handoffs: 'warn' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +ring: +epoch 2, but n2 routes by epoch 1 — /m);
  });

  it('a live node ahead of the stored ring (a ring restored from an older copy): ring fails at once, exit 1', async () => {
    const c = await writtenCluster();
    await client.set(c.keys.progress('n2'), JSON.stringify({ epoch: 5, owned: 4, pending: 0, done: 4, at: Date.now() }), 'PX', 60_000);
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ ring: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(
      /^fail +ring: +ring went backwards: the stored ring is at epoch 1, but n2 routes by epoch 5 — .*then restart those nodes$/m,
    );
  });

  it('the ring is gone while nodes route by an epoch: ring fails (a lost ring is no fresh install), exit 1', async () => {
    const c = await writtenCluster();
    await client.del(c.keys.ring());
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ ring: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +ring: +the ring is gone from Redis .*but n1 routes by epoch 1, n2 routes by epoch 1 — /m);
    expect(run.stdout).toMatch(/^ok +leases: +not checked: no ring with an active node$/m);
  });

  it('nothing registered under this CLUSTER (a wrong name or database): warns naming the cluster and its keys, exit 0', async () => {
    const keys = new KeyLayout(`${redis.cluster}empty${seq++}`);
    const run = await doctor(keys);
    expect(levels(run), run.out).toEqual(expected({ heartbeats: 'warn', ring: 'warn' }));
    expect(run.code, run.out).toBe(0);
    expect(run.stdout).toContain(
      `warn  heartbeats:    no node has ever registered under cluster '${keys.cluster}' on this Redis (no keys '${keys.cluster}:*' and '{${keys.cluster}:*')`,
    );
  });

  it('a malformed node record: named and skipped (a failure), the other nodes still checked, exit 1', async () => {
    const c = await writtenCluster();
    await client.sadd(c.keys.nodes(), 'n3');
    await client.set(c.keys.node('n3'), '{"id":');
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ heartbeats: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(
        `^fail +heartbeats: +2 alive \\(n1, n2\\); 1 unreadable node record skipped: \\{${c.keys.cluster}:members\\}:node:n3: `,
        'm',
      ),
    );
  });

  it('the cluster state cannot be read: every check still has its line, failing with "not read", exit 1', async () => {
    const c = await writtenCluster();
    await c.stop();
    await client.del(c.keys.nodes());
    await client.set(c.keys.nodes(), 'not a set'); // SMEMBERS now fails, as a read from a down Cluster master would
    const run = await doctor(c.keys);
    const failing = { heartbeats: 'fail', ring: 'fail', leases: 'fail', handoffs: 'fail', ports: 'fail' };
    expect(levels(run), run.out).toEqual(expected(failing));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +leases: +not read: the cluster state of '.*' \(.*WRONGTYPE.*\) — /m);
  });

  it('a lapsed lease its live owner does not take back: "unleased" only after the renewal period, exit 1', async () => {
    const c = await writtenCluster();
    const shard = c.owners.indexOf('n1');
    // Another incarnation's fence: n1's renewal is refused, so it drops the lease for good.
    await client.incr(c.keys.fence(shard));
    await client.del(c.keys.lease(shard));
    const started = Date.now();
    const run = await doctor(c.keys);
    const tookMs = Date.now() - started;
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ leases: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(
        `^fail +leases: +7/8 shards leased by their owner; 1 unleased, so unserved: shard ${shard} \\(owner n1, not taken back for 6 s\\)`,
        'm',
      ),
    );
    expect(tookMs).toBeGreaterThanOrEqual(6_000);
    expect(tookMs).toBeLessThan(20_000);
  });

  it('a lease that lapsed (Redis was away) and its owner renews: no failure, exit 0', async () => {
    const c = await writtenCluster();
    const shard = c.owners.indexOf('n1');
    await client.del(c.keys.lease(shard)); // n1's next renewal takes it back (the fence is still its token)
    const run = await doctor(c.keys);
    await c.stop();
    expect(run.code, run.out).toBe(0);
    expect(levels(run), run.out).toEqual(expected({ leases: levels(run).leases === 'ok' ? 'ok' : 'warn' }));
    expect(run.stdout).not.toMatch(/unleased/);
  });

  it('a live node whose oldest handoff is over a minute old: handoffs fails naming it, exit 1', async () => {
    const c = await writtenCluster();
    await client.set(
      c.keys.progress('n2'),
      JSON.stringify({ epoch: 1, owned: 4, pending: 1, done: 4, oldestHandoffMs: 95_000, at: Date.now() }),
      'PX',
      60_000,
    );
    const run = await doctor(c.keys);
    await c.stop();
    expect(levels(run), run.out).toEqual(expected({ handoffs: 'fail' }));
    expect(run.code, run.out).toBe(1);
    expect(run.stdout).toMatch(/^fail +handoffs: +stuck for over 60 s: n2 \(oldest 95 s\) — /m);
  });
});
