/** Token buckets by key (a token digest, a home): how many requests each may make, and when to retry. */

/** Rates of the edge: `perTokenPerSec`/`perHomePerSec` requests refilled per second, `burst` the bucket size. */
export interface RateLimitConfig {
  readonly perTokenPerSec: number;
  readonly perHomePerSec: number;
  readonly burst: number;
}

export const defaultRateLimit: RateLimitConfig = { perTokenPerSec: 50, perHomePerSec: 100, burst: 100 };

/** `retryAfterMs`: milliseconds until the bucket holds a whole token again. */
export type Admission = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

/** The one admission object (the fast path allocates nothing). */
export const ADMITTED: Admission = Object.freeze({ ok: true });

/**
 * The edge's two limits as the guard uses them: a decision at once, or (a limiter shared through
 * Redis that has to ask for tokens) a promise of one. `now`: epoch ms.
 */
export interface RateLimits {
  /** tokenKey: a digest of the token, never the token itself. */
  takeToken(tokenKey: string, now: number): Admission | Promise<Admission>;
  takeHome(homeId: string, now: number): Admission | Promise<Admission>;
  /**
   * The admin token's bucket (RATE_LIMIT_PER_TOKEN, RATE_LIMIT_BURST): always this node's own, also
   * when the app tokens' buckets are shared — ops tooling and bench provisioning that call every
   * node at once are not throttled to one cluster-wide bucket, and cost no Redis round trip.
   */
  takeAdmin(now: number): Admission;
}

interface Bucket {
  tokens: number;
  /** Epoch ms of the last refill. */
  at: number;
}

/**
 * One bucket per key, created full. Memory is bounded: past `maxKeys` buckets, the full ones
 * (idle long enough to refill, so forgetting them changes nothing) are dropped, then the least
 * recently used.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    /** Tokens refilled per second. */
    private readonly ratePerSec: number,
    /** Bucket size: requests allowed at once after an idle period. */
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {
    if (!(ratePerSec > 0) || !(burst >= 1)) throw new RangeError(`rate ${ratePerSec}/s with burst ${burst} admits nothing`);
  }

  /** Takes one token from `key`'s bucket at `now` (epoch ms). */
  take(key: string, now: number): Admission {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: Map order is the LRU order
      bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, now - bucket.at) * this.ratePerSec) / 1000);
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      bucket = { tokens: this.burst, at: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return ADMITTED;
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / this.ratePerSec) };
  }

  /**
   * Sets `key`'s bucket to `tokens` (capped at the burst) as of `at` (epoch ms; refilled from then
   * on): the shared limiter's fallback starts a key's bucket at what Redis last reported, not full.
   */
  seed(key: string, tokens: number, at: number): void {
    if (!this.buckets.delete(key) && this.buckets.size >= this.maxKeys) this.evict(at);
    this.buckets.set(key, { tokens: Math.max(0, Math.min(this.burst, tokens)), at });
  }

  /** Buckets held (tests, metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.ratePerSec) / 1000 >= this.burst) this.buckets.delete(key);
    }
    // Still full of busy keys: drop the least recently used tenth.
    if (this.buckets.size >= this.maxKeys) {
      let drop = Math.max(1, Math.floor(this.maxKeys / 10));
      for (const key of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(key);
      }
    }
  }
}

/** The edge's two limits on this node alone: one bucket per app token (or the admin token), one per home. */
export class RequestLimiter implements RateLimits {
  private readonly perToken: TokenBucketLimiter;
  private readonly perHome: TokenBucketLimiter;

  constructor(config: RateLimitConfig) {
    this.perToken = new TokenBucketLimiter(config.perTokenPerSec, config.burst);
    this.perHome = new TokenBucketLimiter(config.perHomePerSec, config.burst);
  }

  /** tokenKey: a digest of the token, never the token itself. */
  takeToken(tokenKey: string, now: number): Admission {
    return this.perToken.take(tokenKey, now);
  }

  takeHome(homeId: string, now: number): Admission {
    return this.perHome.take(homeId, now);
  }

  takeAdmin(now: number): Admission {
    return this.perToken.take(ADMIN_KEY, now);
  }
}

/** The admin token's key in a node's own per-token buckets (app tokens are keyed by hex digests: no clash). */
export const ADMIN_KEY = 'admin';
