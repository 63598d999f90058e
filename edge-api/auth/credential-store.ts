/** Hub secrets and app tokens by digest, looked up before any actor is touched; their lifecycle (expiry, rotation, revocation, removal). */
import { tokenIdOf } from './secrets.ts';

/** What a hub secret lets its holder speak for. */
export interface HubCredential {
  readonly homeId: string;
  readonly hubId: string;
  /**
   * Epoch ms from which this secret no longer authenticates: set on a secret rotated out with a
   * grace period. Absent: valid until rotated out or removed.
   */
  readonly expiresAt?: number;
}

export type Scope = 'read' | 'control' | 'rules';
export const SCOPES: readonly Scope[] = ['read', 'control', 'rules'];

/** What an app token may do: which homes, which scopes, until when. */
export interface AppTokenGrant {
  readonly homes: readonly string[];
  readonly scopes: readonly Scope[];
  /** Epoch ms. */
  readonly createdAt: number;
  /**
   * Epoch ms from which the token answers `token_expired`; null: never. Absent in grants stored
   * before tokens could expire, which never do.
   */
  readonly expiresAt?: number | null;
}

/** What is left of a revoked app token: when it was revoked (epoch ms). */
export interface TokenRevocation {
  readonly revokedAt: number;
}

/** An app token as listed: its public id and grant, never its secret or digest. */
export interface TokenListing {
  readonly tokenId: string;
  readonly homes: readonly string[];
  readonly scopes: readonly Scope[];
  readonly createdAt: number;
  readonly expiresAt: number | null;
}

/** One page of app tokens in token id order; `nextCursor` (the last token id) is absent on the last page. */
export interface TokenPage {
  readonly items: readonly TokenListing[];
  readonly nextCursor?: string;
}

/**
 * Milliseconds a revocation tombstone and an expired grant are kept (30 days): for that long a
 * revoked token answers `token_revoked` and an expired one `token_expired`, and an expired one
 * stays listed; after it both answer `unauthenticated` like any unknown token, and nothing of them
 * piles up.
 */
export const TOKEN_RECORD_RETENTION_MS = 30 * 86_400_000;

/** A token id: `tok_` and 24 lower-case hex digits (see `tokenIdOf`). */
export const TOKEN_ID = /^tok_[0-9a-f]{24}$/;

export const listingOf = (digest: string, g: AppTokenGrant): TokenListing => ({
  tokenId: tokenIdOf(digest),
  homes: g.homes,
  scopes: g.scopes,
  createdAt: g.createdAt,
  expiresAt: g.expiresAt ?? null,
});

/**
 * Whether `grant` has expired at `now` (epoch ms). `expiresAt` was set from the minting node's
 * wall clock and `now` is the checking node's: clock skew between them stretches (or shortens) a
 * token's life by that skew, so keep node clocks in sync (NTP) for expiry to be exact.
 */
export const grantExpired = (grant: AppTokenGrant, now: number): boolean =>
  grant.expiresAt !== undefined && grant.expiresAt !== null && now >= grant.expiresAt;

/**
 * Keyed by the secret's digest (see `hashSecret`), never by the secret. The memory store serves
 * one node without Redis; a Redis store replaces it with the durable store.
 *
 * Hub secrets are indexed by hub, so a rotation or a removal reaches every secret the hub ever
 * had, including one whose registration failed half way. App tokens are indexed by token id
 * (for listing and revocation by id); a revoked token leaves a tombstone for
 * `TOKEN_RECORD_RETENTION_MS`.
 */
export interface CredentialStore {
  /** Stores a hub secret's credential and indexes it under its hub. */
  putHub(digest: string, credential: HubCredential): Promise<void>;
  /** The credential of a hub secret, or undefined when unknown, removed or past its `expiresAt`. */
  findHub(digest: string): Promise<HubCredential | undefined>;
  /**
   * The digests indexed under hub `homeId/hubId` now: a rotation reads them before it stores its
   * new secret, and retires only those (see `retireHubSecrets`).
   */
  hubSecretDigests(homeId: string, hubId: string): Promise<string[]>;
  /**
   * Ends the secrets `digests` of hub `homeId/hubId` at `until` (epoch ms; at once when not in the
   * future): from then on they no longer authenticate. A rotation passes the digests the hub had
   * when it began (`hubSecretDigests`), never "all but mine": two rotations racing then each
   * retire only what existed before both, and both new secrets work until a later rotation.
   * `also` names secrets stored before the hub index existed (the home records the hub's digest);
   * one of them that is indexed now (a racing rotation's new secret) is left alone, as are those
   * of another hub. A secret already ending earlier keeps its earlier end. Idempotent, so a failed
   * rotation can simply be retried.
   */
  retireHubSecrets(homeId: string, hubId: string, digests: readonly string[], until: number, also?: readonly string[]): Promise<void>;
  /** Deletes one secret of the hub (a registration that failed after it was stored). */
  deleteHubSecret(homeId: string, hubId: string, digest: string): Promise<void>;
  /** Deletes every secret of the hub (and `also`, as for `retireHubSecrets`); idempotent. */
  removeHub(homeId: string, hubId: string, also?: readonly string[]): Promise<void>;

  /** Stores an app token grant and indexes it by token id. */
  putToken(digest: string, grant: AppTokenGrant): Promise<void>;
  /** The grant of `digest`, expired or not (the caller tells `token_expired`), or undefined. */
  findToken(digest: string): Promise<AppTokenGrant | undefined>;
  /** The tombstone of a token revoked within the retention, or undefined. */
  findRevocation(digest: string): Promise<TokenRevocation | undefined>;
  /** The digest of the live (not revoked) token `tokenId`, or undefined. */
  tokenDigest(tokenId: string): Promise<string | undefined>;
  /** Up to `limit` tokens with ids after `after` (a token id; absent = from the start), revoked ones not. */
  listTokens(limit: number, after?: string): Promise<TokenPage>;
  /**
   * Deletes the grant of `digest` and leaves a tombstone stamped `revokedAt` (epoch ms); true when
   * there was a grant. Nodes that cached it stop honouring it within their cache's TTL.
   */
  revokeToken(digest: string, revokedAt?: number): Promise<boolean>;

  /**
   * Records that home `homeId` was deleted at `at` (epoch ms): from then on a grant created at or
   * before the latest such mark no longer covers that home (see `grantCoversHome`), so tokens of
   * a deleted home cannot reach a home later created anew under the same id. Kept without expiry:
   * a grant may never expire, and the mark is one small record per deleted home id.
   */
  markHomeDeleted(homeId: string, at: number): Promise<void>;
  /** When home `homeId` was last deleted (epoch ms), or undefined when never. */
  homeDeletedAt(homeId: string): Promise<number | undefined>;
}

/**
 * Whether a grant created at `grantCreatedAt` still covers a home last deleted at `deletedAt`
 * (both epoch ms, from node wall clocks: skew between the minting and the deleting node moves the
 * boundary by that skew). A grant made in the very millisecond of the deletion does not: the
 * boundary fails closed.
 */
export const grantCoversHome = (grantCreatedAt: number, deletedAt: number | undefined): boolean =>
  deletedAt === undefined || grantCreatedAt > deletedAt;

const hubKey = (homeId: string, hubId: string): string => `${homeId}:${hubId}`;

/** Map-backed store for a node without Redis; `clock` (epoch ms) ends rotated secrets and old records. */
export class MemoryCredentialStore implements CredentialStore {
  private readonly hubs = new Map<string, HubCredential>();
  /** Digests of each hub's secrets, by `homeId:hubId`. */
  private readonly hubSecrets = new Map<string, Set<string>>();
  private readonly tokens = new Map<string, AppTokenGrant>();
  private readonly revocations = new Map<string, TokenRevocation>();
  private readonly homesDeleted = new Map<string, number>();

  constructor(private readonly clock: () => number = Date.now) {}

  async putHub(digest: string, credential: HubCredential): Promise<void> {
    this.hubs.set(digest, { ...credential });
    const key = hubKey(credential.homeId, credential.hubId);
    const set = this.hubSecrets.get(key) ?? new Set<string>();
    set.add(digest);
    this.hubSecrets.set(key, set);
  }

  async findHub(digest: string): Promise<HubCredential | undefined> {
    const c = this.hubs.get(digest);
    if (c === undefined) return undefined;
    if (c.expiresAt !== undefined && this.clock() >= c.expiresAt) {
      this.hubs.delete(digest);
      return undefined;
    }
    return c;
  }

  async hubSecretDigests(homeId: string, hubId: string): Promise<string[]> {
    return [...(this.hubSecrets.get(hubKey(homeId, hubId)) ?? [])];
  }

  async retireHubSecrets(
    homeId: string,
    hubId: string,
    digests: readonly string[],
    until: number,
    also: readonly string[] = [],
  ): Promise<void> {
    const now = this.clock();
    const indexed = this.hubSecrets.get(hubKey(homeId, hubId)) ?? new Set<string>();
    const legacy = also.filter((d) => !indexed.has(d));
    for (const digest of new Set([...digests, ...legacy])) {
      const c = this.hubs.get(digest);
      // Gone from the store (deleted, or dropped once expired): drop it from the index too, as the
      // Redis store does, or a hub rotated often keeps a growing list of dead digests.
      if (c === undefined) indexed.delete(digest);
      if (c === undefined || c.homeId !== homeId || c.hubId !== hubId) continue;
      const end = Math.min(c.expiresAt ?? Infinity, until);
      if (end <= now) {
        this.hubs.delete(digest);
        indexed.delete(digest);
      } else this.hubs.set(digest, { ...c, expiresAt: end });
    }
  }

  async deleteHubSecret(homeId: string, hubId: string, digest: string): Promise<void> {
    const c = this.hubs.get(digest);
    if (c !== undefined && c.homeId === homeId && c.hubId === hubId) this.hubs.delete(digest);
    this.hubSecrets.get(hubKey(homeId, hubId))?.delete(digest);
  }

  async removeHub(homeId: string, hubId: string, also: readonly string[] = []): Promise<void> {
    for (const digest of this.secretsOf(homeId, hubId, also)) this.hubs.delete(digest);
    this.hubSecrets.delete(hubKey(homeId, hubId));
  }

  /** The hub's indexed digests and those of `also` that belong to it. */
  private secretsOf(homeId: string, hubId: string, also: readonly string[]): string[] {
    const own = [...(this.hubSecrets.get(hubKey(homeId, hubId)) ?? [])];
    const extra = also.filter((d) => {
      const c = this.hubs.get(d);
      return c !== undefined && c.homeId === homeId && c.hubId === hubId;
    });
    return [...new Set([...own, ...extra])];
  }

  async putToken(digest: string, grant: AppTokenGrant): Promise<void> {
    this.prune();
    this.tokens.set(digest, grant);
  }

  async findToken(digest: string): Promise<AppTokenGrant | undefined> {
    const g = this.tokens.get(digest);
    return g === undefined || this.pastRetention(g) ? undefined : g;
  }

  async findRevocation(digest: string): Promise<TokenRevocation | undefined> {
    const r = this.revocations.get(digest);
    return r === undefined || this.clock() >= r.revokedAt + TOKEN_RECORD_RETENTION_MS ? undefined : r;
  }

  async tokenDigest(tokenId: string): Promise<string | undefined> {
    for (const [digest, g] of this.tokens) if (tokenIdOf(digest) === tokenId && !this.pastRetention(g)) return digest;
    return undefined;
  }

  async listTokens(limit: number, after?: string): Promise<TokenPage> {
    const sorted = [...this.tokens]
      .filter(([digest, g]) => !this.pastRetention(g) && (after === undefined || tokenIdOf(digest) > after))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const items = sorted.slice(0, limit).map(([digest, g]) => listingOf(digest, g));
    const last = items[items.length - 1];
    return sorted.length > limit && last !== undefined ? { items, nextCursor: last.tokenId } : { items };
  }

  async revokeToken(digest: string, revokedAt: number = this.clock()): Promise<boolean> {
    this.prune();
    if (!this.tokens.delete(digest)) return false;
    this.revocations.set(digest, { revokedAt });
    return true;
  }

  async markHomeDeleted(homeId: string, at: number): Promise<void> {
    this.homesDeleted.set(homeId, at);
  }

  async homeDeletedAt(homeId: string): Promise<number | undefined> {
    return this.homesDeleted.get(homeId);
  }

  private pastRetention(g: AppTokenGrant): boolean {
    return g.expiresAt !== undefined && g.expiresAt !== null && this.clock() >= g.expiresAt + TOKEN_RECORD_RETENTION_MS;
  }

  /** Drops what Redis would have expired, so a long-running node does not keep it. */
  private prune(): void {
    const now = this.clock();
    for (const [digest, r] of this.revocations) if (now >= r.revokedAt + TOKEN_RECORD_RETENTION_MS) this.revocations.delete(digest);
    for (const [digest, g] of this.tokens) if (this.pastRetention(g)) this.tokens.delete(digest);
  }
}
