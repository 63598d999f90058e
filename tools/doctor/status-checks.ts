/**
 * The cluster checks from a node's admin API alone (`--url` without REDIS_URL): what
 * `GET /v1/admin/cluster` says about heartbeats, the ring, handoffs and HTTP addresses. Redis
 * itself, leases and clocks need REDIS_URL.
 */
import type { ClusterStatus } from '../../cluster/cluster-admin.ts';
import { fail, ok, someOf, warn, type CheckResult } from './check-result.ts';
import type { PortTarget } from './ports-check.ts';

/** Ring nodes are those whose state is not `left`. */
const inRing = (s: ClusterStatus): ClusterStatus['nodes'] => s.nodes.filter((n) => n.state !== 'left');

export function heartbeatsFromStatus(s: ClusterStatus): CheckResult {
  const dead = inRing(s)
    .filter((n) => !n.alive)
    .map((n) => n.id);
  if (dead.length > 0)
    return fail(
      'heartbeats',
      `${someOf(dead)} in the ring without a heartbeat: down or cut off from Redis`,
      `restart ${dead.length === 1 ? 'it' : 'them'}; a live node takes a dead one out of the ring within seconds (or: npm run ring -- remove ${dead[0]})`,
    );
  const alive = s.nodes.filter((n) => n.alive).map((n) => n.id);
  return ok('heartbeats', `${alive.length} alive (${someOf(alive, 5)}), as the node reports`);
}

export function ringFromStatus(s: ClusterStatus): CheckResult {
  const active = s.nodes.filter((n) => n.state === 'active').map((n) => n.id);
  if (active.length === 0)
    return fail('ring', `epoch ${s.epoch} has no active node: no shard is served`, 'npm run ring -- add <id> for a running node');
  const outside = s.nodes.filter((n) => n.alive && n.state === 'left').map((n) => n.id);
  if (outside.length > 0)
    return warn('ring', `epoch ${s.epoch}; ${someOf(outside)} alive but not in the ring`, `npm run ring -- add ${outside[0]}, or stop it`);
  return ok('ring', `epoch ${s.epoch}, ${active.length} active (${someOf(active, 5)}); each node's own epoch needs REDIS_URL`);
}

export function handoffsFromStatus(s: ClusterStatus): CheckResult {
  if (s.handoffs.inFlight)
    return warn(
      'handoffs',
      `in flight: ${s.handoffs.pending} pending, ${s.handoffs.done} done`,
      "normal for a while after a ring change; if it lasts over a minute check the nodes' logs",
    );
  return ok('handoffs', `none in flight (${s.handoffs.done} done since the nodes started)`);
}

/** The HTTP address of every live or ring node (the admin API does not list gRPC and peer addresses). */
export function portTargetsFromStatus(s: ClusterStatus): PortTarget[] {
  return s.nodes
    .filter((n) => (n.alive || n.state !== 'left') && n.address !== '')
    .map((n) => ({ node: n.id, kind: 'http', address: n.address }));
}
