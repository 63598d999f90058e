/** Doctor's `node` check (--url): the node's probes answer, and its admin API accepts the token and reports the cluster. */
import type { ClusterStatus } from '../../cluster/cluster-admin.ts';
import { fail, messageOf, ok, warn, type CheckResult } from './check-result.ts';
import { CALL_TIMEOUT_MS } from './deadline.ts';

interface Answer {
  readonly status: number;
  readonly text: string;
}

async function get(base: string, path: string, token?: string): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  return { status: res.status, text: await res.text() };
}

/** The first 120 characters of a body, on one line. */
const brief = (text: string): string => text.replace(/\s+/g, ' ').slice(0, 120);

/** What asking a node over HTTP gave: the `node` line, and what the cluster checks can use. */
export interface NodeApiReading {
  readonly check: CheckResult;
  /** `GET /v1/admin/cluster`, when the token was accepted. */
  readonly status: ClusterStatus | undefined;
  /** This node's iot_cluster_handoff_oldest_seconds, when its /metrics has it. */
  readonly oldestHandoffSeconds: number | undefined;
}

/** Reads `name`'s unlabelled sample from a Prometheus text exposition. */
export function sampleOf(exposition: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{\\})? (\\S+)`, 'm').exec(exposition);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : undefined;
}

/** The admin API's cluster status, or undefined when `text` is not one (not JSON, or another document). */
export function clusterStatusOf(text: string): ClusterStatus | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const s = doc as Partial<ClusterStatus> | null;
  if (s === null || typeof s !== 'object' || typeof s.epoch !== 'number' || !Array.isArray(s.nodes) || typeof s.handoffs !== 'object')
    return undefined;
  return s as ClusterStatus;
}

/** Asks the node at `base`: /healthz, /readyz, then (with a token) /v1/admin/cluster and /metrics. */
export async function askNode(base: string, token: string | undefined): Promise<NodeApiReading> {
  const none = { status: undefined, oldestHandoffSeconds: undefined };
  let health: Answer;
  try {
    health = await get(base, '/healthz');
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return {
      check: fail(
        'node',
        `cannot reach ${base}: ${cause ?? messageOf(err)}`,
        'check --url and that the node runs (its start line prints the HTTP address)',
      ),
      ...none,
    };
  }
  if (health.status !== 200)
    return {
      check: fail(
        'node',
        `${base}/healthz answered HTTP ${health.status}: ${brief(health.text)}`,
        'is --url a node of this cluster? see its logs',
      ),
      ...none,
    };
  let ready: Answer;
  try {
    ready = await get(base, '/readyz');
  } catch (err) {
    return {
      check: fail('node', `${base}/readyz did not answer: ${messageOf(err)}`, 'the node is overloaded or stuck: see its logs'),
      ...none,
    };
  }
  if (ready.status !== 200)
    return {
      check: fail(
        'node',
        `${base} is live but not ready (/readyz HTTP ${ready.status}: ${brief(ready.text)})`,
        'it is starting or its store is unhealthy: see its logs',
      ),
      ...none,
    };
  if (token === undefined)
    return {
      check: warn(
        'node',
        `${base}: /healthz and /readyz ok; admin API not asked (no token)`,
        'set ADMIN_TOKEN to the admin token to ask the admin API',
      ),
      ...none,
    };
  let admin: Answer;
  try {
    admin = await get(base, '/v1/admin/cluster', token);
  } catch (err) {
    return {
      check: fail(
        'node',
        `${base}/v1/admin/cluster did not answer: ${messageOf(err)}`,
        'the node is overloaded or its Redis is slow: see its logs',
      ),
      ...none,
    };
  }
  if (admin.status === 401 || admin.status === 403)
    return {
      check: fail(
        'node',
        `${base} refused the admin token (HTTP ${admin.status})`,
        "set ADMIN_TOKEN to that node's admin token (--token works too, but shows in ps)",
      ),
      ...none,
    };
  if (admin.status !== 200)
    return {
      check: warn(
        'node',
        `${base}: probes ok; /v1/admin/cluster answered HTTP ${admin.status}: ${brief(admin.text)}`,
        'a node without REDIS_URL has no cluster; otherwise see its logs',
      ),
      ...none,
    };
  const status = clusterStatusOf(admin.text);
  if (status === undefined)
    return {
      check: fail(
        'node',
        `${base}/v1/admin/cluster answered HTTP 200 with something that is not a cluster status: ${brief(admin.text)}`,
        'is --url the node itself, not a proxy or login page in front of it? otherwise run the same version of doctor as the node',
      ),
      ...none,
    };
  let oldestHandoffSeconds: number | undefined;
  try {
    const metrics = await get(base, '/metrics', token);
    if (metrics.status === 200) oldestHandoffSeconds = sampleOf(metrics.text, 'iot_cluster_handoff_oldest_seconds');
  } catch {
    // /metrics is optional here (METRICS_PORT may serve it elsewhere): the handoffs check then relies on Redis.
  }
  const alive = status.nodes.filter((n) => n.alive).length;
  return {
    check: ok('node', `${base}: /healthz and /readyz ok; admin API: epoch ${status.epoch}, ${alive}/${status.nodes.length} nodes alive`),
    status,
    oldestHandoffSeconds,
  };
}
