/**
 * The benchmarks' HTTP client of a node: provisioning homes, hubs, tokens and rules, the cluster
 * ops API, and reading shadows back. The edge rate-limits each token (the admin token too, 50/s
 * per node by default): bench nodes run with `LIFTED_LIMITS`, and a 429 or 503 is still waited
 * out and retried rather than failing the run.
 */
import type { NodeProcess } from '../../tools/process/node-process.ts';
import type { HubSpec } from './load-protocol.ts';

export const ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** Node settings that raise the edge's rate limits out of the way of provisioning (the limiter still runs). */
export const LIFTED_LIMITS = { RATE_LIMIT_PER_TOKEN: '1000000', RATE_LIMIT_PER_HOME: '1000000', RATE_LIMIT_BURST: '1000000' } as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const httpBase = (node: NodeProcess): string => `http://127.0.0.1:${node.httpPort}`;
export const grpcAddress = (node: NodeProcess): string => `127.0.0.1:${node.grpcPort}`;

/** A JSON call; retries 429 / 503 / connection errors for up to `patienceMs`; throws on any other non-2xx. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token = ADMIN_TOKEN,
  patienceMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    let status = 0;
    let text: string;
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      text = await res.text();
      if (res.ok) return (text ? JSON.parse(text) : {}) as T;
    } catch (err) {
      text = err instanceof Error ? err.message : String(err);
    }
    const retriable = status === 0 || status === 429 || status === 503;
    if (!retriable || Date.now() > deadline) throw new Error(`${method} ${path}: ${status || 'no response'} ${text.slice(0, 500)}`);
    await sleep(status === 429 ? 50 : 200);
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once, in order of start. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return out;
}

export interface ProvisionOptions {
  /** Base URLs to spread the calls over (round robin per home). */
  readonly http: readonly string[];
  readonly homeIds: readonly string[];
  /** Where each home's hub connects: gRPC addresses and the index of its first choice. */
  readonly grpc: readonly string[];
  readonly firstAddress?: (homeId: string, i: number) => number;
  /** Also an app token per `tokenEvery` homes (read, control, rules). */
  readonly tokens?: boolean;
  /** A rule to PUT in every home (with the home's app token). */
  readonly rule?: { readonly id: string };
  readonly onProgress?: (done: number) => void;
}

const TOKEN_HOMES = 10;

/** Creates the homes (PUT), one hub each (its secret), app tokens and rules: the hubs' specs. */
export async function provisionHomes(opts: ProvisionOptions): Promise<HubSpec[]> {
  let done = 0;
  const base = (i: number): string => opts.http[i % opts.http.length]!;
  const secrets = await mapLimit(opts.homeIds, 16, async (homeId, i) => {
    await call(base(i), 'PUT', `/v1/homes/${homeId}`, { name: `Bench home ${i}`, timezone: 'Europe/Berlin' });
    const hub = await call<{ secret: string }>(base(i), 'POST', `/v1/homes/${homeId}/hubs`, { hubId: 'hub1' });
    opts.onProgress?.(++done);
    return hub.secret;
  });
  const tokens: string[] = [];
  if (opts.tokens || opts.rule) {
    const groups = Array.from({ length: Math.ceil(opts.homeIds.length / TOKEN_HOMES) }, (_, g) =>
      opts.homeIds.slice(g * TOKEN_HOMES, (g + 1) * TOKEN_HOMES),
    );
    const made = await mapLimit(groups, 8, (homes, g) =>
      call<{ token: string }>(base(g), 'POST', '/v1/tokens', { homes, scopes: ['read', 'control', 'rules'] }),
    );
    tokens.push(...made.map((t) => t.token));
  }
  const rule = opts.rule;
  if (rule) {
    await mapLimit(opts.homeIds, 16, (homeId, i) =>
      call(base(i), 'PUT', `/v1/homes/${homeId}/rules/${rule.id}`, rule, tokens[Math.floor(i / TOKEN_HOMES)]),
    );
  }
  return opts.homeIds.map((homeId, i) => ({
    homeId,
    hubId: 'hub1',
    secret: secrets[i]!,
    addresses: opts.grpc,
    first: opts.firstAddress?.(homeId, i) ?? i % opts.grpc.length,
    ...(tokens.length > 0 ? { appToken: tokens[Math.floor(i / TOKEN_HOMES)]! } : {}),
  }));
}

export interface ClusterStatus {
  readonly epoch: number;
  readonly shardCount: number;
  readonly nodes: readonly { id: string; state: string; weight: number; alive: boolean; shardsAssigned: number; shardsOwned: number }[];
  readonly handoffs: { pending: number; done: number; inFlight: boolean };
}

export const clusterStatus = (base: string): Promise<ClusterStatus> =>
  call<ClusterStatus>(base, 'GET', '/v1/admin/cluster', undefined, ADMIN_TOKEN, 5_000);

/** True when nothing is moving and exactly `active` (ids) are active, alive and own what they are assigned. */
export function isSettled(s: ClusterStatus, active: readonly string[]): boolean {
  const live = s.nodes.filter((n) => n.state === 'active' && n.alive);
  return (
    !s.handoffs.inFlight &&
    live.length === active.length &&
    active.every((id) => live.some((n) => n.id === id && n.shardsOwned === n.shardsAssigned)) &&
    live.reduce((a, n) => a + n.shardsOwned, 0) === s.shardCount
  );
}

/** Polls `base` every `everyMs` until the cluster is settled on `active`; resolves the status. */
export async function waitSettled(base: string, active: readonly string[], timeoutMs = 60_000, everyMs = 50): Promise<ClusterStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ClusterStatus | string;
  for (;;) {
    try {
      const s = await clusterStatus(base);
      if (isSettled(s, active)) return s;
      last = s;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`cluster not settled on ${active.join(', ')} within ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await sleep(everyMs);
  }
}
