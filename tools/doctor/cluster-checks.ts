/**
 * Doctor's cluster checks over what the nodes keep in Redis (cluster-state.ts): heartbeats, the
 * ring epoch each node routes by, shard leases against the ring's owners, and handoffs. Pure
 * functions of up to three reads: a finding that may be a moment of a normal change (a node
 * catching up, a lease moving) counts only when the earlier reads, taken a little before, show
 * it too. A node ahead of the ring or a lost ring is never such a moment: one read decides.
 */
import { HEARTBEAT_REFRESHES_PER_TTL } from '../../cluster/membership.ts';
import { defaultShardLeasesConfig } from '../../cluster/shard-leases.ts';
import { fail, ok, someOf, warn, worst, type CheckLevel, type CheckResult } from './check-result.ts';
import { heartbeatTtlOf, type ClusterState } from './cluster-state.ts';

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

/** Where a cluster's keys live, for a line that must show which cluster doctor looked at. */
const keyPrefix = (cluster: string): string => `'${cluster}:*' and '{${cluster}:*'`;

/** Whether nothing at all is stored under this cluster: most often a wrong CLUSTER or REDIS_URL database. */
const nothingStored = (s: ClusterState): boolean =>
  s.registered.length === 0 && s.badRecords.length === 0 && !s.ring && s.ringError === undefined && s.progress.size === 0;

/** `heartbeats` check: every node of the ring has a live heartbeat, refreshed on time; node records are readable. */
export function heartbeatsCheck(s: ClusterState): CheckResult {
  const main = heartbeatsOf(s);
  if (s.badRecords.length === 0) return main;
  const bad = `${s.badRecords.length} unreadable node record${s.badRecords.length === 1 ? '' : 's'} skipped: ${someOf(s.badRecords)}`;
  // Nodes read every record at once (admin cluster status, peer address discovery) and fail on a bad one: broken now.
  const action = `${main.level === 'fail' && main.action ? `${main.action}; ` : ''}restart the node the record belongs to (a node writes its record when it starts), or if it is gone delete the key and its id from ${s.cluster}'s node set`;
  return { check: 'heartbeats', level: 'fail', finding: `${main.finding}; ${bad}`, action };
}

function heartbeatsOf(s: ClusterState): CheckResult {
  if (nothingStored(s))
    return warn(
      'heartbeats',
      `no node has ever registered under cluster '${s.cluster}' on this Redis (no keys ${keyPrefix(s.cluster)})`,
      "check that CLUSTER here is the nodes' CLUSTER and that REDIS_URL (host and database) is their Redis, and that the nodes run",
    );
  const dead = ringIds(s).filter((id) => !s.heartbeats.has(id));
  if (dead.length > 0)
    return fail(
      'heartbeats',
      `${someOf(dead)} in the ring without a heartbeat (none for over ${seconds(Math.max(...dead.map((id) => heartbeatTtlOf(s, id))))}): down or cut off from Redis`,
      `restart ${dead.length === 1 ? 'it' : 'them'} or fix ${dead.length === 1 ? 'its' : 'their'} Redis connection; a live node takes a dead one out of the ring within seconds (or: npm run ring -- remove ${dead[0]})`,
    );
  // Late: not refreshed for two thirds of its TTL (a node stops serving at TTL − a small margin).
  // Each node by its own TTL (its record's HEARTBEAT_TTL_MS; the default for older nodes).
  const lateNodes = [...s.heartbeats].filter(([id, hb]) => hb.ttlLeftMs >= 0 && hb.ttlLeftMs < heartbeatTtlOf(s, id) / 3);
  const late = lateNodes.map(([id, hb]) => `${id} (not refreshed for ${seconds(heartbeatTtlOf(s, id) - hb.ttlLeftMs)})`);
  const refreshEvery = [...new Set(lateNodes.map(([id]) => seconds(heartbeatTtlOf(s, id) / HEARTBEAT_REFRESHES_PER_TTL)))];
  if (late.length > 0)
    return warn(
      'heartbeats',
      `late heartbeat: ${someOf(late)}; ${lateNodes.length === 1 ? 'it refreshes' : 'they refresh'} every ${refreshEvery.join(' / ')}`,
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
      "nodes cannot route without it: restore the ring document from a backup, then run doctor again (a restored epoch below the nodes' own is ignored by them, and the ring line then names them)",
    );
  const aliveIds = [...s.heartbeats.keys()].sort();
  if (!s.ring) {
    // Nodes that routed by a ring: a ring was there and is gone, which a new one cannot simply replace.
    const routed = [...s.progress].filter(([, p]) => p.epoch > 0).map(([id, p]) => `${id} routes by epoch ${p.epoch}`);
    if (routed.length > 0)
      return fail(
        'ring',
        `the ring is gone from Redis (flushed, evicted, or Redis restarted without its append-only file), but ${someOf(routed)}`,
        'nodes ignore a ring whose epoch is not above theirs, so a fresh ring would not reach them: restore the ring from a backup with a higher epoch, or create one and restart every node; then fix the persistence and eviction lines',
      );
    if (aliveIds.length > 0)
      return warn(
        'ring',
        `no ring yet; ${someOf(aliveIds)} wait to be added (AUTO_JOIN=false)`,
        `npm run ring -- add ${aliveIds[0]}, or start a node with AUTO_JOIN=true`,
      );
    if (nothingStored(s))
      return warn(
        'ring',
        `no ring and no node under cluster '${s.cluster}' (keys ${keyPrefix(s.cluster)}): a fresh install, or the wrong CLUSTER or REDIS_URL`,
        "check CLUSTER and REDIS_URL (host and database) against the nodes'; on a fresh install start a node with AUTO_JOIN=true",
      );
    return warn('ring', `no ring yet in cluster '${s.cluster}'`, 'start a node with AUTO_JOIN=true: the first one creates the ring');
  }
  const { epoch } = s.ring;
  const active = s.ring.nodes.filter((n) => n.state === 'active').map((n) => n.id);
  if (active.length === 0)
    return fail('ring', `epoch ${epoch} has no active node: no shard is served`, 'npm run ring -- add <id> for a running node');
  // Never a moment of a normal change: a node's epoch only grows, so a live node above the stored ring means the ring went back.
  const ahead = aliveIds.filter((id) => (s.progress.get(id)?.epoch ?? 0) > epoch);
  if (ahead.length > 0)
    return fail(
      'ring',
      `ring went backwards: the stored ring is at epoch ${epoch}, but ${someOf(ahead.map((id) => `${id} routes by epoch ${s.progress.get(id)!.epoch}`))}`,
      'the ring was restored from an older copy or rewritten, and a node ignores every ring not above its epoch, so no ring change reaches these: check that the stored ring is the one you want (npm run ring -- status), then restart those nodes',
    );
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

/**
 * Milliseconds after which a lapsed lease of a live, settled owner counts as unserved: by then
 * the owner's renewal (every renewEveryMs, cluster/shard-leases.ts) has run and would have taken
 * it back. A lease may lapse while Redis was unreachable longer than the lease TTL.
 */
export const LAPSE_RECHECK_MS = defaultShardLeasesConfig.renewEveryMs + 1_000;

/** One kind of lease finding: its level, the line's words and what to do. */
interface LeaseFinding {
  readonly level: CheckLevel;
  readonly text: string;
  readonly action: string;
}

/**
 * `leases` check: every shard's lease is held by its owner by the ring, and that owner is alive.
 * `earlier` are the reads taken before `s`, oldest first: a shard counts as settled only when
 * every read agrees on its holder.
 */
export function leasesCheck(s: ClusterState, earlier: readonly ClusterState[] = []): CheckResult {
  if (s.owners.length === 0) return ok('leases', 'not checked: no ring with an active node');
  const looks = [...earlier, s];
  const busy = moving(s);
  const spanMs = s.readAtMs - looks[0]!.readAtMs;
  const flapping: string[] = [];
  const changed: string[] = [];
  const foreignFail: string[] = [];
  const foreignMoving: string[] = [];
  const downHeld = new Map<string, number>();
  const unleasedFail: string[] = [];
  const unleasedMoving: string[] = [];
  const lapsed: string[] = [];
  s.owners.forEach((owner, shard) => {
    const holders = looks.map((l) => l.leases[shard] ?? null);
    const holder = holders[holders.length - 1]!;
    const stable = looks.every((l) => l.owners[shard] === owner) && holders.every((h) => h === holder);
    if (!stable) {
      const eachLook = holders.length >= 3 && holders.every((h, i) => i === 0 || h !== holders[i - 1]);
      (eachLook ? flapping : changed).push(`shard ${shard} (${holders.map((h) => h ?? 'none').join(' → ')})`);
    } else if (holder === owner) {
      if (!s.heartbeats.has(owner)) downHeld.set(owner, (downHeld.get(owner) ?? 0) + 1);
    } else if (holder === null) {
      if (!s.heartbeats.has(owner)) unleasedFail.push(`shard ${shard} (owner ${owner} is down)`);
      else if (busy.has(owner)) unleasedMoving.push(`shard ${shard} (owner ${owner})`);
      else if (spanMs >= LAPSE_RECHECK_MS)
        unleasedFail.push(`shard ${shard} (owner ${owner}, not taken back for ${(spanMs / 1000).toFixed(0)} s)`);
      else lapsed.push(`shard ${shard} (owner ${owner})`);
    } else {
      (busy.has(holder) ? foreignMoving : foreignFail).push(`shard ${shard} held by ${holder}, owned by ${owner}`);
    }
  });
  const total = s.owners.length;
  const down = [...downHeld.values()].reduce((a, b) => a + b, 0);
  const notGood =
    flapping.length +
    changed.length +
    foreignFail.length +
    foreignMoving.length +
    down +
    unleasedFail.length +
    unleasedMoving.length +
    lapsed.length;
  const counts = `${total - notGood}/${total} shards leased by their owner`;
  const findings: LeaseFinding[] = [];
  if (flapping.length > 0)
    findings.push({
      level: 'fail',
      text: `${flapping.length} changed holder at every look: ${someOf(flapping)}`,
      action:
        'nodes fight over these shards: look for two nodes with the same NODE_ID, or a node whose ring epoch differs (ring line), and restart it',
    });
  if (foreignFail.length > 0)
    findings.push({
      level: 'fail',
      text: `${foreignFail.length} held by a node that is not the owner and is not handing off: ${someOf(foreignFail)}`,
      action: `restart the holder (its leases then lapse within ${defaultShardLeasesConfig.ttlMs / 1000} s and the owner takes them), and look in its logs for handoff errors`,
    });
  for (const [owner, n] of downHeld)
    findings.push({
      level: 'fail',
      text: `${n} held by down owner ${owner} (unserved until taken over)`,
      action: `a live node takes a dead one's shards within seconds; if none does, start ${owner} again or npm run ring -- remove ${owner}`,
    });
  if (unleasedFail.length > 0)
    findings.push({
      level: 'fail',
      text: `${unleasedFail.length} unleased, so unserved: ${someOf(unleasedFail)}`,
      action:
        'a down owner leaves the ring within seconds while another node is alive; otherwise start it or remove it (npm run ring -- remove <id>); a live owner that does not take its lease back: see its logs for lease errors',
    });
  if (lapsed.length > 0)
    findings.push({
      level: 'warn',
      text: `${lapsed.length} lapsed, renewal due: ${someOf(lapsed)}`,
      action: `normal for up to ${LAPSE_RECHECK_MS / 1000} s after Redis was unreachable; run doctor again`,
    });
  if (changed.length > 0)
    findings.push({
      level: 'warn',
      text: `${changed.length} changed hands during the check: ${someOf(changed)}`,
      action: 'a ring change or a takeover is under way: run doctor again when the handoffs check is ok',
    });
  if (foreignMoving.length + unleasedMoving.length > 0)
    findings.push({
      level: 'warn',
      text: `${foreignMoving.length + unleasedMoving.length} moving: ${someOf([...foreignMoving, ...unleasedMoving])}`,
      action: 'a ring change is being applied: run doctor again when the handoffs check is ok',
    });
  if (findings.length === 0) return ok('leases', counts);
  const level = findings.map((f) => f.level).reduce(worst);
  return {
    check: 'leases',
    level,
    finding: `${counts}; ${findings.map((f) => f.text).join('; ')}`,
    action: findings.find((f) => f.level === level)!.action,
  };
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

/**
 * After two reads (oldest first), milliseconds to wait before a third one, or undefined when two
 * say enough: a lease that changed hands is looked at again (a shard changing holder at every look
 * is a fight, not a move), and a lapsed lease of a live, settled owner is looked at again once its
 * renewal is due (LAPSE_RECHECK_MS after the first read).
 */
export function thirdLookInMs(looks: readonly ClusterState[], settleMs: number): number | undefined {
  if (looks.length !== 2) return undefined;
  const [first, s] = looks as [ClusterState, ClusterState];
  const busy = moving(s);
  let waitMs: number | undefined;
  s.owners.forEach((owner, shard) => {
    const holder = s.leases[shard] ?? null;
    if ((first.leases[shard] ?? null) !== holder) waitMs = Math.max(waitMs ?? 0, settleMs);
    else if (holder === null && s.heartbeats.has(owner) && !busy.has(owner))
      waitMs = Math.max(waitMs ?? 0, LAPSE_RECHECK_MS - (s.readAtMs - first.readAtMs));
  });
  return waitMs === undefined ? undefined : Math.max(0, waitMs);
}
