/** Doctor's Redis checks: reachable and recent enough, durable (append-only file), never evicting, and on time. */
import { Cluster, type Redis } from 'ioredis';
import { redactRedisUrl } from '../../node/config.ts';
import { isSupportedRedisVersion, MIN_REDIS_VERSION, createRedisClient, type RedisClient } from '../../runtime/redis/redis-connection.ts';
import { fail, messageOf, ok, warn, type CheckResult } from './check-result.ts';
import { CALL_TIMEOUT_MS, CONNECT_TIMEOUT_MS, withDeadline } from './deadline.ts';

/**
 * A fail-fast client connected to `url` (Redis, Sentinel or Cluster forms, as the node accepts
 * them), or an Error saying why not within CONNECT_TIMEOUT_MS. Connection errors are kept to
 * explain a refusal (ioredis' own rejection only says "Connection is closed").
 */
export async function openRedis(url: string): Promise<RedisClient> {
  const client = createRedisClient(url, { failFast: true, commandTimeoutMs: CALL_TIMEOUT_MS, name: 'iot-doctor' });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  try {
    await withDeadline(client.connect(), CONNECT_TIMEOUT_MS, `Redis at ${redactRedisUrl(url)}`);
    return client;
  } catch (err) {
    client.disconnect();
    throw lastError && !(err instanceof Error && err.name === 'DeadlineError') ? lastError : err;
  }
}

/** The servers whose settings matter: every master of a Redis Cluster, else the one server. */
export function serversOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** `redis` check: the server answers and its version is at least MIN_REDIS_VERSION. */
export async function redisCheck(client: RedisClient, url: string): Promise<CheckResult> {
  const where = redactRedisUrl(url);
  let info: string;
  try {
    info = await serversOf(client)[0]!.info('server');
  } catch (err) {
    return fail('redis', `Redis at ${where} connected but INFO failed: ${messageOf(err)}`, 'check the Redis ACL allows INFO for this user');
  }
  const version = /redis_version:([\d.]+)/.exec(info)?.[1];
  const min = MIN_REDIS_VERSION.join('.');
  if (version === undefined) return fail('redis', `Redis at ${where} did not report its version`, `use Redis ${min} or newer`);
  if (!isSupportedRedisVersion(version))
    return fail('redis', `Redis ${version} at ${where} is too old`, `upgrade to Redis ${min} or newer (nodes refuse to start on it)`);
  return ok('redis', `Redis ${version} at ${where} (${min} or newer needed)`);
}

/** The check line for a Redis that could not be reached at all. */
export function unreachableCheck(url: string, err: unknown): CheckResult {
  return fail(
    'redis',
    `cannot reach Redis at ${redactRedisUrl(url)}: ${messageOf(err)}`,
    'check REDIS_URL, that Redis runs and that this machine can reach it (firewall, DNS, TLS: rediss://)',
  );
}

/** The settings the persistence and eviction checks read. */
export const CONFIG_NAMES = ['appendonly', 'appendfsync', 'maxmemory', 'maxmemory-policy'] as const;

/** What readServerConfig needs of a server: a pipeline of CONFIG GETs. */
type ConfigServer = Pick<Redis, 'pipeline'>;

/**
 * CONFIG GET of each server, as `{name: value}`; an Error when CONFIG is renamed, denied or does
 * not answer. One name per CONFIG GET (pipelined): Redis before 7.0 takes exactly one.
 */
export async function readServerConfig(client: RedisClient | readonly ConfigServer[]): Promise<Record<string, string>[] | Error> {
  const servers: readonly ConfigServer[] = Array.isArray(client) ? client : serversOf(client as RedisClient);
  try {
    return await withDeadline(
      Promise.all(
        servers.map(async (server) => {
          const pipeline = server.pipeline();
          for (const name of CONFIG_NAMES) pipeline.config('GET', name);
          const results = (await pipeline.exec()) ?? [];
          const out: Record<string, string> = {};
          for (const [err, flat] of results) {
            if (err) throw err;
            const pairs = flat as string[];
            for (let i = 0; i + 1 < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
          }
          return out;
        }),
      ),
      CALL_TIMEOUT_MS,
      'Redis CONFIG GET',
    );
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

const cannotRead = (check: 'persistence' | 'eviction', err: Error): CheckResult =>
  warn(
    check,
    `could not read CONFIG (renamed, denied, or the server did not answer): ${err.message}`,
    'check appendonly, appendfsync and maxmemory-policy on the Redis host yourself',
  );

/**
 * `persistence` check: acks promise durability, which holds across a Redis restart only with the
 * append-only file; `appendfsync always` also survives a host crash, `everysec` may lose the last
 * second, `no` leaves it to the OS.
 */
export function persistenceCheck(configs: Record<string, string>[] | Error): CheckResult {
  if (configs instanceof Error) return cannotRead('persistence', configs);
  if (configs.some((c) => c.appendonly !== 'yes'))
    return warn(
      'persistence',
      'appendonly is off: acked hub reports and every actor write since the last RDB snapshot are lost when Redis restarts',
      'set appendonly yes (and appendfsync always) in redis.conf, or CONFIG SET appendonly yes then CONFIG REWRITE',
    );
  const fsyncs = [...new Set(configs.map((c) => c.appendfsync ?? 'unknown'))];
  if (fsyncs.every((f) => f === 'always'))
    return ok('persistence', 'appendonly yes, appendfsync always: an ack survives a Redis or host crash');
  if (fsyncs.includes('no'))
    return warn(
      'persistence',
      `appendonly yes, appendfsync ${fsyncs.join('/')}: the OS decides when writes reach disk; a host crash loses up to ~30 s of acked writes`,
      'set appendfsync always (or everysec to lose at most 1 s)',
    );
  return ok(
    'persistence',
    `appendonly yes, appendfsync ${fsyncs.join('/')}: a Redis crash loses nothing, a host crash up to 1 s of acked writes`,
    'appendfsync always closes that window at some write latency',
  );
}

/** `eviction` check: an evicting Redis may drop journals, leases, heartbeats or the peer secret. */
export function evictionCheck(configs: Record<string, string>[] | Error): CheckResult {
  if (configs instanceof Error) return cannotRead('eviction', configs);
  const policies = [...new Set(configs.map((c) => c['maxmemory-policy'] ?? 'unknown'))];
  const limit = configs.map((c) => c.maxmemory ?? '0').find((m) => m !== '0');
  const memory = limit === undefined ? 'no maxmemory limit' : `maxmemory ${limit} bytes`;
  if (policies.every((p) => p === 'noeviction'))
    return ok('eviction', `maxmemory-policy noeviction, ${memory}: a full Redis refuses writes instead of dropping state`);
  return warn(
    'eviction',
    `maxmemory-policy ${policies.join('/')} (${memory}): Redis may evict actor journals, shard leases, heartbeats or the peer secret`,
    'set maxmemory-policy noeviction and size maxmemory for the state',
  );
}

/** This machine's clock minus Redis' (TIME), in ms, and the uncertainty of that reading (half the round trip). */
export interface ClockReading {
  readonly skewMs: number;
  readonly uncertaintyMs: number;
}

/** Reads Redis TIME a few times and keeps the sample with the shortest round trip. */
export async function readClock(client: RedisClient): Promise<ClockReading> {
  const server = serversOf(client)[0]!;
  let best: ClockReading | undefined;
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const [sec, usec] = await withDeadline(server.time(), CALL_TIMEOUT_MS, 'Redis TIME');
    const t1 = Date.now();
    const redisMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const reading = { skewMs: Math.round((t0 + t1) / 2 - redisMs), uncertaintyMs: Math.ceil((t1 - t0) / 2) };
    if (!best || reading.uncertaintyMs < best.uncertaintyMs) best = reading;
  }
  return best!;
}

/**
 * Skew above which doctor warns. Shard leases and heartbeats expire on Redis' clock (PX), so skew
 * does not break lease safety; what it shifts is what nodes judge by their own clocks: reminders
 * fire, commands expire and tokens expire that much early or late.
 */
export const CLOCK_WARN_MS = 500;

/**
 * Skew above which doctor fails: a reminder firing, a command expiring or a token expiring 10 s
 * off its time is visible to users (a token still accepted after it expired, a command expired
 * before the hub could answer it).
 */
export const CLOCK_FAIL_MS = 10_000;

/** One clock's offset from Redis' and how far off that estimate may be. */
export interface SkewReading {
  readonly skewMs: number;
  readonly uncertaintyMs: number;
}

const signed = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms}`;

/**
 * `clock` check over this machine's skew and each node's (estimated from its heartbeat, see
 * cluster-state.ts), all relative to Redis' clock. A clock counts as off only by what its skew
 * exceeds its uncertainty: a slow round trip alone never fails the check.
 */
export function clockCheck(self: ClockReading | Error, nodes: ReadonlyMap<string, SkewReading>): CheckResult {
  if (self instanceof Error)
    return warn('clock', `cannot read Redis TIME: ${self.message}`, 'check the Redis ACL allows TIME; compare clocks with NTP by hand');
  const readings: [string, SkewReading][] = [
    ['this machine', self],
    ...[...nodes].map(([id, r]): [string, SkewReading] => [`node ${id}`, r]),
  ];
  const listed = readings.map(([who, r]) => `${who} ${signed(r.skewMs)} ±${r.uncertaintyMs} ms`).join(', ');
  const surely = (r: SkewReading): number => Math.max(0, Math.abs(r.skewMs) - r.uncertaintyMs);
  const [worstWho, worstReading] = readings.reduce((a, b) => (surely(b[1]) > surely(a[1]) ? b : a));
  const off = surely(worstReading);
  const finding = `clocks against Redis: ${listed}`;
  const sync = `synchronise ${worstWho}'s clock (NTP/chrony) with the Redis host's`;
  const effect = "reminders fire, and commands and tokens expire, that much early or late (leases are safe: they expire on Redis' clock)";
  if (off > CLOCK_FAIL_MS) return fail('clock', `${finding}: ${worstWho} is off by more than ${CLOCK_FAIL_MS} ms; ${effect}`, sync);
  if (off > CLOCK_WARN_MS) return warn('clock', `${finding}: ${worstWho} is off by more than ${CLOCK_WARN_MS} ms; ${effect}`, sync);
  return ok('clock', `${finding} (within ${CLOCK_WARN_MS} ms)`);
}
