/** App token grants by bearer token, kept briefly so a hot token is neither re-hashed nor re-read per request. */
import { grantCoversHome, type AppTokenGrant, type CredentialStore, type TokenRevocation } from './credential-store.ts';
import { hashSecret } from './secrets.ts';

export interface TokenGrantCacheConfig {
  /** Tokens kept at most; past it the oldest entry goes. Default 10 000. */
  readonly maxEntries: number;
  /**
   * Milliseconds a grant (and what it was found to cover, see `coversHome`) read from the store
   * is served from memory, counted from when the read began. It bounds how stale a grant can be:
   * a token revoked (or a home deleted) on another node is refused here at most `ttlMs` after.
   * Default 500 ms: an open event stream re-checks its access every `ACCESS_RECHECK_MS` (400 ms)
   * through this cache, so it ends within 500 + 400 ms plus a store read of a revocation made
   * on any node, inside DESIGN's "revocation effective on every node within 1 s"; a new request is
   * refused within 500 ms. The cost: a hot token is re-read once per 500 ms per node. A revocation
   * made through this cache takes effect here at once.
   */
  readonly ttlMs: number;
  /**
   * Monotonic milliseconds (default `performance.now`), for the TTL only. Not the wall clock: a
   * wall clock stepped back by NTP or an operator would keep grants for as long as the step.
   */
  readonly clock: () => number;
  /**
   * Unknown tokens remembered at most (by digest, with whether each was revoked); past it the
   * oldest goes. Default 10 000 (about 1 MB): junk tokens only push out other junk.
   */
  readonly maxMisses: number;
  /**
   * Milliseconds a token the store did not know (and its revocation tombstone, or none) is answered
   * from memory, so a flood of unknown tokens costs two store reads per token per TTL, not per
   * request (they are refused before any rate limit, which needs a known token). Default 500 ms.
   * It cannot delay a new token: the node mints each from 32 random bytes, so no request can have
   * presented it before. A token stored outside the API after a miss resolves within this TTL.
   */
  readonly missTtlMs: number;
}

export const defaultTokenGrantCache: TokenGrantCacheConfig = {
  maxEntries: 10_000,
  ttlMs: 500,
  clock: () => performance.now(),
  maxMisses: 10_000,
  missTtlMs: 500,
};

/** An app token that the store knows: its digest (the key of its buckets and records) and grant. */
export interface ResolvedToken {
  readonly digest: string;
  readonly grant: AppTokenGrant;
}

interface Entry extends ResolvedToken {
  /** `clock` ms when the store read of this grant began; the entry is fresh for `ttlMs` after. */
  readonly readAt: number;
}

/** A token the store did not know: when that read began, and its tombstone once read (`revocation`). */
interface Miss {
  readonly readAt: number;
  revocation?: { readonly found: TokenRevocation | undefined };
}

/** Told the digest of each token revoked through the cache (after the store answered, or failed). */
export type RevocationListener = (digest: string) => void;

/**
 * Resolves bearer tokens to grants through `store`. Tokens the store knows are kept for `ttlMs`;
 * tokens it does not know are remembered apart, by digest, for `missTtlMs` in a bounded map, so
 * junk tokens cannot push out the grants of real ones. A store failure is not cached: it rejects.
 *
 * Revocation: `revoke` deletes the grant from the store, then drops every cached grant and every
 * read still in flight, so no request that starts after `revoke` resolves is served the old grant
 * on this node. Dropping all entries (not just the one) keeps that simple; revocations are rare
 * and a hot token costs one store read to come back. Requests already past the guard (open event
 * streams) learn of it through `onRevoke`.
 */
export class TokenGrantCache {
  /** By bearer token; Map order is insertion order, so the first key is the oldest entry. */
  private readonly entries = new Map<string, Entry>();
  /** Bumped by each revocation; a read begun under an older generation is not cached. */
  private generation = 0;
  private readonly config: TokenGrantCacheConfig;
  private readonly revocationListeners = new Set<RevocationListener>();
  /**
   * Per resolved token (the very object `resolve` returned, served until its TTL ends): which
   * homes its grant was found to cover or not, so a deletion mark is read once per token and
   * home per TTL, and only for the homes the token is actually used on (a grant may name 1 000).
   */
  private homeChecks = new WeakMap<ResolvedToken, Map<string, boolean>>();
  /** Unknown tokens by digest, oldest first (see `missTtlMs`). */
  private readonly misses = new Map<string, Miss>();

  constructor(
    private readonly store: CredentialStore,
    config: Partial<TokenGrantCacheConfig> = {},
  ) {
    this.config = { ...defaultTokenGrantCache, ...config };
    const { maxEntries, ttlMs, maxMisses, missTtlMs } = this.config;
    for (const [name, value] of [
      ['maxEntries', maxEntries],
      ['maxMisses', maxMisses],
    ] as const)
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer ≥ 0, not ${value}`);
    for (const [name, value] of [
      ['ttlMs', ttlMs],
      ['missTtlMs', missTtlMs],
    ] as const)
      if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a finite number ≥ 0, not ${value}`);
  }

  /** The digest and grant of `token`, or undefined when the store knows no such token. */
  async resolve(token: string): Promise<ResolvedToken | undefined> {
    const now = this.config.clock();
    const hit = this.entries.get(token);
    if (hit !== undefined) {
      // A clock that went back (an injected one; performance.now does not) expires the entry
      // rather than stretching its life by the step.
      const age = now - hit.readAt;
      if (age >= 0 && age < this.config.ttlMs) return hit;
      this.entries.delete(token);
    }
    const digest = hashSecret(token);
    if (this.freshMiss(digest, now)) return undefined;
    const generation = this.generation;
    const grant = await this.store.findToken(digest);
    if (grant === undefined) {
      if (generation === this.generation) this.rememberMiss(digest, now);
      return undefined;
    }
    const entry: Entry = { digest, grant, readAt: now };
    // A revocation landed while the store was read: serve this request, but do not keep the grant.
    if (generation === this.generation && this.config.maxEntries > 0 && this.config.ttlMs > 0) {
      if (this.entries.size >= this.config.maxEntries && !this.entries.has(token)) {
        const oldest = this.entries.keys().next();
        if (oldest.done !== true) this.entries.delete(oldest.value);
      }
      this.entries.set(token, entry);
    }
    return entry;
  }

  /**
   * When the token of `digest` was revoked, if it was (within the store's retention): asked only
   * for a token `resolve` did not find, to tell `token_revoked` from `unauthenticated`. Kept with
   * that miss (`missTtlMs`): a revocation is final, and an unknown token stays unknown.
   */
  async revocation(digest: string): Promise<TokenRevocation | undefined> {
    const miss = this.freshMiss(digest, this.config.clock());
    if (miss?.revocation) return miss.revocation.found;
    const generation = this.generation;
    const found = await this.store.findRevocation(digest);
    if (miss && generation === this.generation) miss.revocation = { found };
    return found;
  }

  /** The remembered miss of `digest` while fresh (a stale one is dropped). */
  private freshMiss(digest: string, now: number): Miss | undefined {
    const miss = this.misses.get(digest);
    if (miss === undefined) return undefined;
    const age = now - miss.readAt;
    if (age >= 0 && age < this.config.missTtlMs) return miss;
    this.misses.delete(digest);
    return undefined;
  }

  private rememberMiss(digest: string, now: number): void {
    if (this.config.maxMisses === 0 || this.config.missTtlMs === 0) return;
    this.misses.delete(digest);
    if (this.misses.size >= this.config.maxMisses) {
      const oldest = this.misses.keys().next();
      if (oldest.done !== true) this.misses.delete(oldest.value);
    }
    this.misses.set(digest, { readAt: now });
  }

  /** Revokes the token of `digest` in the store and on this node at once; false when the store held none. */
  async revoke(digest: string): Promise<boolean> {
    try {
      return await this.store.revokeToken(digest);
    } finally {
      // Also when the store failed: the delete may have landed, and forgetting is always safe.
      this.forgetAll();
      for (const listener of this.revocationListeners) listener(digest);
    }
  }

  /**
   * Calls `listener` with the digest of every token revoked through this cache, once its store
   * call is done (a failed one too: the operator meant to revoke it). Returns the unsubscribe.
   * Listeners run inside `revoke`: they must only take note, not throw or wait.
   */
  onRevoke(listener: RevocationListener): () => void {
    this.revocationListeners.add(listener);
    return () => this.revocationListeners.delete(listener);
  }

  /**
   * Whether `resolved` (as `resolve` returned it) covers home `homeId`: the grant names it, and
   * the home was not deleted at or after the grant's creation (tokens of a deleted home do not
   * reach a home created anew under its id). The deletion mark is read from the store once per
   * token and home for as long as `resolved` is served from the cache. Rejects when the store
   * cannot answer.
   */
  async coversHome(resolved: ResolvedToken, homeId: string): Promise<boolean> {
    if (!resolved.grant.homes.includes(homeId)) return false;
    const known = this.homeChecks.get(resolved)?.get(homeId);
    if (known !== undefined) return known;
    const generation = this.generation;
    const covered = grantCoversHome(resolved.grant.createdAt, await this.store.homeDeletedAt(homeId));
    if (generation === this.generation) {
      const checks = this.homeChecks.get(resolved) ?? new Map<string, boolean>();
      checks.set(homeId, covered);
      this.homeChecks.set(resolved, checks);
    }
    return covered;
  }

  /**
   * Records in the store that home `homeId` was deleted at `at` (epoch ms), then forgets every
   * cached grant and home check, so on this node the tokens granted it before lose it at once (on
   * others within `ttlMs`). Also forgets when the store failed: the mark may have landed.
   */
  async markHomeDeleted(homeId: string, at: number): Promise<void> {
    try {
      await this.store.markHomeDeleted(homeId, at);
    } finally {
      this.forgetAll();
    }
  }

  private forgetAll(): void {
    this.generation++;
    this.entries.clear();
    // A remembered "never issued" of the revoked token would hide its tombstone.
    this.misses.clear();
    this.homeChecks = new WeakMap();
  }

  /** Tokens cached (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Unknown tokens remembered (tests). */
  get missCount(): number {
    return this.misses.size;
  }
}
