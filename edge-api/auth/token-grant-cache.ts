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
}

export const defaultTokenGrantCache: TokenGrantCacheConfig = { maxEntries: 10_000, ttlMs: 1_000 };

/** An app token that the store knows: its digest (the key of its buckets and records) and grant. */
export interface ResolvedToken {
  readonly digest: string;
  readonly grant: AppTokenGrant;
}

interface Entry extends ResolvedToken {
  /** Epoch ms after which the entry is read again from the store. */
  readonly expiresAt: number;
}

/**
 * Resolves bearer tokens to grants through `store`. Only tokens the store knows are kept, so
 * junk tokens cannot fill the cache, and an unknown token is asked again each time (a token
 * minted on another node works here at once). A store failure is not cached: it rejects.
 *
 * Revocation: `revoke` deletes the grant from the store, then drops every cached grant and every
 * read still in flight, so no request that starts after `revoke` resolves is served the old grant
 * on this node. Dropping all entries (not just the one) keeps that simple; revocations are rare
 * and a hot token costs one store read to come back.
 */
export class TokenGrantCache {
  /** By bearer token; Map order is insertion order, so the first key is the oldest entry. */
  private readonly entries = new Map<string, Entry>();
  /** Bumped by each revocation; a read begun under an older generation is not cached. */
  private generation = 0;
  private readonly config: TokenGrantCacheConfig;

  constructor(
    private readonly store: CredentialStore,
    config: Partial<TokenGrantCacheConfig> = {},
  ) {
    this.config = { ...defaultTokenGrantCache, ...config };
    const { maxEntries, ttlMs } = this.config;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new RangeError(`maxEntries must be an integer ≥ 0, not ${maxEntries}`);
    if (!(ttlMs >= 0 && Number.isFinite(ttlMs))) throw new RangeError(`ttlMs must be a finite number ≥ 0, not ${ttlMs}`);
  }

  /** The digest and grant of `token` at `now` (epoch ms), or undefined when the store knows no such token. */
  async resolve(token: string, now: number): Promise<ResolvedToken | undefined> {
    const hit = this.entries.get(token);
    if (hit !== undefined) {
      if (now < hit.expiresAt) return hit;
      this.entries.delete(token);
    }
    const digest = hashSecret(token);
    const generation = this.generation;
    const grant = await this.store.findToken(digest);
    if (grant === undefined) return undefined;
    const entry: Entry = { digest, grant, expiresAt: now + this.config.ttlMs };
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
    }
  }

  /** Tokens cached (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }
}
