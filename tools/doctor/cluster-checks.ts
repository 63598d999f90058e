/**
 * Doctor's cluster checks over what the nodes keep in Redis (cluster-state.ts): heartbeats, the
 * ring epoch each node routes by, shard leases against the ring's owners, and handoffs. Pure
 * functions of one or two reads: a finding that may be a moment of a normal change (a node
 * catching up, a lease moving) counts only when `previous`, a read taken a little earlier, shows
 * it too.
 */
import { fail, ok, someOf, warn, type CheckResult } from './check-result.ts';
import type { ClusterState } from './cluster-state.ts';

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const ringIds = (s: ClusterState): string[] => s.ring?.nodes.map((n) => n.id) ?? [];

/** Live nodes still adopting the ring's epoch or moving shards, with what they report. */
function moving(s: ClusterState): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, p] of s.progress) {
    if (!s.heartbeats.has(id)) continue;
    const behind = s.ring !== undefined && p.epoch < s.ring.epoch;
    if (behind || p.pending > 0) out.set(id, `${id} ${p.pending} pending at epoch ${p.epoch}`);
  }
  return out;
}

/** `heartbeats` check: every node of the ring has a live heartbeat, refreshed on time. */
export function heartbeatsCheck(s: ClusterState): CheckResult {
  if (s.registered.length === 0 && !s.ring)
    return warn(
      'heartbeats',
      `no node has registered in cluster "${s.cluster}" on this Redis`,
      "check that CLUSTER here is the nodes' CLUSTER and REDIS_URL their Redis, and that the nodes run",
    );
  const dead = ringIds(s).filter((id) => !s.heartbeats.has(id));
  if (dead.length > 0)
    return fail(
      'heartbeats',
      `${someOf(dead)} in the ring without a heartbeat (none for over ${seconds(s.heartbeatTtlMs)}): down or cut off from Redis`,
      `restart ${dead.length === 1 ? 'it' : 'them'} or fix ${dead.length === 1 ? 'its' : 'their'} Redis connection; a live node takes a dead one out of the ring within seconds (or: npm run ring -- remove ${dead[0]})`,
    );
  const refreshEvery = s.heartbeatTtlMs / 3;
  const late = [...s.heartbeats]
    .filter(([, hb]) => hb.ttlLeftMs >= 0 && hb.ttlLeftMs < refreshEvery)
    .map(([id, hb]) => `${id} (not refreshed for ${seconds(s.heartbeatTtlMs - hb.ttlLeftMs)})`);
  if (late.length > 0)
    return warn(
      'heartbeats',
      `late heartbeat: ${someOf(late)}; nodes refresh every ${seconds(refreshEvery)}`,
      'the node is stalled (event loop blocked, CPU starved) or its Redis link is slow: check its logs and CPU',
    );
  const alive = [...s.heartbeats.keys()].sort();
  const left = s.registered.map((n) => n.id).filter((id) => !s.heartbeats.has(id));
  return ok(
    'heartbeats',
    `${alive.length} alive (${someOf(alive, 5)})${left.length > 0 ? `; ${left.length} left earlier (${someOf(left)})` : ''}`,
  );
}

/** `ring` check: a readable ring with an active node, every live ring node routing by its epoch, no live node left out. */
export function ringCheck(s: ClusterState, previous?: ClusterState): CheckResult {
  if (s.ringError !== undefined)
    return fail(
      'ring',
      `the stored ring is unreadable: ${s.ringError}`,
      'restore the ring document from a backup; nodes cannot route without it',
    );
  const aliveIds = [...s.heartbeats.keys()].sort();
  if (!s.ring) {
    if (aliveIds.length > 0)
      return warn(
        'ring',
        `no ring yet; ${someOf(aliveIds)} wait to be added (AUTO_JOIN=false)`,
        `npm run ring -- add ${aliveIds[0]}, or start a node with AUTO_JOIN=true`,
      );
    return warn('ring', `no ring yet in cluster "${s.cluster}"`, 'start a node with AUTO_JOIN=true: the first one creates the ring');
  }
  const { epoch } = s.ring;
  const active = s.ring.nodes.filter((n) => n.state === 'active').map((n) => n.id);
  if (active.length === 0)
    return fail('ring', `epoch ${epoch} has no active node: no shard is served`, 'npm run ring -- add <id> for a running node');
  const liveRing = ringIds(s).filter((id) => s.heartbeats.has(id));
  const behindIn = (st: ClusterState | undefined, id: string): boolean => {
    const p = st?.progress.get(id);
    return p !== undefined && st?.ring !== undefined && p.epoch < st.ring.epoch;
  };
  const behind = liveRing.filter((id) => behindIn(s, id) && (previous === undefined || behindIn(previous, id)));
  if (behind.length > 0)
    return fail(
      'ring',
      `epoch ${epoch}, but ${someOf(behind.map((id) => `${id} routes by epoch ${s.progress.get(id)!.epoch}`))}`,
      'that node does not follow ring changes: check its logs (ring subscription, Redis errors) and restart it',
    );
  const silent = liveRing.filter((id) => !s.progress.has(id));
  if (silent.length > 0)
    return warn(
      'ring',
      `epoch ${epoch}; ${someOf(silent)} report${silent.length === 1 ? 's' : ''} no epoch (no progress in Redis)`,
      'run the same version on every node',
    );
  const outside = aliveIds.filter((id) => !ringIds(s).includes(id));
  if (outside.length > 0)
    return warn(
      'ring',
      `epoch ${epoch}; ${someOf(outside)} alive but not in the ring`,
      `npm run ring -- add ${outside[0]} (it runs with AUTO_JOIN=false), or stop it`,
    );
  const draining = s.ring.nodes.filter((n) => n.state === 'draining').map((n) => n.id);
  return ok(
    'ring',
    `epoch ${epoch}, ${active.length} active (${someOf(active, 5)})${draining.length > 0 ? `, ${draining.length} draining` : ''}; every live node routes by it`,
  );
}

/** `leases` check: every shard's lease is held by its owner by the ring. */
export function leasesCheck(s: ClusterState, previous?: ClusterState): CheckResult {
  if (s.owners.length === 0) return ok('leases', 'not checked: no ring with an active node');
  const busy = moving(s);
  const sameBefore = (shard: number): boolean =>
    previous === undefined || (previous.leases[shard] === s.leases[shard] && previous.owners[shard] === s.owners[shard]);
  const foreignFail: string[] = [];
  const foreignMoving: string[] = [];
  const unleasedFail: string[] = [];
  const unleasedMoving: string[] = [];
  s.owners.forEach((owner, shard) => {
    const holder = s.leases[shard] ?? null;
    if (holder === owner || !sameBefore(shard)) return;
    if (holder === null) {
      const why = s.heartbeats.has(owner) ? `owner ${owner}` : `owner ${owner} is down`;
      (busy.has(owner) ? unleasedMoving : unleasedFail).push(`shard ${shard} (${why})`);
    } else {
      (busy.has(holder) ? foreignMoving : foreignFail).push(`shard ${shard} held by ${holder}, owned by ${owner}`);
    }
  });
  const total = s.owners.length;
  const good = total - foreignFail.length - foreignMoving.length - unleasedFail.length - unleasedMoving.length;
  const counts = `${good}/${total} shards leased by their owner`;
  if (foreignFail.length > 0)
    return fail(
      'leases',
      `${counts}; ${foreignFail.length} held by a node that is not the owner and is not handing off: ${someOf(foreignFail)}`,
      'restart the holder (its leases then lapse within 15 s and the owner takes them), and look in its logs for handoff errors',
    );
  if (unleasedFail.length > 0)
    return fail(
      'leases',
      `${counts}; ${unleasedFail.length} unleased, so unserved: ${someOf(unleasedFail)}`,
      'a down owner leaves the ring within seconds while another node is alive; otherwise start it or remove it (npm run ring -- remove <id>)',
    );
  if (foreignMoving.length + unleasedMoving.length > 0)
    return warn(
      'leases',
      `${counts}; ${foreignMoving.length + unleasedMoving.length} moving: ${someOf([...foreignMoving, ...unleasedMoving])}`,
      'a ring change is being applied: run doctor again when the handoffs check is ok',
    );
  return ok('leases', counts);
}

/** Age above which a handoff counts as stuck, in seconds (a drain of a busy node's shards takes a few). */
export const HANDOFF_STUCK_S = 60;

/**
 * `handoffs` check: nothing moving, or moving only for a while. The age of a node's oldest
 * handoff comes from its progress report in Redis when it carries `oldestHandoffMs`, and from
 * `oldestSeconds` (iot_cluster_handoff_oldest_seconds of a node asked over HTTP); without either,
 * a handoff seen in both reads is a warning.
 */
export function handoffsCheck(
  s: ClusterState | undefined,
  previous?: ClusterState,
  oldestSeconds: ReadonlyMap<string, number> = new Map(),
): CheckResult {
  const ages = new Map(oldestSeconds);
  for (const [id, p] of s?.progress ?? [])
    if (p.oldestHandoffMs !== undefined && s!.heartbeats.has(id)) ages.set(id, p.oldestHandoffMs / 1000);
  const stuck = [...ages].filter(([, age]) => age > HANDOFF_STUCK_S).map(([id, age]) => `${id} (oldest ${Math.round(age)} s)`);
  if (stuck.length > 0)
    return fail(
      'handoffs',
      `stuck for over ${HANDOFF_STUCK_S} s: ${someOf(stuck)}`,
      "look in that node's logs for handoff and lease errors; restarting it lets its leases lapse and the owners take them",
    );
  if (!s) return ok('handoffs', oldestSeconds.size > 0 ? `none older than ${HANDOFF_STUCK_S} s` : 'not checked: needs REDIS_URL');
  const now = moving(s);
  const before = previous ? moving(previous) : now;
  const lasting = [...now.keys()].filter((id) => before.has(id));
  const done = [...s.progress.values()].reduce((sum, p) => sum + p.done, 0);
  if (lasting.length > 0)
    return warn(
      'handoffs',
      `in flight: ${someOf(lasting.map((id) => `${now.get(id)!}${ages.has(id) ? ` (oldest ${Math.round(ages.get(id)!)} s)` : ''}`))}`,
      `normal for a while after a ring change; if it lasts over ${HANDOFF_STUCK_S} s check the nodes' logs (npm run doctor -- --url <node> tells how old it is)`,
    );
  if (now.size > 0) return ok('handoffs', `starting: ${someOf([...now.values()])}`);
  return ok('handoffs', `none in flight (${done} done since the nodes started)`);
}

/** Whether a read shows something a normal ring change shows for a moment, so a second read should confirm it. */
export function needsSecondLook(s: ClusterState): boolean {
  return moving(s).size > 0 || s.owners.some((owner, shard) => s.leases[shard] !== owner);
}
