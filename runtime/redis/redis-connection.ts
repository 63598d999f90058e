/** Connects ioredis to standalone, Sentinel or Cluster Redis from one URL, and checks the version. */
import { isIP } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { FENCED_WRITE_COMMAND } from './fenced-write.ts';

export type RedisClient = Redis | Cluster;

/** Oldest Redis we run on (GETEX, LPOS, Lua `redis.setresp`, ...). */
export const MIN_REDIS_VERSION = [6, 2, 0] as const;

export interface ConnectionOptions {
  /** Fail commands at once while disconnected instead of queueing them (the store's writes). */
  readonly failFast: boolean;
  /** Milliseconds after which a command is failed. */
  readonly commandTimeoutMs?: number;
  /** ioredis connection name shown in CLIENT LIST. */
  readonly name?: string;
}

/** A `host:port` of a Redis server, a Sentinel or a Cluster node. */
export interface RedisHostPort {
  readonly host: string;
  readonly port: number;
}

/** Credentials of a REDIS_URL, %-decoded. */
export interface RedisAuth {
  readonly username?: string;
  readonly password?: string;
}

/** What a Redis URL names (`parseRedisUrl`): one server, a Sentinel-monitored master, or a Cluster. */
export type RedisTarget =
  | (RedisAuth & { readonly kind: 'standalone'; readonly host: string; readonly port: number; readonly db: number; readonly tls: boolean })
  | (RedisAuth & {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisHostPort[];
      readonly master: string;
      /** The Sentinels' own credentials (`?sentinelUsername=…&sentinelPassword=…`), when they require some. */
      readonly sentinelUsername?: string;
      readonly sentinelPassword?: string;
    })
  | (RedisAuth & { readonly kind: 'cluster'; readonly nodes: readonly RedisHostPort[] });

/**
 * A Redis URL that cannot be used; the message never shows the credentials (nothing before the
 * URL's last `@` is quoted), so it may be logged and printed.
 */
export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
  readonly code = 'REDIS_URL_INVALID';

  constructor(
    message: string,
    /** False when where the credentials end is unknown (a raw `@`): the URL must not be shown, even redacted. */
    readonly redactable = true,
  ) {
    super(message);
  }
}

const FORMS = {
  redis: 'redis://[user:password@]host[:port][/db]',
  rediss: 'rediss://[user:password@]host[:port][/db]',
  'redis-sentinel': 'redis-sentinel://[user:password@]host:port,host:port/<master name>[?sentinelPassword=…]',
  'redis-cluster': 'redis-cluster://[user:password@]host:port,host:port',
} as const;
type Scheme = keyof typeof FORMS;

/** A host name or IPv4 address. */
const HOST_NAME = /^[A-Za-z0-9_.-]{1,253}$/;

/** `%`-decodes one part of the credentials; a bad escape is named without showing the part. */
function decodeCredential(part: string, what: 'user name' | 'password' | 'sentinelUsername' | 'sentinelPassword'): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RedisUrlError(`the ${what} has a bad %-escape (write % as %25)`);
  }
}

/** `host[:port]` or `[ipv6][:port]`; `defaultPort` undefined = the port is required. */
function parseHostPort(entry: string, form: string, defaultPort: number | undefined): RedisHostPort {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(entry);
  const host = m?.[1] ?? m?.[2];
  if (!m || host === undefined || host === '') throw new RedisUrlError(`"${entry}" is not host:port (${form})`);
  if (m[1] !== undefined ? isIP(host) !== 6 : !HOST_NAME.test(host))
    throw new RedisUrlError(`"${host}" is not a host name, IPv4 address or [IPv6] address (${form})`);
  if (m[3] === undefined && defaultPort === undefined) throw new RedisUrlError(`"${entry}" has no port (${form})`);
  const port = m[3] === undefined ? defaultPort! : Number(m[3]);
  if (port < 1 || port > 65535) throw new RedisUrlError(`port ${m[3]} of "${entry}" is not 1..65535`);
  return { host, port };
}

/**
 * Parses a Redis URL: the one reading of REDIS_URL, used by the configuration check and by
 * `createRedisClient`, so a URL the check accepts is one the client connects to as written.
 *
 * - `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS): one server (port 6379, db 0 by default);
 * - `redis-sentinel://[user:password@]host:port,host:port/<master name>[?sentinelPassword=…]`: the
 *   master a Sentinel group monitors (the credentials are the master's; the Sentinels' own, when
 *   they require some, are the query parameters `sentinelPassword` and `sentinelUsername`,
 *   %-encoded, never quoted in an error);
 * - `redis-cluster://[user:password@]host:port,host:port`: a Redis Cluster (no db: a Cluster has only 0).
 *
 * The credentials end at the `@`: write `@`, `:` or `%` in a password as `%40`, `%3A`, `%25`. A
 * query string or fragment is refused rather than ignored (or read into the master name).
 */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z-]+):\/\//.exec(url)?.[1];
  if (scheme === undefined || !(scheme in FORMS))
    throw new RedisUrlError('must start with redis://, rediss://, redis-sentinel:// or redis-cluster://');
  const form = FORMS[scheme as Scheme];
  let rest = url.slice(scheme.length + 3);
  let auth: RedisAuth = {};
  // A raw `@` in the Sentinels' password would be read as the end of the master's credentials.
  const sentinelQuery = scheme === 'redis-sentinel' ? /[?&]sentinel(?:Password|Username)=/.exec(rest) : null;
  if (sentinelQuery && rest.indexOf('@', sentinelQuery.index) >= 0)
    throw new RedisUrlError('its Sentinel credentials contain a raw "@": write @ as %40', false);
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const credentials = rest.slice(0, at);
    // Only here is the user name and password known to end: nothing before this `@` may be quoted.
    if (credentials.includes('@')) throw new RedisUrlError('its credentials contain a raw "@": write @ in the password as %40', false);
    rest = rest.slice(at + 1);
    const colon = credentials.indexOf(':');
    if (colon < 0) throw new RedisUrlError(`credentials are written user:password@ or :password@ (${form})`);
    const username = decodeCredential(credentials.slice(0, colon), 'user name');
    const password = decodeCredential(credentials.slice(colon + 1), 'password');
    auth = { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  }
  let sentinelAuth: { sentinelUsername?: string; sentinelPassword?: string } = {};
  if (scheme === 'redis-sentinel' && rest.includes('?')) {
    const q = rest.indexOf('?');
    sentinelAuth = parseSentinelQuery(rest.slice(q + 1), form);
    rest = rest.slice(0, q);
  }
  const extra = /[?#]/.exec(rest);
  // Quoted with its values hidden: a query may hold a secret (a sentinelPassword on the wrong form).
  if (extra)
    throw new RedisUrlError(`"${rest.slice(extra.index).replace(/=[^&#]*/g, '=…')}": a query string or fragment is not read (${form})`);
  const slash = rest.indexOf('/');
  const list = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? undefined : rest.slice(slash + 1);
  if (list === '') throw new RedisUrlError(`lists no host (${form})`);
  if (scheme === 'redis' || scheme === 'rediss') {
    if (list.includes(',')) throw new RedisUrlError(`"${list}": a ${scheme}:// URL names one server (${form})`);
    const { host, port } = parseHostPort(list, form, 6379);
    if (path !== undefined && path !== '' && !/^\d{1,9}$/.test(path))
      throw new RedisUrlError(`the path is a database number, not "${path}" (${form})`);
    return { kind: 'standalone', ...auth, host, port, db: path ? Number(path) : 0, tls: scheme === 'rediss' };
  }
  const hosts = list.split(',').map((entry) => parseHostPort(entry, form, undefined));
  if (scheme === 'redis-cluster') {
    if (path !== undefined) throw new RedisUrlError(`a Redis Cluster URL takes no path (${form})`);
    return { kind: 'cluster', ...auth, nodes: hosts };
  }
  if (!path) throw new RedisUrlError(`needs the master name as its path (${form})`);
  if (path.includes('/')) throw new RedisUrlError(`the master name "${path}" contains "/" (${form})`);
  return { kind: 'sentinel', ...auth, sentinels: hosts, master: path, ...sentinelAuth };
}

/**
 * The query of a redis-sentinel:// URL: `sentinelPassword` and `sentinelUsername` (%-decoded),
 * each at most once. Errors name a parameter, never a value (it is a secret).
 */
function parseSentinelQuery(query: string, form: string): { sentinelUsername?: string; sentinelPassword?: string } {
  if (query.includes('#')) throw new RedisUrlError(`a fragment is not read; write # in a Sentinel password as %23 (${form})`);
  const out: { sentinelUsername?: string; sentinelPassword?: string } = {};
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (name !== 'sentinelPassword' && name !== 'sentinelUsername')
      throw new RedisUrlError(
        `query parameter "${/^[A-Za-z0-9_-]{1,40}$/.test(name) ? name : '?'}" is not read: only sentinelPassword and sentinelUsername are (${form})`,
      );
    if (out[name] !== undefined) throw new RedisUrlError(`query parameter ${name} is given twice (${form})`);
    const value = decodeCredential(eq < 0 ? '' : pair.slice(eq + 1), name);
    if (value === '') throw new RedisUrlError(`query parameter ${name} is empty (${form})`);
    out[name] = value;
  }
  return out;
}

/** A client for the server(s) `url` names (`parseRedisUrl`; a bad URL throws a `RedisUrlError`), not yet connected. */
export function createRedisClient(url: string, opts: ConnectionOptions): RedisClient {
  const target = parseRedisUrl(url);
  const common: RedisOptions = {
    enableOfflineQueue: !opts.failFast,
    // Batches the small commands of a tick (per Cluster node); the shard windows go out as issued.
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: [FENCED_WRITE_COMMAND],
    maxRetriesPerRequest: opts.failFast ? 0 : 20,
    lazyConnect: true,
    ...(opts.commandTimeoutMs ? { commandTimeout: opts.commandTimeoutMs } : {}),
    ...(opts.name ? { connectionName: opts.name } : {}),
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
  };
  switch (target.kind) {
    case 'standalone':
      return new Redis({ ...common, host: target.host, port: target.port, db: target.db, ...(target.tls ? { tls: {} } : {}) });
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.sentinels.map((s) => ({ ...s })),
        name: target.master,
        ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
        ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
      });
    case 'cluster':
      return scriptsOutsideAutoPipelines(
        new Cluster(
          target.nodes.map((n) => ({ ...n })),
          {
            redisOptions: common,
            enableOfflineQueue: !opts.failFast,
            enableAutoPipelining: true,
            autoPipeliningIgnoredCommands: [FENCED_WRITE_COMMAND, 'eval', 'evalsha'],
            lazyConnect: true,
          },
        ),
      );
  }
}

/**
 * Keeps every Lua command defined on a Cluster client (`defineCommand`) out of ioredis' auto
 * pipelines. ioredis files an auto-pipelined command under the slot of its first argument, which
 * for a script is the key count (`2`), not a key: scripts on keys of different nodes landed in one
 * pipeline that ioredis then refused whole ("All keys in the pipeline should belong to the same
 * slots allocation group", redis/ioredis#2109), failing lease renewals and ring reads with them.
 * Sent as issued, each script goes to its slot's node (still pipelined on that node's socket).
 */
function scriptsOutsideAutoPipelines(cluster: Cluster): Cluster {
  const ignored = cluster.options.autoPipeliningIgnoredCommands!;
  const define = cluster.defineCommand.bind(cluster);
  cluster.defineCommand = (name, definition) => {
    if (!ignored.includes(name)) ignored.push(name);
    define(name, definition);
  };
  return cluster;
}

/**
 * True when `version` (`major.minor.patch` as INFO reports it) is at least MIN_REDIS_VERSION.
 * Parts compare as numbers (6.10 is newer than 6.9); missing parts count as 0.
 */
export function isSupportedRedisVersion(version: string): boolean {
  if (!/^\d+(\.\d+)*$/.test(version)) return false;
  const parts = version.split('.').map(Number);
  for (let i = 0; i < MIN_REDIS_VERSION.length; i++) {
    const have = parts[i] ?? 0;
    const need = MIN_REDIS_VERSION[i]!;
    if (have !== need) return have > need;
  }
  return true;
}

/** Connects and checks the server version; throws naming what is wrong. */
export async function connectRedis(client: RedisClient): Promise<string> {
  await client.connect();
  const info = await (client instanceof Cluster ? client.nodes('master')[0]!.info('server') : client.info('server'));
  const version = /redis_version:([\d.]+)/.exec(info)?.[1];
  if (version === undefined) throw new Error('Redis did not report its version (no redis_version in INFO server)');
  if (!isSupportedRedisVersion(version)) {
    throw new Error(`Redis ${version} is too old: ${MIN_REDIS_VERSION.join('.')} or newer is needed`);
  }
  return version;
}
