/** The doctor's command line: what it checks against (Redis, a node's API or both) and how it prints. */
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run doctor [-- [--url http://node:8080] [--json]]
  Checks a node's configuration and the cluster it belongs to, one line per check:
  ok | warn | fail  <check>: <finding> — <what to do>
  REDIS_URL (and CLUSTER) from the environment: Redis, persistence, clock, heartbeats, ring, leases, handoffs, ports
  --url <base URL>  also ask a running node: /healthz, /readyz and /v1/admin/cluster
  ADMIN_TOKEN=…     the admin token for --url, from the environment (--token <token> works too, but shows in ps)
  --json            one JSON document instead of lines
Exit status: 0 when no check failed (warnings included), 1 when one did, 2 for bad usage,
3 when doctor itself broke (no verdict on the cluster).
In the production image: node dist/tools/doctor.js [--url …]`;

/** The command line or environment does not say what to check: exit 2 with this message and the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'BAD_USAGE';
}

export interface DoctorArgs {
  /** Base URL of a running node's HTTP edge, without a trailing slash. */
  readonly url: string | undefined;
  /** Admin token for the node's admin API. */
  readonly token: string | undefined;
  readonly redisUrl: string | undefined;
  readonly json: boolean;
  readonly help: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parses argv (without node and the script) and the environment; throws UsageError naming what is wrong. */
export function parseDoctorArgs(argv: readonly string[], env: Env): DoctorArgs {
  let values: { url?: string; token?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const help = values.help === true;
  const redisUrl = env.REDIS_URL || undefined;
  let url: string | undefined;
  if (values.url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(values.url);
    } catch {
      throw new UsageError(`--url ${values.url} is not a URL (e.g. http://127.0.0.1:8080)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new UsageError(`--url ${values.url} must be http:// or https://`);
    url = values.url.replace(/\/+$/, '');
  }
  if (!help && url === undefined && redisUrl === undefined)
    throw new UsageError("nothing to check: set REDIS_URL to the cluster's Redis, or give --url http://<node>:8080 (or both)");
  return { url, token: values.token || env.ADMIN_TOKEN || undefined, redisUrl, json: values.json === true, help };
}
