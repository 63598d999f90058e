/** One read of a cluster's coordination state in Redis: ring, registered nodes, heartbeats, progress reports and shard leases. */
import type { NodeProgress } from '../../cluster/cluster-admin.ts';
import type { NodeInfo, RingDoc } from '../../cluster/cluster-types.ts';
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { defaultMembershipConfig, Membership } from '../../cluster/membership.ts';
import { decodeRing } from '../../cluster/ring-store.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { CALL_TIMEOUT_MS, withDeadline } from './deadline.ts';
import type { ClockReading, SkewReading } from './redis-checks.ts';

/** A live heartbeat: when the node wrote it (its own clock) and how long it has left (Redis' clock). */
export interface Heartbeat {
  /** The node's Date.now() when it last refreshed the key; undefined when the value is not a number. */
  readonly writtenAtMs: number | undefined;
  /** Milliseconds until the key expires (PTTL). */
  readonly ttlLeftMs: number;
}

export interface ClusterState {
  readonly cluster: string;
  /**
   * The default membership heartbeat TTL (cluster/membership.ts): for a node whose record does not
   * carry its own HEARTBEAT_TTL_MS (an older node). Judge a node by `heartbeatTtlOf`.
   */
  readonly heartbeatTtlMs: number;
  readonly ring: RingDoc | undefined;
  /** Why the stored ring could not be read, when it could not. */
  readonly ringError: string | undefined;
  /** The owner of every shard by the ring (empty without a ring or an active node). */
  readonly owners: readonly string[];
  /** Every registered node, alive or not, whose record could be read. */
  readonly registered: readonly NodeInfo[];
  /** Node records listed but unreadable (`<key>: <why>`): skipped, so one bad record does not hide the others. */
  readonly badRecords: readonly string[];
  /** Live heartbeats by node id (a node without one is down). */
  readonly heartbeats: ReadonlyMap<string, Heartbeat>;
  /** Each node's last progress report (its ring epoch, handoffs and the age of the oldest), by node id. */
  readonly progress: ReadonlyMap<string, NodeProgress>;
  /** The lease holder of every shard (index = shard), null when unleased; empty without a ring. */
  readonly leases: readonly (string | null)[];
  /** This machine's Date.now() when the heartbeats were read (what their PTTLs are relative to). */
  readonly readAtMs: number;
  /** How long the heartbeat read took: the PTTLs were taken somewhere within it. */
  readonly readDurationMs: number;
}

/** A stored progress report, or undefined when the value is not one (an older or foreign writer). */
function decodeProgress(raw: string | null): NodeProgress | undefined {
  if (raw === null) return undefined;
  try {
    const x = JSON.parse(raw) as Partial<Record<keyof NodeProgress, unknown>>;
    const n = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    if (!n(x.epoch) || !n(x.owned) || !n(x.pending) || !n(x.done) || !n(x.at)) return undefined;
    const progress = { epoch: x.epoch, owned: x.owned, pending: x.pending, done: x.done, at: x.at };
    return n(x.oldestHandoffMs) ? { ...progress, oldestHandoffMs: x.oldestHandoffMs } : progress;
  } catch {
    return undefined;
  }
}

/** Reads the cluster's state; every command is bounded by CALL_TIMEOUT_MS (throws DeadlineError past it). */
export async function readClusterState(client: RedisClient, keys: KeyLayout): Promise<ClusterState> {
  const bounded = <T>(p: Promise<T>, what: string): Promise<T> => withDeadline(p, CALL_TIMEOUT_MS, what);
  // Read-only use of Membership: it parses node records as the nodes write them; nothing is started.
  const membership = new Membership(client, keys, { id: 'doctor', http: '', grpc: '', peer: '', startedAt: 0 }, silentLogger);

  let ring: RingDoc | undefined;
  let ringError: string | undefined;
  const rawRing = await bounded(client.get(keys.ring()), 'Redis GET ring');
  if (rawRing !== null) {
    try {
      ring = decodeRing(rawRing, keys.ring());
    } catch (err) {
      ringError = (err as Error).message;
    }
  }
  // Record by record (not Membership.all, which throws on the first bad one): a malformed record is named and skipped.
  const listed = (await bounded(client.smembers(keys.nodes()), 'Redis read of the node list')).sort();
  const records = await bounded(
    Promise.all(
      listed.map((id) =>
        membership.info(id).then(
          (info) => ({ info }),
          (err: unknown) => ({ bad: `${keys.node(id)}: ${err instanceof Error ? err.message : String(err)}` }),
        ),
      ),
    ),
    'Redis read of the node records',
  );
  const registered = records.flatMap((r) => ('info' in r && r.info ? [r.info] : []));
  const badRecords = records.flatMap((r) => ('bad' in r ? [r.bad] : []));
  const ids = [...new Set([...(ring?.nodes.map((n) => n.id) ?? []), ...registered.map((n) => n.id)])].sort();

  const heartbeats = new Map<string, Heartbeat>();
  let readAtMs = Date.now();
  let readDurationMs = 0;
  if (ids.length > 0) {
    const startedAt = Date.now();
    // The heartbeat keys share one hash tag: one pipeline works on Redis Cluster too.
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.get(keys.heartbeat(id)).pttl(keys.heartbeat(id));
    const results = (await bounded(pipeline.exec(), 'Redis read of the heartbeats')) ?? [];
    readAtMs = Date.now();
    readDurationMs = readAtMs - startedAt;
    ids.forEach((id, i) => {
      const [getErr, value] = results[2 * i] ?? [];
      const [ttlErr, pttl] = results[2 * i + 1] ?? [];
      if (getErr) throw getErr;
      if (ttlErr) throw ttlErr;
      if (value === null || value === undefined || typeof pttl !== 'number' || pttl === -2) return;
      const written = Number(value);
      heartbeats.set(id, { writtenAtMs: Number.isFinite(written) ? written : undefined, ttlLeftMs: pttl });
    });
  }

  // Progress keys live in different Redis Cluster slots: one GET each (auto-pipelined), as ClusterAdmin reads them.
  const progressRaw = await bounded(Promise.all(ids.map((id) => client.get(keys.progress(id)))), 'Redis read of the progress reports');
  const progress = new Map<string, NodeProgress>();
  ids.forEach((id, i) => {
    const p = decodeProgress(progressRaw[i] ?? null);
    if (p) progress.set(id, p);
  });

  const owners = ring && ring.nodes.some((n) => n.state === 'active') ? buildShardTable(ring).owners : [];
  const leases = ring
    ? await bounded(
        Promise.all(Array.from({ length: ring.shardCount }, (_, s) => client.get(keys.lease(s)))),
        'Redis read of the shard leases',
      )
    : [];

  return {
    cluster: keys.cluster,
    heartbeatTtlMs: defaultMembershipConfig.ttlMs,
    ring,
    ringError,
    owners,
    registered,
    badRecords,
    heartbeats,
    progress,
    leases,
    readAtMs,
    readDurationMs,
  };
}

/** Node `id`'s heartbeat TTL: the one its record carries (its HEARTBEAT_TTL_MS), else the default. */
export function heartbeatTtlOf(state: ClusterState, id: string): number {
  return state.registered.find((n) => n.id === id)?.heartbeatTtlMs ?? state.heartbeatTtlMs;
}

/**
 * Each live node's clock minus Redis', estimated from its heartbeat: the node wrote its own
 * Date.now() when Redis set the TTL, so Redis' time of that write is (now in Redis time) − (TTL −
 * PTTL left). The estimate is off by up to this machine's own uncertainty, the heartbeat read's
 * duration (the PTTL was taken somewhere within it) and the node's write latency (its stamp
 * precedes the SET by it: this machine's round trip stands in for it).
 */
export function nodeClockSkews(state: ClusterState, self: ClockReading): Map<string, SkewReading> {
  const redisNow = state.readAtMs - self.skewMs;
  const uncertaintyMs = self.uncertaintyMs + state.readDurationMs + 2 * self.uncertaintyMs;
  const out = new Map<string, SkewReading>();
  for (const [id, hb] of state.heartbeats) {
    if (hb.writtenAtMs === undefined || hb.ttlLeftMs < 0) continue;
    const writtenRedisMs = redisNow - (heartbeatTtlOf(state, id) - hb.ttlLeftMs);
    out.set(id, { skewMs: Math.round(hb.writtenAtMs - writtenRedisMs), uncertaintyMs });
  }
  return out;
}
