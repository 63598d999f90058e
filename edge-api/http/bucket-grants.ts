/**
 * The cluster's rate-limit buckets in Redis: a script that refills a bucket by Redis's own clock
 * and grants a node a few tokens at once, and the link that asks it, with a deadline, and falls
 * back to local decisions while Redis does not answer.
 */
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import type { RateLimitMetrics } from './rate-limit-metrics.ts';

/**
 * KEYS[1]: the bucket (KeyLayout.rateBucket); ARGV: rate (tokens per second), burst (bucket
 * size), want (tokens asked for). Refills by Redis `TIME` (one clock for every node), takes up to
 * `want` whole tokens, and answers `{granted, waitMs}`: `waitMs` is 0 while a whole token is
 * left, else the milliseconds until the next one. A new bucket starts full; an idle one expires
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
return {granted, waitMs}
`;

const GRANT_COMMAND = 'rateGrant';

interface GrantClient {
  rateGrant(key: string, rate: number, burst: number, want: number): Promise<[number, number]>;
}

/** What the bucket gave: `granted` whole tokens; `waitMs` 0 while it has more, else milliseconds until its next token. */
export interface BucketGrant {
  readonly granted: number;
  readonly waitMs: number;
}

/** Default milliseconds a grant may take before the node decides locally (Redis counted as down). */
export const GRANT_TIMEOUT_MS = 250;
/** Default milliseconds a node decides locally after Redis failed, before it asks Redis again. */
export const FALLBACK_RETRY_MS = 1_000;

export interface GrantLinkDeps {
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
}

/**
 * A node's link to the shared buckets. `up` → `down` when a grant fails or takes longer than
 * `timeoutMs` (logged once per outage); while down, requests are decided by the node's own
 * buckets, except that every `retryMs` one grant request probes Redis again: its answer brings
 * the link back `up` (logged once).
 */
export class GrantLink {
  private readonly client: RedisClient & GrantClient;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retryMs: number;
  private down = false;
  /** Epoch ms from which the next grant request may probe Redis (while down). */
  private probeAt = 0;
  /** Requests decided locally in the current outage (logged when it ends). */
  private localDecisions = 0;

  constructor(private readonly deps: GrantLinkDeps) {
    if (!(GRANT_COMMAND in deps.client)) deps.client.defineCommand(GRANT_COMMAND, { numberOfKeys: 1, lua: GRANT_SCRIPT });
    this.client = deps.client as RedisClient & GrantClient;
    this.log = deps.logger.child({ component: 'rate-limit' });
    this.timeoutMs = deps.timeoutMs ?? GRANT_TIMEOUT_MS;
    this.retryMs = deps.retryMs ?? FALLBACK_RETRY_MS;
  }

  now(): number {
    return this.deps.clock();
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
   * Asks the bucket `kind`/`key` for `want` tokens. Undefined when Redis failed or did not answer
   * within the timeout (the link is then down); a grant that arrives after the timeout is given to
   * `onLate` (its tokens were taken from the bucket: the caller keeps them rather than losing them).
   */
  async grant(
    kind: 'token' | 'home',
    key: string,
    rate: number,
    burst: number,
    want: number,
    onLate: (granted: number) => void,
  ): Promise<BucketGrant | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const call = this.client.rateGrant(this.deps.keys.rateBucket(kind, key), rate, burst, want);
    // The deadline resolves in the check phase after the timer: when the event loop itself stalled
    // past the deadline (a long GC, a starved CPU), a reply that arrived meanwhile is read in the
    // poll phase first and wins. Only a Redis that really did not answer in time times out.
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => setImmediate(resolve, undefined), this.timeoutMs)));
    try {
      const answer = await Promise.race([call, timeout]);
      if (answer === undefined) {
        call.then(
          ([granted]) => granted > 0 && onLate(Number(granted)),
          () => {},
        );
        this.failed(kind, `no answer within ${this.timeoutMs} ms`);
        return undefined;
      }
      const grant = { granted: Number(answer[0]), waitMs: Number(answer[1]) };
      this.deps.metrics.grants.inc({ kind, result: grant.granted > 0 ? 'granted' : 'empty' });
      this.restored();
      return grant;
    } catch (err) {
      this.failed(kind, err instanceof Error ? err.message : String(err));
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private failed(kind: 'token' | 'home', reason: string): void {
    this.deps.metrics.grants.inc({ kind, result: 'failed' });
    this.probeAt = this.now() + this.retryMs;
    if (this.down) return;
    this.down = true;
    this.localDecisions = 0;
    this.deps.metrics.fallbackActive.set(1);
    this.log.warn(
      { reason, retryMs: this.retryMs },
      "rate limits fall back to this node's own buckets: Redis did not grant tokens (each node now admits up to the limit on its own)",
    );
  }

  private restored(): void {
    if (!this.down) return;
    this.down = false;
    this.deps.metrics.fallbackActive.set(0);
    this.log.info({ localDecisions: this.localDecisions }, 'rate limits are shared through Redis again');
  }
}
