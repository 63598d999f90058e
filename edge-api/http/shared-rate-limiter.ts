/**
 * Rate limits that hold across the cluster: one bucket per token and per home in Redis, spent by
 * each node from small local grants of tokens, fetched ahead of need, so a request costs no Redis
 * round trip while its node holds tokens of its key.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { GrantLink, type BucketGrant } from './bucket-grants.ts';
import { RateLimitMetrics } from './rate-limit-metrics.ts';
import {
  ADMIN_KEY,
  ADMITTED,
  RequestLimiter,
  TokenBucketLimiter,
  type Admission,
  type RateLimitConfig,
  type RateLimits,
} from './rate-limiter.ts';

/** Default milliseconds a node keeps tokens granted to it: unspent ones are dropped after it (a node does not hoard). */
export const GRANT_TTL_MS = 1_000;
/** Default requests of one key that may wait on a node for its grant in flight; more are answered 429 at once. */
export const MAX_GRANT_WAITERS = 256;

/** Tokens a node asks for at least: 1 in 50 of the bucket, at least 1 (2 with the default burst 100). */
export const grantSizeOf = (burst: number): number => Math.max(1, Math.floor(burst / 50));

/**
 * Tokens a node holds of one key at most, granted and unspent, the grant in flight included: 1 in
 * 10 of the bucket, at least one grant (10 with the default burst 100). The cluster admits no more
 * than one bucket does (tokens leave the bucket only by grants); it may admit less by what the
 * nodes hold unspent: at most `nodes × maxHeld` at any moment.
 */
export const maxHeldOf = (burst: number): number => Math.max(grantSizeOf(burst), Math.floor(burst / 10));

interface KeyState {
  /** Whole tokens granted to this node and not yet spent. */
  tokens: number;
  /** Epoch ms after which `tokens` are void. */
  expiresAt: number;
  /** Epoch ms until which the cluster's bucket has no whole token (as Redis last said). */
  deniedUntil: number;
  /** The grant request in flight (one per key per node). */
  pending: Promise<'ok' | 'down'> | undefined;
  /** Requests waiting for `pending`. */
  waiters: number;
  /** Tokens a grant asks for (at least): doubles when the key's requests outrun its grants, halves when tokens go unspent. */
  want: number;
  /** Whether a request had to wait since the last grant came (`want` grows once per grant). */
  outran: boolean;
  /** Whole tokens in the cluster's bucket as Redis last reported them, at `levelAt` (epoch ms; 0: never). */
  level: number;
  levelAt: number;
  /** Whether this key's requests are decided by the node's own bucket now (seeded when it started). */
  local: boolean;
}

export interface SharedBucketOptions {
  readonly kind: 'token' | 'home';
  /** Tokens refilled per second. */
  readonly ratePerSec: number;
  /** Bucket size. */
  readonly burst: number;
  readonly link: GrantLink;
  readonly metrics: RateLimitMetrics;
  /** Keys remembered at most (grant state; and as many local fallback buckets). Default 100 000. */
  readonly maxKeys?: number;
  /** Default GRANT_TTL_MS. */
  readonly grantTtlMs?: number;
  /** Default MAX_GRANT_WAITERS. */
  readonly maxWaiters?: number;
}

/**
 * One kind of limit shared by the cluster. A take spends a token this node holds for the key
 * (synchronous, no allocation), or answers 429 at once while Redis said the bucket is empty, or
 * waits for the key's grant in flight (one per key per node; at most `maxWaiters` wait). A grant
 * asks for enough tokens for every request waiting (an event-loop turn's requests share one
 * call), never more than `maxHeld` held; when a spend leaves the key at its low-water mark (half
 * a grant) the next grant is fetched ahead, so a key used below its limit is mostly served
 * without waiting. When Redis fails, the node's own bucket with the same limit decides (see
 * GrantLink), started at the level Redis last reported for the key.
 */
export class SharedBucketLimiter {
  private readonly states = new Map<string, KeyState>();
  private readonly local: TokenBucketLimiter;
  private readonly maxKeys: number;
  private readonly grantTtlMs: number;
  private readonly maxWaiters: number;
  /** Tokens asked for per grant at least. */
  readonly grantSize: number;
  /** Tokens held per key at most (grant in flight included). */
  readonly maxHeld: number;
  /** The 429 of a request turned away because too many wait for the key's grant. */
  private readonly crowded: Admission;

  constructor(private readonly opts: SharedBucketOptions) {
    this.local = new TokenBucketLimiter(opts.ratePerSec, opts.burst, opts.maxKeys);
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.grantTtlMs = opts.grantTtlMs ?? GRANT_TTL_MS;
    this.maxWaiters = opts.maxWaiters ?? MAX_GRANT_WAITERS;
    this.grantSize = grantSizeOf(opts.burst);
    this.maxHeld = maxHeldOf(opts.burst);
    this.crowded = { ok: false, retryAfterMs: Math.ceil(1000 / opts.ratePerSec) };
  }

  /** Takes one token of `key` at `now` (epoch ms): at once when this node holds one or knows the bucket empty, else after a grant. */
  take(key: string, now: number): Admission | Promise<Admission> {
    let s = this.states.get(key);
    if (s === undefined) {
      if (this.states.size >= this.maxKeys) this.evict(now);
      s = {
        tokens: 0,
        expiresAt: 0,
        deniedUntil: 0,
        pending: undefined,
        waiters: 0,
        want: this.grantSize,
        outran: false,
        level: 0,
        levelAt: 0,
        local: false,
      };
    } else {
      this.states.delete(key); // re-inserted below: Map order is the LRU order
    }
    this.states.set(key, s);
    if (s.tokens >= 1) {
      if (now < s.expiresAt) return this.spend(key, s, now);
      // Tokens went unspent for a whole TTL: this node asks for fewer next time.
      s.tokens = 0;
      s.want = Math.max(this.grantSize, s.want >> 1);
    } else if (now < s.expiresAt && !s.outran && now >= s.deniedUntil) {
      // Spent before the next grant came: the key's requests outran its grants; ask for more (once per grant).
      s.outran = true;
      s.want = Math.min(this.maxHeld, s.want * 2);
    }
    if (now < s.deniedUntil) return { ok: false, retryAfterMs: s.deniedUntil - now };
    if (s.pending === undefined && this.opts.link.local(now)) return this.decideLocally(key, s, now);
    return this.awaitGrant(key, s);
  }

  /** Keys remembered (tests, metrics). */
  get size(): number {
    return this.states.size;
  }

  /** Tokens of `key` this node holds at `now` (granted, unspent, not yet void). */
  held(key: string, now: number): number {
    const s = this.states.get(key);
    return s !== undefined && now < s.expiresAt ? Math.floor(s.tokens) : 0;
  }

  /** Spends one held token; at the low-water mark fetches the next grant ahead (no await: the caller is admitted now). */
  private spend(key: string, s: KeyState, now: number): Admission {
    s.tokens--;
    if (s.tokens <= s.want >> 1 && s.pending === undefined && now >= s.deniedUntil && !this.opts.link.isDown) {
      s.pending = this.fetch(key, s);
    }
    return ADMITTED;
  }

  private decideLocally(key: string, s: KeyState, now: number): Admission {
    if (!s.local) {
      // Not full: the level Redis last reported (refilled since), so a switch does not hand every
      // node a whole bucket of a key the cluster has just spent. A key never asked about here starts full.
      s.local = true;
      if (s.levelAt > 0) this.local.seed(key, s.level, s.levelAt);
      else this.local.seed(key, this.opts.burst, now);
    }
    this.opts.link.countLocal(this.opts.kind);
    return this.local.take(key, now);
  }

  private async awaitGrant(key: string, s: KeyState): Promise<Admission> {
    if (s.waiters >= this.maxWaiters) return this.crowded;
    s.waiters++;
    try {
      // Each turn either spends a granted token, answers from the bucket's state, or (the grant
      // went to requests ahead and the bucket has more) asks again: every turn moves.
      for (;;) {
        const outcome = await (s.pending ??= this.fetch(key, s));
        const now = this.opts.link.now();
        if (s.tokens >= 1 && now < s.expiresAt) return this.spend(key, s, now);
        if (outcome === 'down') return this.decideLocally(key, s, now);
        if (now < s.deniedUntil) return { ok: false, retryAfterMs: s.deniedUntil - now };
      }
    } finally {
      s.waiters--;
    }
  }

  private async fetch(key: string, s: KeyState): Promise<'ok' | 'down'> {
    try {
      // Requests arriving in this turn of the event loop wait for this grant too: ask for them all.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const { kind, ratePerSec, burst, link } = this.opts;
      const heldNow = link.now() < s.expiresAt ? Math.floor(s.tokens) : 0;
      const want = Math.max(1, Math.min(this.maxHeld - heldNow, Math.max(s.want, s.waiters)));
      const answer = await link.grant(kind, key, ratePerSec, burst, want, (late) => this.credit(s, late));
      if (answer === undefined) return 'down';
      this.credit(s, answer);
      s.local = false;
      // Nothing granted means the bucket had no whole token: Redis said when the next one comes.
      s.deniedUntil = answer.waitMs > 0 || answer.granted === 0 ? answer.at + Math.max(1, answer.waitMs) : 0;
      return 'ok';
    } finally {
      s.pending = undefined;
    }
  }

  /** Adds a grant's tokens to what this node holds of the key, valid for grantTtlMs from now, and remembers the bucket's level. */
  private credit(s: KeyState, grant: BucketGrant): void {
    const now = grant.at;
    s.tokens = (now < s.expiresAt ? s.tokens : 0) + grant.granted;
    s.expiresAt = now + this.grantTtlMs;
    s.outran = false;
    if (grant.at >= s.levelAt) {
      s.level = grant.level;
      s.levelAt = grant.at;
    }
  }

  /** Forgets keys holding nothing (no tokens, no denial, no grant in flight) first, then the least recently used tenth. */
  private evict(now: number): void {
    for (const [key, s] of this.states) {
      if (s.pending === undefined && (s.tokens < 1 || now >= s.expiresAt) && now >= s.deniedUntil) this.states.delete(key);
    }
    if (this.states.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10));
      for (const key of this.states.keys()) {
        if (drop-- <= 0) break;
        // A forgotten key's waiters still hold its state: they get their answer; its tokens are dropped.
        this.states.delete(key);
      }
    }
  }
}

/** Where the cluster's buckets live, and what the shared limiter reports to. */
export interface SharedRateLimitDeps {
  /** The grants' connection: the node gives them one of their own (openGrantConnection in bucket-grants.ts). */
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  /** Epoch ms: the clock of the guard's `now`. */
  readonly clock: () => number;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Milliseconds a grant may take before it counts as a failure (FAILURES_TO_FALLBACK in a row: the node decides locally); default GRANT_TIMEOUT_MS (250). */
  readonly grantTimeoutMs?: number;
  /** Milliseconds between probes of Redis while it does not answer; default FALLBACK_RETRY_MS (1000). */
  readonly fallbackRetryMs?: number;
  /** Default GRANT_TTL_MS. */
  readonly grantTtlMs?: number;
  /** Keys remembered per kind; default 100 000. */
  readonly maxKeys?: number;
}

/** The edge's two limits, each one bucket per key for the whole cluster. */
export class SharedRequestLimiter implements RateLimits {
  readonly perToken: SharedBucketLimiter;
  readonly perHome: SharedBucketLimiter;
  /** The admin token's bucket: this node's own (RateLimits.takeAdmin). */
  private readonly admin: TokenBucketLimiter;

  constructor(config: RateLimitConfig, deps: SharedRateLimitDeps) {
    const metrics = RateLimitMetrics.of(deps.registry);
    const link = new GrantLink({
      client: deps.client,
      keys: deps.keys,
      clock: deps.clock,
      logger: deps.logger,
      metrics,
      ...(deps.grantTimeoutMs === undefined ? {} : { timeoutMs: deps.grantTimeoutMs }),
      ...(deps.fallbackRetryMs === undefined ? {} : { retryMs: deps.fallbackRetryMs }),
    });
    const common = {
      link,
      metrics,
      burst: config.burst,
      ...(deps.grantTtlMs === undefined ? {} : { grantTtlMs: deps.grantTtlMs }),
      ...(deps.maxKeys === undefined ? {} : { maxKeys: deps.maxKeys }),
    };
    this.perToken = new SharedBucketLimiter({ ...common, kind: 'token', ratePerSec: config.perTokenPerSec });
    this.perHome = new SharedBucketLimiter({ ...common, kind: 'home', ratePerSec: config.perHomePerSec });
    this.admin = new TokenBucketLimiter(config.perTokenPerSec, config.burst, 1);
  }

  takeToken(tokenKey: string, now: number): Admission | Promise<Admission> {
    return this.perToken.take(tokenKey, now);
  }

  takeHome(homeId: string, now: number): Admission | Promise<Admission> {
    return this.perHome.take(homeId, now);
  }

  takeAdmin(now: number): Admission {
    return this.admin.take(ADMIN_KEY, now);
  }
}

/**
 * The edge's limits: shared through Redis when `shared` names it (every node of the cluster draws
 * from one bucket per key), else this node's own buckets.
 */
export function createRateLimits(
  config: RateLimitConfig,
  shared: Omit<SharedRateLimitDeps, 'clock' | 'logger' | 'registry'> | undefined,
  deps: Pick<SharedRateLimitDeps, 'clock' | 'logger' | 'registry'>,
): RateLimits {
  return shared === undefined ? new RequestLimiter(config) : new SharedRequestLimiter(config, { ...shared, ...deps });
}
