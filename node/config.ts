/** The node's configuration: one typed object from environment variables, validated at start. */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { DEFAULT_MAX_BODY_BYTES } from '../edge-api/http/request-body-limit.ts';
import { parseRedisUrl, RedisUrlError, type RedisTarget } from '../runtime/redis/redis-connection.ts';
import type { ConfigVariableName } from './config-variables.ts';

export type Role = 'ingress' | 'edge' | 'actors';
const ROLES: readonly Role[] = ['ingress', 'edge', 'actors'];
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface NodeConfig {
  /** This node's id in the cluster. */
  readonly nodeId: string;
  /** HTTP edge port (0 = pick a free one). */
  readonly httpPort: number;
  /** Hub ingress gRPC port (0 = pick a free one). */
  readonly grpcPort: number;
  /** Node-to-node gRPC port. */
  readonly peerPort: number;
  /** Address to bind. */
  readonly host: string;
  /**
   * The host other nodes, hubs and apps reach this node at (every registered and printed address);
   * undefined = derived from the bind addresses (see `advertisedHost`). Needed where the machine's
   * host name does not resolve for the others (a Kubernetes pod).
   */
  readonly advertiseHost: string | undefined;
  /** Durable store and coordination; undefined = memory, one node. */
  readonly redisUrl: string | undefined;
  /** Cluster name, prefixes every Redis key. */
  readonly cluster: string;
  /** Admin bearer token; undefined = generate one and print it at start. */
  readonly adminToken: string | undefined;
  readonly roles: readonly Role[];
  readonly logLevel: string;
  /** One log line per HTTP request (method, route, status, duration, token id). */
  readonly accessLog: boolean;
  readonly autoJoin: boolean;
  /** Milliseconds the shutdown waits for the drain (shards handed to the other nodes) before it stops anyway. */
  readonly drainTimeoutMs: number;
  /** Milliseconds a node's heartbeat lives without refresh: failover time, and the self-fence deadline. */
  readonly heartbeatTtlMs: number;
  /** Replicas a window's writes must reach (`WAIT`) before its acks are released; 0 = none. */
  readonly redisWaitReplicas: number;
  /** Milliseconds a window waits for those replicas before it fails. */
  readonly redisWaitTimeoutMs: number;
  /** The durable per-home event log apps resume from: events kept per home, and how long after the last one. */
  readonly eventLog: { readonly length: number; readonly ttlMs: number };
  /** Credit window: reports a hub may have sent and not yet had acked. */
  readonly hubWindow: number;
  /** Largest HTTP request body, bytes. */
  readonly maxBodyBytes: number;
  /** Largest gRPC message from a hub, bytes. */
  readonly maxHubMessageBytes: number;
  /** Milliseconds an actor may idle before it is passivated. */
  readonly passivateAfterMs: number;
  /** Shards of a new cluster (an existing cluster keeps the count stored with it). */
  readonly shards: number;
  /** HTTP requests per second per app token and per home, and the burst both buckets allow. */
  readonly rateLimit: {
    readonly perTokenPerSec: number;
    readonly perHomePerSec: number;
    readonly burst: number;
    /** With Redis: milliseconds after which a grant of tokens counts as a failure; three in a row make the node decide with its own buckets (default 250). */
    readonly redisTimeoutMs?: number;
  };
  /** Address the node-to-node port binds (default loopback: never exposed by accident with the public edges). */
  readonly peerHost: string;
  /**
   * Shared cluster secret for peer streams (HMAC of node id and time on every stream). Undefined:
   * with mutual TLS configured, the certificates authenticate; otherwise the nodes share a secret
   * generated once and kept in the cluster's Redis.
   */
  readonly peerSecret: string | undefined;
  /** Mutual TLS between nodes: the cluster CA, this node's certificate and key (PEM file paths). */
  readonly peerTls: TlsFiles | undefined;
  /** TLS for the hub ingress; `ca` set = hubs must present a client certificate signed by it. */
  readonly hubTls: TlsFiles | undefined;
  /** TLS for the HTTP edge. */
  readonly httpTls: TlsFiles | undefined;
  /** Port serving `/metrics` without authentication (bound on `metricsHost`); undefined = `/metrics` on the HTTP port, behind the admin token. */
  readonly metricsPort: number | undefined;
  /** Address the metrics port binds (default loopback: only a scraper on this host or one given this address reaches it). */
  readonly metricsHost: string;
  /** Milliseconds a hub stream may stay open without sending its hello. */
  readonly hubHelloTimeoutMs: number;
  /** Milliseconds a hub connection may stay without an open stream before it is closed. */
  readonly hubIdleMs: number;
  /** Hub connections (TCP) one node holds at most; past it new ones are refused. */
  readonly hubMaxConnections: number;
  /** Messages queued for one hub that is not reading; past it the stream ends with RESOURCE_EXHAUSTED. */
  readonly hubOutboundQueue: number;
  /** Open event streams (SSE) per app token and per home. */
  readonly sseLimit: { readonly perToken: number; readonly perHome: number };
}

/** PEM file paths of a TLS endpoint; `ca` is the authority its peers' certificates must chain to (optional where noted). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The one way loadConfig reads a variable: `name` must be listed in CONFIG_VARIABLES (the README's
 * table), or this does not compile. Empty counts as unset.
 */
function read(env: Env, name: ConfigVariableName): string | undefined {
  return env[name] || undefined;
}

function port(env: Env, name: ConfigVariableName, fallback: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name}=${raw} is not a port (0..65535)`);
  return n;
}

function positiveInt(env: Env, name: ConfigVariableName, fallback: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new ConfigError(`${name}=${raw} is not a positive integer`);
  return n;
}

/** CLUSTER's default: the prefix of every Redis key of a cluster that names none. */
export const DEFAULT_CLUSTER = 'iot';

/** HEARTBEAT_TTL_MS's default: failover within 3 s of a SIGKILL (TTL + the confirmation and take-over). */
export const DEFAULT_HEARTBEAT_TTL_MS = 2_000;

/** DRAIN_TIMEOUT_MS's default: a drain of a loaded node's shards, with room to spare. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 40_000;

/** Largest delay `setTimeout` honours (2³¹−1 ms, about 24.8 days); past it Node fires after 1 ms. */
export const MAX_DURATION_MS = 2_147_483_647;

/** A count that may be 0. */
function nonNegativeInt(env: Env, name: ConfigVariableName, fallback: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${name}=${raw} is not a non-negative integer`);
  return n;
}

/** HEARTBEAT_TTL_MS: at least 500 ms (it is refreshed every fifth of it), at most 5 minutes. */
function heartbeatTtl(env: Env): number {
  const n = durationMs(env, 'HEARTBEAT_TTL_MS', DEFAULT_HEARTBEAT_TTL_MS);
  if (n < 500 || n > 300_000) throw new ConfigError(`HEARTBEAT_TTL_MS=${env['HEARTBEAT_TTL_MS']} is outside 500..300000 ms`);
  return n;
}

/** Milliseconds for a timer: a positive integer up to `MAX_DURATION_MS`. */
function durationMs(env: Env, name: ConfigVariableName, fallback: number): number {
  const n = positiveInt(env, name, fallback);
  if (n > MAX_DURATION_MS) throw new ConfigError(`${name}=${env[name]} is over ${MAX_DURATION_MS} ms (the longest timer Node.js honours)`);
  return n;
}

function bool(env: Env, name: ConfigVariableName, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name}=${raw} must be true or false`);
}

/** `<PREFIX>_CERT`, `_KEY`, `_CA` file paths: cert and key together or neither; `requireCa` also needs the CA. */
function tlsFiles(env: Env, prefix: 'PEER_TLS' | 'HUB_TLS' | 'HTTP_TLS', requireCa: boolean): TlsFiles | undefined {
  const cert = read(env, `${prefix}_CERT`);
  const key = read(env, `${prefix}_KEY`);
  const ca = read(env, `${prefix}_CA`);
  if (cert === undefined && key === undefined && ca === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new ConfigError(`${prefix}_CERT and ${prefix}_KEY must be set together`);
  if (requireCa && ca === undefined) throw new ConfigError(`${prefix}_CA must be set with ${prefix}_CERT (the cluster CA)`);
  return { cert, key, ca };
}

const HOST = /^[A-Za-z0-9_.:-]{1,253}$/;

function host(env: Env, name: ConfigVariableName, fallback: string): string {
  const raw = read(env, name) ?? fallback;
  if (!HOST.test(raw)) throw new ConfigError(`${name}=${raw} is not a host name or address`);
  return raw;
}

/** Addresses that bind every interface: a server listens there, nobody dials it. */
export const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '']);

/**
 * ADVERTISE_HOST: a host others can dial, never a wildcard bind address, and a host only: the
 * node appends each server's port, so `name:port` would advertise `[name:port]:50052`.
 */
function advertiseHost(env: Env): string | undefined {
  const raw = read(env, 'ADVERTISE_HOST');
  if (raw === undefined) return undefined;
  if (WILDCARD_HOSTS.has(raw))
    throw new ConfigError(`ADVERTISE_HOST=${raw} binds every interface: give the name or address others reach this node at`);
  if (raw.includes(':') && isIP(raw) !== 6)
    throw new ConfigError(`ADVERTISE_HOST=${raw} is not a host name or address: give the host alone, the node adds each server's port`);
  return host(env, 'ADVERTISE_HOST', raw);
}

/**
 * A URL with its password replaced by `***`, for error messages and logs. The credentials end at
 * the last `@`: a password may hold `/`, `+`, `=` or an unescaped `@`, and none of it may show.
 * The user name shows only when it surely is one (before the first `:`, no `@` in it); credentials
 * without a `:` (`redis://secret@h`) are hidden whole, and so is everything before the last `@` of
 * a URL without a `scheme://` (`:secret@h:6379`, `redis:/u:pw@h`): where its credentials start is unknown.
 */
export function redactRedisUrl(url: string): string {
  // The Sentinels' own credentials travel in the query (redis-sentinel://…/<master>?sentinelPassword=…).
  if (/[?&]sentinel(?:Password|Username)=/.test(url)) url = url.replace(/([?&]sentinel(?:Password|Username)=)[^&#]*/g, '$1***');
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme === undefined) return `***${url.slice(at)}`;
  const auth = url.slice(scheme.length, at);
  const colon = auth.indexOf(':');
  const user = colon < 0 ? undefined : auth.slice(0, colon);
  return `${scheme}${user === undefined || user.includes('@') ? '***' : `${user}:***`}${url.slice(at)}`;
}

/**
 * Checks REDIS_URL with the parser the Redis client uses (`parseRedisUrl`: standalone, TLS,
 * Sentinel and Cluster forms), so a URL accepted here is one the node connects to as written.
 * Throws a ConfigError naming REDIS_URL; the message never shows the password.
 */
export function checkRedisUrl(url: string): RedisTarget {
  try {
    return parseRedisUrl(url);
  } catch (err) {
    if (!(err instanceof RedisUrlError)) throw err;
    // Where the credentials end is unknown when the parser says so: the URL is not shown at all.
    const shown = err.redactable ? `REDIS_URL=${redactRedisUrl(url)}` : 'REDIS_URL';
    throw new ConfigError(`${shown}: ${err.message}`, { cause: err });
  }
}

/** Every node hosts its share of the shards: a role list without `actors` is refused (by loadConfig and by startNode for a config built in code). */
export function checkRoles(roles: readonly Role[]): void {
  if (!roles.includes('actors')) throw new ConfigError('ROLES must include actors: every node hosts its share of the shards');
}

/** Reads and validates the configuration; throws `ConfigError` naming the bad variable. */
export function loadConfig(env: Env = process.env): NodeConfig {
  const nodeId = read(env, 'NODE_ID') ?? hostname();
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) throw new ConfigError(`NODE_ID=${nodeId} must be 1-64 of A-Z a-z 0-9 _ . -`);
  const cluster = read(env, 'CLUSTER') ?? DEFAULT_CLUSTER;
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cluster)) throw new ConfigError(`CLUSTER=${cluster} must be 1-32 of A-Z a-z 0-9 _ -`);
  const roles = (read(env, 'ROLES') ?? 'ingress,edge,actors').split(',').map((r) => r.trim());
  for (const r of roles) if (!ROLES.includes(r as Role)) throw new ConfigError(`ROLES: unknown role "${r}" (roles: ${ROLES.join(', ')})`);
  checkRoles(roles as Role[]);
  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL=${logLevel} must be one of ${LEVELS.join(', ')}`);
  const redisUrl = read(env, 'REDIS_URL');
  if (redisUrl !== undefined) checkRedisUrl(redisUrl);
  const adminToken = read(env, 'ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) throw new ConfigError('ADMIN_TOKEN must be at least 16 characters');
  const peerSecret = read(env, 'PEER_SECRET');
  if (peerSecret !== undefined && peerSecret.length < 32) throw new ConfigError('PEER_SECRET must be at least 32 characters');
  const metricsPort = read(env, 'METRICS_PORT') === undefined ? undefined : port(env, 'METRICS_PORT', 0);
  // METRICS_HOST alone would serve nothing: refused rather than ignored, as the operator expects a scrape target.
  if (metricsPort === undefined && read(env, 'METRICS_HOST') !== undefined)
    throw new ConfigError('METRICS_HOST is set without METRICS_PORT: set METRICS_PORT too, or unset METRICS_HOST');
  const httpPort = port(env, 'HTTP_PORT', 8080);
  const grpcPort = port(env, 'GRPC_PORT', 50051);
  const peerPort = port(env, 'PEER_PORT', 50052);
  const roleList = roles as Role[];
  // A port the metrics server would share with a server of this node fails its bind at start, after
  // the others listen: refused here instead. Only ports in use count (edge, ingress, peer with REDIS_URL).
  const clash = (
    [
      ['HTTP_PORT', httpPort, roleList.includes('edge')],
      ['GRPC_PORT', grpcPort, roleList.includes('ingress')],
      ['PEER_PORT', peerPort, redisUrl !== undefined],
    ] as const
  ).find(([, p, used]) => used && p !== 0 && p === metricsPort);
  if (clash) throw new ConfigError(`METRICS_PORT=${metricsPort} is also ${clash[0]}: give the metrics server a port of its own`);
  return {
    nodeId,
    httpPort,
    grpcPort,
    peerPort,
    host: host(env, 'HOST', '127.0.0.1'),
    advertiseHost: advertiseHost(env),
    redisUrl,
    cluster,
    adminToken,
    roles: roleList,
    logLevel,
    accessLog: bool(env, 'ACCESS_LOG', true),
    autoJoin: bool(env, 'AUTO_JOIN', true),
    drainTimeoutMs: durationMs(env, 'DRAIN_TIMEOUT_MS', DEFAULT_DRAIN_TIMEOUT_MS),
    heartbeatTtlMs: heartbeatTtl(env),
    redisWaitReplicas: nonNegativeInt(env, 'REDIS_WAIT_REPLICAS', 0),
    redisWaitTimeoutMs: durationMs(env, 'REDIS_WAIT_TIMEOUT_MS', 1_000),
    eventLog: {
      length: positiveInt(env, 'EVENT_LOG_LENGTH', 200),
      ttlMs: durationMs(env, 'EVENT_LOG_TTL_MS', 3_600_000),
    },
    hubWindow: positiveInt(env, 'HUB_WINDOW', 1_000),
    maxBodyBytes: positiveInt(env, 'MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES),
    maxHubMessageBytes: positiveInt(env, 'MAX_HUB_MESSAGE_BYTES', 1024 * 1024),
    passivateAfterMs: durationMs(env, 'PASSIVATE_AFTER_MS', 5 * 60_000),
    shards: positiveInt(env, 'SHARDS', 1024),
    rateLimit: {
      perTokenPerSec: positiveInt(env, 'RATE_LIMIT_PER_TOKEN', 50),
      perHomePerSec: positiveInt(env, 'RATE_LIMIT_PER_HOME', 100),
      burst: positiveInt(env, 'RATE_LIMIT_BURST', 100),
      redisTimeoutMs: durationMs(env, 'RATE_LIMIT_REDIS_TIMEOUT_MS', 250),
    },
    peerHost: host(env, 'PEER_HOST', '127.0.0.1'),
    peerSecret,
    peerTls: tlsFiles(env, 'PEER_TLS', true),
    hubTls: tlsFiles(env, 'HUB_TLS', false),
    httpTls: tlsFiles(env, 'HTTP_TLS', false),
    metricsPort,
    metricsHost: host(env, 'METRICS_HOST', '127.0.0.1'),
    hubHelloTimeoutMs: durationMs(env, 'HUB_HELLO_TIMEOUT_MS', 10_000),
    hubIdleMs: durationMs(env, 'HUB_IDLE_MS', 5 * 60_000),
    hubMaxConnections: positiveInt(env, 'HUB_MAX_CONNECTIONS', 20_000),
    hubOutboundQueue: positiveInt(env, 'HUB_OUTBOUND_QUEUE', 1_000),
    sseLimit: {
      perToken: positiveInt(env, 'SSE_MAX_PER_TOKEN', 16),
      perHome: positiveInt(env, 'SSE_MAX_PER_HOME', 64),
    },
  };
}
