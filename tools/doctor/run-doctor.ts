/** Runs every doctor check that the given sources allow (REDIS_URL, a node's URL, or both) and returns one result per check. */
import { DEFAULT_CLUSTER } from '../../node/config.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { CHECK_NAMES, fail, messageOf, warn, type CheckName, type CheckResult } from './check-result.ts';
import { handoffsCheck, heartbeatsCheck, leasesCheck, needsSecondLook, ringCheck, thirdLookInMs } from './cluster-checks.ts';
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

/** The checks that read Redis: each gets a line even when Redis could not be read, so scripts find every name. */
const REDIS_CHECKS: readonly CheckName[] = [
  'redis',
  'persistence',
  'eviction',
  'clock',
  'heartbeats',
  'ring',
  'leases',
  'handoffs',
  'ports',
];

/**
 * Results in CHECK_NAMES order, one per check (`node` only with --url): a check that could not run
 * still has its line, `fail` with "not read: …" when what it needs failed, `warn` with "not
 * checked: …" when it was not asked for.
 */
export async function runDoctor(opts: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { check, config } = configurationCheck(opts.env);
  results.push(check);
  // An invalid configuration still names the cluster doctor should look at.
  const cluster = config?.cluster ?? (opts.env.CLUSTER || DEFAULT_CLUSTER);

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
  const present = new Set(results.map((r) => r.check));
  const why = node?.status ? 'needs REDIS_URL' : 'needs REDIS_URL (or --url with an accepted admin token)';
  for (const name of REDIS_CHECKS)
    if (!present.has(name)) results.push(warn(name, `not checked: ${why}`, "run doctor where the nodes' REDIS_URL is set"));
  return results.sort((a, b) => CHECK_NAMES.indexOf(a.check) - CHECK_NAMES.indexOf(b.check));
}

/** `fail` lines for the checks `results` lacks because what they read could not be read. */
function notRead(results: readonly CheckResult[], why: string, action: string): CheckResult[] {
  const present = new Set(results.map((r) => r.check));
  return REDIS_CHECKS.filter((name) => !present.has(name)).map((name) => fail(name, `not read: ${why}`, action));
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
    const unreachable = unreachableCheck(redisUrl, err);
    return [unreachable, ...notRead([unreachable], 'Redis is unreachable (see the redis line)', 'fix the redis line first')];
  }
  try {
    const results = [await redisCheck(client, redisUrl)];
    const configs = await readServerConfig(client);
    results.push(persistenceCheck(configs), evictionCheck(configs));
    const self = await readClock(client).catch((err: unknown) => new Error(messageOf(err)));

    const looks: ClusterState[] = [];
    try {
      looks.push(await readClusterState(client, keys));
      if (needsSecondLook(looks[0]!)) {
        await sleep(settleMs);
        looks.push(await readClusterState(client, keys));
        const waitMs = thirdLookInMs(looks, settleMs);
        if (waitMs !== undefined) {
          await sleep(waitMs);
          looks.push(await readClusterState(client, keys));
        }
      }
    } catch (err) {
      results.push(clockCheck(self, new Map()));
      return [
        ...results,
        ...notRead(
          results,
          `the cluster state of '${keys.cluster}' (${messageOf(err)})`,
          'Redis (or one Redis Cluster master) is down, overloaded or refuses reads: check it',
        ),
      ];
    }
    const state = looks[looks.length - 1]!;
    const previous = looks.length > 1 ? looks[looks.length - 2] : undefined;
    results.push(clockCheck(self, self instanceof Error ? new Map() : nodeClockSkews(state, self)));
    results.push(
      heartbeatsCheck(state),
      ringCheck(state, previous),
      leasesCheck(state, looks.slice(0, -1)),
      handoffsCheck(state, previous, oldest),
    );
    results.push(await portsCheck(portTargets(state)));
    return results;
  } finally {
    client.disconnect();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The registered addresses of every node that is alive or in the ring (a node that left is not expected to listen). */
function portTargets(state: ClusterState): PortTarget[] {
  const inRing = new Set(state.ring?.nodes.map((n) => n.id) ?? []);
  return state.registered
    .filter((n) => state.heartbeats.has(n.id) || inRing.has(n.id))
    .flatMap((n) =>
      (['http', 'grpc', 'peer'] as const).filter((kind) => n[kind] !== '').map((kind) => ({ node: n.id, kind, address: n[kind] })),
    );
}
