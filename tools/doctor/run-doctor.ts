/** Runs every doctor check that the given sources allow (REDIS_URL, a node's URL, or both) and returns one result per check. */
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { CHECK_NAMES, fail, messageOf, warn, type CheckResult } from './check-result.ts';
import { handoffsCheck, heartbeatsCheck, leasesCheck, needsSecondLook, ringCheck } from './cluster-checks.ts';
import { nodeClockSkews, readClusterState, type ClusterState } from './cluster-state.ts';
import { configurationCheck } from './configuration-check.ts';
import { askNode, type NodeApiReading } from './node-api-check.ts';
import { portsCheck, type PortTarget } from './ports-check.ts';
import {
  clockCheck,
  evictionCheck,
  openRedis,
  persistenceCheck,
  readClock,
  readServerConfig,
  redisCheck,
  unreachableCheck,
} from './redis-checks.ts';
import { handoffsFromStatus, heartbeatsFromStatus, portTargetsFromStatus, ringFromStatus } from './status-checks.ts';

export interface DoctorOptions {
  /** The node's environment: configuration, REDIS_URL, CLUSTER. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly redisUrl: string | undefined;
  /** Base URL of a running node's HTTP edge. */
  readonly url: string | undefined;
  readonly token: string | undefined;
  /**
   * Milliseconds to wait before reading the cluster again when the first read shows something a
   * normal ring change also shows for a moment (a node catching up, a lease moving).
   */
  readonly settleMs?: number;
}

/** Default of DoctorOptions.settleMs: nodes poll the ring every second, and renew leases every 5 s. */
export const SETTLE_MS = 2_000;

/** Results in CHECK_NAMES order. */
export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { check, config } = configurationCheck(opts.env);
  results.push(check);
  // An invalid configuration still names the cluster doctor should look at.
  const cluster = config?.cluster ?? (opts.env.CLUSTER || 'iot');

  const node: NodeApiReading | undefined = opts.url === undefined ? undefined : await askNode(opts.url, opts.token);
  if (node) results.push(node.check);
  const oldest = new Map<string, number>();
  if (node?.oldestHandoffSeconds !== undefined) oldest.set(`the node at ${opts.url}`, node.oldestHandoffSeconds);

  if (opts.redisUrl !== undefined) {
    results.push(...(await redisChecks(opts.redisUrl, new KeyLayout(cluster), opts.settleMs ?? SETTLE_MS, oldest)));
  } else {
    results.push(
      warn(
        'redis',
        'not checked: REDIS_URL is not set (persistence, eviction, clock and leases need it too)',
        "run doctor where the nodes' REDIS_URL is set, e.g. node dist/tools/doctor.js in a node's container",
      ),
    );
    if (node?.status) {
      const stuck = handoffsCheck(undefined, undefined, oldest);
      results.push(
        heartbeatsFromStatus(node.status),
        ringFromStatus(node.status),
        stuck.level === 'fail' ? stuck : handoffsFromStatus(node.status),
      );
      results.push(await portsCheck(portTargetsFromStatus(node.status)));
    }
  }
  return results.sort((a, b) => CHECK_NAMES.indexOf(a.check) - CHECK_NAMES.indexOf(b.check));
}

/** Every check that reads Redis; the client is closed before it returns. */
async function redisChecks(
  redisUrl: string,
  keys: KeyLayout,
  settleMs: number,
  oldest: ReadonlyMap<string, number>,
): Promise<CheckResult[]> {
  let client: RedisClient;
  try {
    client = await openRedis(redisUrl);
  } catch (err) {
    return [unreachableCheck(redisUrl, err)];
  }
  try {
    const results = [await redisCheck(client, redisUrl)];
    const configs = await readServerConfig(client);
    results.push(persistenceCheck(configs), evictionCheck(configs));
    const self = await readClock(client).catch((err: unknown) => new Error(messageOf(err)));

    let state: ClusterState;
    let previous: ClusterState | undefined;
    try {
      state = await readClusterState(client, keys);
      if (needsSecondLook(state)) {
        previous = state;
        await new Promise((r) => setTimeout(r, settleMs));
        state = await readClusterState(client, keys);
      }
    } catch (err) {
      results.push(clockCheck(self, new Map()));
      results.push(
        fail(
          'ring',
          `cannot read the cluster state of "${keys.cluster}": ${messageOf(err)}`,
          'Redis is overloaded or refuses reads: check it',
        ),
      );
      return results;
    }
    results.push(clockCheck(self, self instanceof Error ? new Map() : nodeClockSkews(state, self.skewMs)));
    results.push(heartbeatsCheck(state), ringCheck(state, previous), leasesCheck(state, previous), handoffsCheck(state, previous, oldest));
    results.push(await portsCheck(portTargets(state)));
    return results;
  } finally {
    client.disconnect();
  }
}

/** The registered addresses of every node that is alive or in the ring (a node that left is not expected to listen). */
function portTargets(state: ClusterState): PortTarget[] {
  const inRing = new Set(state.ring?.nodes.map((n) => n.id) ?? []);
  return state.registered
    .filter((n) => state.heartbeats.has(n.id) || inRing.has(n.id))
    .flatMap((n) =>
      (['http', 'grpc', 'peer'] as const).filter((kind) => n[kind] !== '').map((kind) => ({ node: n.id, kind, address: n[kind] })),
    );
}
