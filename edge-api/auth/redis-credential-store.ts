/** Hub credentials and app token grants in Redis, one JSON string per digest, plus the indexes and tombstones of their lifecycle. */
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import {
  listingOf,
  SCOPES,
  TOKEN_RECORD_RETENTION_MS,
  type AppTokenGrant,
  type CredentialStore,
  type HubCredential,
  type Scope,
  type TokenListing,
  type TokenPage,
  type TokenRevocation,
} from './credential-store.ts';

/** A digest already names a different credential: the write was refused, the stored one stands. */
export class CredentialConflictError extends Error {
  override readonly name = 'CredentialConflictError';
  readonly code = 'already_exists';
  constructor(
    readonly kind: 'hub' | 'token',
    readonly digest: string,
  ) {
    super(`a different ${kind} credential is already stored for digest ${digest.slice(0, 12)}…`);
  }
}

const isStringArray = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
const isEpochMs = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function decodeHub(json: string, key: string): HubCredential {
  const x = JSON.parse(json) as Partial<Record<keyof HubCredential, unknown>>;
  if (typeof x.homeId !== 'string' || typeof x.hubId !== 'string' || (x.expiresAt !== undefined && !isEpochMs(x.expiresAt))) {
    throw new Error(`${key} does not hold a hub credential`);
  }
  return { homeId: x.homeId, hubId: x.hubId, ...(x.expiresAt === undefined ? {} : { expiresAt: x.expiresAt }) };
}

/** Grants stored before tokens could expire have no `expiresAt`: they decode as they were (never expiring). */
function decodeGrant(json: string, key: string): AppTokenGrant {
  const x = JSON.parse(json) as Partial<Record<keyof AppTokenGrant, unknown>>;
  const scopes = x.scopes;
  if (
    !isStringArray(x.homes) ||
    !isStringArray(scopes) ||
    !scopes.every((s) => SCOPES.includes(s as Scope)) ||
    typeof x.createdAt !== 'number' ||
    (x.expiresAt !== undefined && x.expiresAt !== null && !isEpochMs(x.expiresAt))
  ) {
    throw new Error(`${key} does not hold an app token grant`);
  }
  const grant = { homes: x.homes, scopes: scopes as Scope[], createdAt: x.createdAt };
  return x.expiresAt === undefined ? grant : { ...grant, expiresAt: x.expiresAt };
}

function decodeRevocation(json: string, key: string): TokenRevocation {
  const x = JSON.parse(json) as Partial<Record<keyof TokenRevocation, unknown>>;
  if (!isEpochMs(x.revokedAt)) throw new Error(`${key} does not hold a token revocation`);
  return { revokedAt: x.revokedAt };
}

/** Due entries of `tokenExpiry` that one `putToken` removes at most: bounded work per mint that outpaces expiry. */
export const TOKEN_INDEX_PRUNE_BATCH = 100;

/** Digests are 64 lower-case hex digits, so `p` + 'g' sorts after every digest that starts with `p`. */
const PAST_PREFIX = 'g';

/**
 * Keys come from `KeyLayout` (`hubCredential`, `hubSecrets`, `appToken`, `tokenIndex`,
 * `tokenExpiry`, `tokenRevocation`, `homeDeleted`). A digest is written at most once (`SET NX`): putting the same value again is
 * a no-op, a different value throws `CredentialConflictError` and never replaces the stored one.
 * Digests of 256-bit secrets do not collide, so a conflict means a bug or tampering, not bad luck.
 *
 * Every command touches one key (no MULTI, MGET or multi-key script), so the store works on Redis
 * Cluster too; multi-step changes are ordered so that a failure half way fails safe:
 * - a hub secret is stored before its index entry, so an indexed digest without a credential has
 *   expired or been deleted, never "not yet written", and pruning it cannot race a registration or
 *   a rotation; a failure in between leaves a credential whose secret was never handed out;
 * - an app token's index entry is written before its grant (an entry without a grant is pruned);
 * - a rotated-out hub secret gets a Redis expiry (`PXAT`) at the end of its grace period, and is
 *   also checked against the node's clock on lookup, so neither clock alone keeps it alive;
 * - a revocation deletes the grant before it writes the tombstone (a failure in between leaves an
 *   unknown token, refused all the same).
 * An expiring grant's key lives until `expiresAt + TOKEN_RECORD_RETENTION_MS` (it answers
 * `token_expired` meanwhile), a tombstone `TOKEN_RECORD_RETENTION_MS`.
 */
export class RedisCredentialStore implements CredentialStore {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
    /** Epoch ms: ends rotated-out hub secrets on lookup. */
    private readonly clock: () => number = Date.now,
  ) {}

  async putHub(digest: string, credential: HubCredential): Promise<void> {
    const value: HubCredential = {
      homeId: credential.homeId,
      hubId: credential.hubId,
      ...(credential.expiresAt === undefined ? {} : { expiresAt: credential.expiresAt }),
    };
    await this.putOnce('hub', digest, this.keys.hubCredential(digest), value, decodeHub, value.expiresAt);
    await this.client.sadd(this.keys.hubSecrets(value.homeId, value.hubId), digest);
  }

  async findHub(digest: string): Promise<HubCredential | undefined> {
    const key = this.keys.hubCredential(digest);
    const json = await this.client.get(key);
    if (json === null) return undefined;
    const c = decodeHub(json, key);
    // The node's wall clock ends a rotated-out secret (Redis's PXAT also does, on Redis's clock):
    // a node whose clock runs behind honours the old secret for as much longer as it lags.
    return c.expiresAt !== undefined && this.clock() >= c.expiresAt ? undefined : c;
  }

  async hubSecretDigests(homeId: string, hubId: string): Promise<string[]> {
    return this.client.smembers(this.keys.hubSecrets(homeId, hubId));
  }

  async retireHubSecrets(
    homeId: string,
    hubId: string,
    digests: readonly string[],
    until: number,
    also: readonly string[] = [],
  ): Promise<void> {
    const now = this.clock();
    const indexKey = this.keys.hubSecrets(homeId, hubId);
    const indexed = also.length === 0 ? new Set<string>() : new Set(await this.client.smembers(indexKey));
    const legacy = also.filter((d) => !indexed.has(d));
    await Promise.all(
      (await this.secretsOf(homeId, hubId, [...new Set([...digests, ...legacy])])).map(async ({ digest, credential }) => {
        const key = this.keys.hubCredential(digest);
        const end = Math.min(credential.expiresAt ?? Infinity, until);
        if (end <= now) {
          await this.client.del(key);
          await this.client.srem(this.keys.hubSecrets(homeId, hubId), digest);
        } else if (end !== credential.expiresAt) {
          // XX: a secret removed meanwhile stays removed.
          await this.client.set(key, JSON.stringify({ homeId, hubId, expiresAt: end }), 'PXAT', end, 'XX');
        }
      }),
    );
  }

  async deleteHubSecret(homeId: string, hubId: string, digest: string): Promise<void> {
    const key = this.keys.hubCredential(digest);
    const json = await this.client.get(key);
    if (json !== null) {
      const c = decodeHub(json, key);
      if (c.homeId === homeId && c.hubId === hubId) await this.client.del(key);
    }
    await this.client.srem(this.keys.hubSecrets(homeId, hubId), digest);
  }

  async removeHub(homeId: string, hubId: string, also: readonly string[] = []): Promise<void> {
    const indexed = await this.client.smembers(this.keys.hubSecrets(homeId, hubId));
    const secrets = await this.secretsOf(homeId, hubId, [...new Set([...indexed, ...also])]);
    await Promise.all(secrets.map(({ digest }) => this.client.del(this.keys.hubCredential(digest))));
    await this.client.del(this.keys.hubSecrets(homeId, hubId));
  }

  /**
   * Those of `digests` stored for this very hub (a racing registration may have indexed a digest
   * that another hub won). Index entries whose credential is gone (expired, deleted) are pruned:
   * a credential is stored before its entry, so a missing one is not one still being written.
   */
  private async secretsOf(
    homeId: string,
    hubId: string,
    digests: readonly string[],
  ): Promise<{ digest: string; credential: HubCredential }[]> {
    const indexKey = this.keys.hubSecrets(homeId, hubId);
    const found = await Promise.all(
      digests.map(async (digest) => {
        const key = this.keys.hubCredential(digest);
        const json = await this.client.get(key);
        return { digest, credential: json === null ? undefined : decodeHub(json, key) };
      }),
    );
    const gone = found.filter((f) => f.credential === undefined).map((f) => f.digest);
    if (gone.length > 0) await this.client.srem(indexKey, ...gone);
    return found.flatMap(({ digest, credential }) =>
      credential !== undefined && credential.homeId === homeId && credential.hubId === hubId ? [{ digest, credential }] : [],
    );
  }

  async putToken(digest: string, grant: AppTokenGrant): Promise<void> {
    const value: AppTokenGrant = {
      homes: [...grant.homes],
      scopes: [...grant.scopes],
      createdAt: grant.createdAt,
      ...(grant.expiresAt === undefined ? {} : { expiresAt: grant.expiresAt }),
    };
    const keepUntil = value.expiresAt === undefined || value.expiresAt === null ? undefined : value.expiresAt + TOKEN_RECORD_RETENTION_MS;
    await this.pruneTokenIndex();
    // The expiry entry first: an index entry never outlives it, so every expiring token's entry
    // is eventually pruned here.
    if (keepUntil !== undefined) await this.client.zadd(this.keys.tokenExpiry(), keepUntil, digest);
    await this.client.zadd(this.keys.tokenIndex(), 0, digest);
    await this.putOnce('token', digest, this.keys.appToken(digest), value, decodeGrant, keepUntil);
  }

  /**
   * Removes up to `TOKEN_INDEX_PRUNE_BATCH` tokens whose grant has expired past the retention
   * (by this node's clock; Redis expires the grant key itself) from `tokenExpiry` and
   * `tokenIndex`, so the index holds live tokens and not every token ever minted. Each mint does
   * this, so the index shrinks at least as fast as it grows.
   */
  private async pruneTokenIndex(): Promise<void> {
    const due = await this.client.zrangebyscore(this.keys.tokenExpiry(), '-inf', this.clock(), 'LIMIT', 0, TOKEN_INDEX_PRUNE_BATCH);
    if (due.length === 0) return;
    await this.client.zrem(this.keys.tokenIndex(), ...due);
    await this.client.zrem(this.keys.tokenExpiry(), ...due);
  }

  async findToken(digest: string): Promise<AppTokenGrant | undefined> {
    const key = this.keys.appToken(digest);
    const json = await this.client.get(key);
    if (json === null) return undefined;
    const grant = decodeGrant(json, key);
    // A grant minted before the token index existed joins it when first used, so it can be listed
    // and revoked by id from then on (a no-op write for every other grant is not paid).
    if (grant.expiresAt === undefined) await this.client.zadd(this.keys.tokenIndex(), 'NX', 0, digest);
    return grant;
  }

  async findRevocation(digest: string): Promise<TokenRevocation | undefined> {
    const key = this.keys.tokenRevocation(digest);
    const json = await this.client.get(key);
    return json === null ? undefined : decodeRevocation(json, key);
  }

  async tokenDigest(tokenId: string): Promise<string | undefined> {
    const prefix = tokenId.slice('tok_'.length);
    const digests = await this.client.zrangebylex(this.keys.tokenIndex(), `[${prefix}`, `(${prefix}${PAST_PREFIX}`, 'LIMIT', 0, 2);
    // Two digests sharing 96 bits is not bad luck: refuse to guess which one is meant.
    if (digests.length !== 1) return undefined;
    const digest = digests[0]!;
    return (await this.client.exists(this.keys.appToken(digest))) === 1 ? digest : undefined;
  }

  async listTokens(limit: number, after?: string): Promise<TokenPage> {
    const items: TokenListing[] = [];
    let min = after === undefined ? '-' : `(${after.slice('tok_'.length)}${PAST_PREFIX}`;
    let more = false;
    // Index entries whose grant is gone (expired past retention, or a revocation that failed half
    // way) are pruned as they are met, so a page may need more than one read.
    for (;;) {
      const want = limit + 1 - items.length;
      const digests = await this.client.zrangebylex(this.keys.tokenIndex(), min, '+', 'LIMIT', 0, want);
      const grants = await Promise.all(digests.map((d) => this.client.get(this.keys.appToken(d))));
      const gone: string[] = [];
      digests.forEach((digest, i) => {
        const json = grants[i];
        if (json === null || json === undefined) gone.push(digest);
        else items.push(listingOf(digest, decodeGrant(json, this.keys.appToken(digest))));
      });
      if (gone.length > 0) await this.client.zrem(this.keys.tokenIndex(), ...gone);
      if (items.length > limit) {
        items.length = limit;
        more = true;
        break;
      }
      if (digests.length < want) break;
      min = `(${digests[digests.length - 1]!}`;
    }
    const last = items[items.length - 1];
    return more && last !== undefined ? { items, nextCursor: last.tokenId } : { items };
  }

  async revokeToken(digest: string, revokedAt: number = this.clock()): Promise<boolean> {
    if ((await this.client.del(this.keys.appToken(digest))) === 0) return false;
    await this.client.set(this.keys.tokenRevocation(digest), JSON.stringify({ revokedAt }), 'PX', TOKEN_RECORD_RETENTION_MS);
    await this.client.zrem(this.keys.tokenIndex(), digest);
    await this.client.zrem(this.keys.tokenExpiry(), digest);
    return true;
  }

  async markHomeDeleted(homeId: string, at: number): Promise<void> {
    // No TTL: a grant may never expire, so the mark must outlive every grant made before it.
    await this.client.set(this.keys.homeDeleted(homeId), String(at));
  }

  async homeDeletedAt(homeId: string): Promise<number | undefined> {
    const key = this.keys.homeDeleted(homeId);
    const value = await this.client.get(key);
    if (value === null) return undefined;
    const at = Number(value);
    if (!isEpochMs(at) || String(at) !== value) throw new Error(`${key} does not hold an epoch ms`);
    return at;
  }

  /** SET NX (with `PXAT expireAt` when given); when the key exists, succeeds only if it already holds this very value. */
  private async putOnce<T>(
    kind: 'hub' | 'token',
    digest: string,
    key: string,
    value: T,
    decode: (json: string, key: string) => T,
    expireAt: number | undefined,
  ): Promise<void> {
    const json = JSON.stringify(value);
    const set = expireAt === undefined ? await this.client.set(key, json, 'NX') : await this.client.set(key, json, 'PXAT', expireAt, 'NX');
    if (set === 'OK') return;
    const stored = await this.client.get(key);
    // Compared decoded, so a stored value with another field order still counts as the same.
    if (stored !== null && JSON.stringify(decode(stored, key)) === json) return;
    throw new CredentialConflictError(kind, digest);
  }
}
