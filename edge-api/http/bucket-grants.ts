/**
 * The cluster's rate-limit buckets in Redis: a script that refills a bucket by Redis's own clock
 * and grants a node a few tokens at once, and the link that asks it, with a deadline, and falls
 * back to local decisions while Redis does not answer.
 */
import { Cluster } from 'ioredis';
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import type { RateLimitMetrics } from './rate-limit-metrics.ts';

/**
 * KEYS[1]: the bucket (KeyLayout.rateBucket); ARGV: rate (tokens per second), burst (bucket
 * size), want (tokens asked for). Refills by Redis `TIME` (one clock for every node), takes up to
 * `want` whole tokens, and answers `{granted, waitMs, level}`: `waitMs` is 0 while a whole token
 * is left, else the milliseconds until the next one; `level` the whole tokens left in the bucket. A new bucket starts full; an idle one expires
 * once it would be full again (forgetting it changes nothing). A bucket holds at most `burst`
 * tokens also when the configured burst shrank. Redis ≥ 5 replicates a script's effects, so
 * reading `TIME` before writing is allowed (`replicate_commands` for the record; a no-op on 7).
 */
const GRANT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local b = redis.call('HMGET', KEYS[1], 'n', 't')
local n = tonumber(b[1])
local at = tonumber(b[2])
if n == nil or at == nil then
  n = burst
elseif now > at then
  n = n + (now - at) * rate / 1000
else
  -- Redis's clock went back (a failover to a replica): refill from the later time, never twice.
  now = at
end
if n > burst then n = burst end
local granted = 0
if n >= 1 then
  granted = math.min(want, math.floor(n))
  n = n - granted
end
redis.call('HSET', KEYS[1], 'n', tostring(n), 't', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - n) * 1000 / rate) + 1000)
local waitMs = 0
if n < 1 then waitMs = math.ceil((1 - n) * 1000 / rate) end
return {granted, waitMs, math.floor(n)}
`;

const GRANT_COMMAND = 'rateGrant';

interface GrantClient {
  rateGrant(key: string, rate: number, burst: number, want: number): Promise<[number, number, number]>;
}

/**
 * What the bucket gave: `granted` whole tokens; `waitMs` 0 while it has more, else milliseconds
 * until its next token; `level` the whole tokens it had left, read at `at` (epoch ms, this node's clock).
 */
export interface BucketGrant {
  readonly granted: number;
  readonly waitMs: number;
  readonly level: number;
  readonly at: number;
}

/**
 * Default milliseconds a grant may take before it counts as a failure. Its requests keep waiting
 * for it (a late grant still serves them) until FAILURES_TO_FALLBACK failures in a row.
 */
export const GRANT_TIMEOUT_MS = 250;
/**
 * Failures in a row (errors, or each GRANT_TIMEOUT_MS a grant goes unanswered) that make the node
 * decide locally: one slow answer does not, three slow grants at once or one unanswered for
 * 3 × the timeout do. Any answer, also a late one, starts the count again.
 */
export const FAILURES_TO_FALLBACK = 3;
/** Default milliseconds a node decides locally after Redis failed, before it asks Redis again. */
export const FALLBACK_RETRY_MS = 1_000;
/** Milliseconds between two warnings (or two "shared again" lines) about the fallback: a flapping link logs once a minute. */
export const FALLBACK_LOG_INTERVAL_MS = 60_000;

export interface GrantLinkDeps {
  /** The connection the grants use: give them their own (openGrantConnection), so that other traffic does not delay them. */
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  /** Epoch ms (the same clock as the guard's `now`). */
  readonly clock: () => number;
  readonly logger: Logger;
  readonly metrics: RateLimitMetrics;
  /** Default GRANT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Default FALLBACK_RETRY_MS. */
  readonly retryMs?: number;
  /** Default FAILURES_TO_FALLBACK. */
  readonly failuresToFallback?: number;
  /** Default FALLBACK_LOG_INTERVAL_MS. */
  readonly logIntervalMs?: number;
}

/**
 * A node's link to the shared buckets. `up` → `down` after `failuresToFallback` failures in a row
 * (an error, or every `timeoutMs` a grant goes unanswered; any answer resets the count); while
 * down, requests are decided by the node's own buckets, except that every `retryMs` one grant
 * request probes Redis again: its answer in time brings the link back `up`. The switches are
 * logged at most once per `logIntervalMs` each way (with how many were not logged).
 */
export class GrantLink {
  private readonly client: RedisClient & GrantClient;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retryMs: number;
  private readonly failuresToFallback: number;
  private readonly logIntervalMs: number;
  private down = false;
  /** Failures since the last answer. */
  private failures = 0;
  /** Epoch ms from which the next grant request may probe Redis (while down). */
  private probeAt = 0;
  /** Requests decided locally since the last "shared again" line. */
  private localDecisions = 0;
  /** Grants in flight whose requests are still waiting: told when the link goes down. */
  private readonly waiting = new Set<() => void>();
  private lastDownLogAt = -Infinity;
  private lastUpLogAt = -Infinity;
  private unloggedDowns = 0;
  private unloggedUps = 0;

  constructor(private readonly deps: GrantLinkDeps) {
    if (!(GRANT_COMMAND in deps.client)) deps.client.defineCommand(GRANT_COMMAND, { numberOfKeys: 1, lua: GRANT_SCRIPT });
    this.client = deps.client as RedisClient & GrantClient;
    this.log = deps.logger.child({ component: 'rate-limit' });
    this.timeoutMs = deps.timeoutMs ?? GRANT_TIMEOUT_MS;
    this.retryMs = deps.retryMs ?? FALLBACK_RETRY_MS;
    this.failuresToFallback = deps.failuresToFallback ?? FAILURES_TO_FALLBACK;
    this.logIntervalMs = deps.logIntervalMs ?? FALLBACK_LOG_INTERVAL_MS;
  }

  now(): number {
    return this.deps.clock();
  }

  /** Whether the node decides with its own buckets (Redis failed; no probe has answered since). */
  get isDown(): boolean {
    return this.down;
  }

  /** Whether a request at `now` is to be decided by the node's own bucket (Redis down, no probe due). */
  local(now: number): boolean {
    if (!this.down) return false;
    if (now >= this.probeAt) {
      // This request probes; the others stay local until its answer (or another retryMs).
      this.probeAt = now + this.timeoutMs + this.retryMs;
      return false;
    }
    return true;
  }

  /** Counts a request decided locally because Redis did not answer. */
  countLocal(kind: 'token' | 'home'): void {
    this.localDecisions++;
    this.deps.metrics.fallback.inc({ kind });
  }

  /**
   * Asks the bucket `kind`/`key` for `want` tokens. Resolves with the grant (also a late one),
   * or undefined when the call failed or the link went down while it waited: a grant that arrives
   * after that is given to `onLate` (its tokens were taken from the bucket: the caller keeps them
   * rather than losing them).
   */
  grant(
    kind: 'token' | 'home',
    key: string,
    rate: number,
    burst: number,
    want: number,
    onLate: (grant: BucketGrant) => void,
  ): Promise<BucketGrant | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      let late = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (answer: BucketGrant | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiting.delete(release);
        resolve(answer);
      };
      const release = (): void => settle(undefined);
      // The deadline fires in the check phase after the timer: when the event loop itself stalled
      // past it (a long GC, a starved CPU), a reply that arrived meanwhile is read in the poll
      // phase first and wins. Only a Redis that really did not answer in time counts.
      const arm = (): void => {
        timer = setTimeout(
          () =>
            setImmediate(() => {
              if (settled) return;
              late = true;
              this.failed(kind, `no answer within ${this.timeoutMs} ms`);
              if (this.down) settle(undefined);
              else arm();
            }),
          this.timeoutMs,
        );
      };
      this.waiting.add(release);
      arm();
      this.client.rateGrant(this.deps.keys.rateBucket(kind, key), rate, burst, want).then(
        ([granted, waitMs, level]) => {
          const grant = { granted: Number(granted), waitMs: Number(waitMs), level: Number(level), at: this.now() };
          this.deps.metrics.grants.inc({ kind, result: late ? 'late' : grant.granted > 0 ? 'granted' : 'empty' });
          this.answered(late);
          if (settled) {
            if (grant.granted > 0) onLate(grant);
          } else settle(grant);
        },
        (err: unknown) => {
          this.deps.metrics.grants.inc({ kind, result: 'failed' });
          this.failed(kind, err instanceof Error ? err.message : String(err));
          // An error is no answer to wait for: this grant's requests are decided locally.
          settle(undefined);
        },
      );
    });
  }

  private failed(kind: 'token' | 'home', reason: string): void {
    this.failures++;
    if (this.down) {
      this.probeAt = this.now() + this.retryMs;
      return;
    }
    if (this.failures < this.failuresToFallback) return;
    this.down = true;
    this.probeAt = this.now() + this.retryMs;
    this.deps.metrics.fallbackActive.set(1);
    const now = this.now();
    if (now - this.lastDownLogAt >= this.logIntervalMs) {
      this.log.warn(
        { reason, kind, failures: this.failures, retryMs: this.retryMs, unloggedSwitches: this.unloggedDowns },
        "rate limits fall back to this node's own buckets: Redis did not grant tokens (each node now admits up to the limit on its own)",
      );
      this.lastDownLogAt = now;
      this.unloggedDowns = 0;
    } else this.unloggedDowns++;
    // Requests waiting for grants still in flight stop waiting: they are decided locally now.
    for (const release of [...this.waiting]) release();
  }

  /** Redis answered a grant: the failure count starts again; an answer in time brings the link back up. */
  private answered(late: boolean): void {
    this.failures = 0;
    if (!this.down || late) return;
    this.down = false;
    this.deps.metrics.fallbackActive.set(0);
    const now = this.now();
    if (now - this.lastUpLogAt >= this.logIntervalMs) {
      this.log.info(
        { localDecisions: this.localDecisions, unloggedSwitches: this.unloggedUps },
        'rate limits are shared through Redis again',
      );
      this.lastUpLogAt = now;
      this.unloggedUps = 0;
      this.localDecisions = 0;
    } else this.unloggedUps++;
  }
}

/**
 * A connection of its own for the rate-limit grants (a duplicate of the node's `client`, named
 * `<its name>:rate-limits`), so that the shard windows' scripts queued on the node's connection
 * do not delay them; connected before it is returned (a failed connect is logged and retried by
 * ioredis, the grants fall back meanwhile). The caller disconnects it on close.
 */
export async function openGrantConnection(client: RedisClient, logger: Logger): Promise<RedisClient> {
  const log = logger.child({ component: 'rate-limit' });
  const name = client instanceof Cluster ? client.options.redisOptions?.connectionName : client.options.connectionName;
  const connectionName = `${name ?? 'iot'}:rate-limits`;
  const conn =
    client instanceof Cluster
      ? client.duplicate([], { redisOptions: { ...client.options.redisOptions, connectionName } })
      : client.duplicate({ connectionName });
  // As on the node's Cluster client (redis-connection.ts): a script is sent as issued, never in an
  // auto-pipeline that ioredis may file under another slot.
  if (conn instanceof Cluster) {
    const ignored = (conn.options.autoPipeliningIgnoredCommands ??= []);
    if (!ignored.includes(GRANT_COMMAND)) ignored.push(GRANT_COMMAND);
  }
  let lastError = '';
  conn.on('error', (err: Error) => {
    // ioredis repeats connection errors on every retry: log each distinct one once.
    if (err.message !== lastError) log.warn({ err: err.message }, 'rate-limit grant connection error');
    lastError = err.message;
  });
  conn.on('ready', () => {
    if (lastError) log.info('rate-limit grant connection restored');
    lastError = '';
  });
  if (conn.status === 'wait') await conn.connect().catch(() => {});
  return conn;
}
