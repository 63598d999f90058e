/** App token grants by bearer token, kept briefly so a hot token is neither re-hashed nor re-read per request. */
import type { AppTokenGrant, CredentialStore } from './credential-store.ts';
import { hashSecret } from './secrets.ts';

export interface TokenGrantCacheConfig {
  /** Tokens kept at most; past it the oldest entry goes. Default 10 000. */
  readonly maxEntries: number;
  /**
   * Milliseconds a grant read from the store is served from memory, counted from when the read
   * began. It bounds how stale a grant can be: a token revoked on another node is refused here
   * at most `ttlMs` after the revocation (default 1 000 ms: DESIGN's "revocation effective on
   * every node within 1 s"). A revocation made through this cache takes effect here at once.
   */
  readonly ttlMs: number;
  /**
   * Monotonic milliseconds (default `performance.now`), for the TTL only. Not the wall clock: a
   * wall clock stepped back by NTP or an operator would keep grants for as long as the step.
   */
  readonly clock: () => number;
}

export const defaultTokenGrantCache: TokenGrantCacheConfig = { maxEntries: 10_000, ttlMs: 1_000, clock: () => performance.now() };

/** An app token that the store knows: its digest (the key of its buckets and records) and grant. */
export interface ResolvedToken {
  readonly digest: string;
  readonly grant: AppTokenGrant;
}

interface Entry extends ResolvedToken {
  /** `clock` ms when the store read of this grant began; the entry is fresh for `ttlMs` after. */
  readonly readAt: number;
}

/** Told the digest of each token revoked through the cache (after the store answered, or failed). */
export type RevocationListener = (digest: string) => void;

/**
 * Resolves bearer tokens to grants through `store`. Only tokens the store knows are kept, so
 * junk tokens cannot fill the cache, and an unknown token is asked again each time (a token
 * minted on another node works here at once). A store failure is not cached: it rejects.
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

  constructor(
    private readonly store: CredentialStore,
    config: Partial<TokenGrantCacheConfig> = {},
  ) {
    this.config = { ...defaultTokenGrantCache, ...config };
    const { maxEntries, ttlMs } = this.config;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new RangeError(`maxEntries must be an integer ≥ 0, not ${maxEntries}`);
    if (!(ttlMs >= 0 && Number.isFinite(ttlMs))) throw new RangeError(`ttlMs must be a finite number ≥ 0, not ${ttlMs}`);
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
    const generation = this.generation;
    const grant = await this.store.findToken(digest);
    if (grant === undefined) return undefined;
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

  /** Revokes the token of `digest` in the store and on this node at once; false when the store held none. */
  async revoke(digest: string): Promise<boolean> {
    try {
      return await this.store.revokeToken(digest);
    } finally {
      // Also when the store failed: the delete may have landed, and forgetting is always safe.
      this.generation++;
      this.entries.clear();
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

  /** Tokens cached (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }
}
