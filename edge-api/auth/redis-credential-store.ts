/** Hub credentials and app token grants in Redis, one JSON string per digest, written once (a grant is deleted on revocation). */
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { SCOPES, type AppTokenGrant, type CredentialStore, type HubCredential, type Scope } from './credential-store.ts';

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

function decodeHub(json: string, key: string): HubCredential {
  const x = JSON.parse(json) as Partial<Record<keyof HubCredential, unknown>>;
  if (typeof x.homeId !== 'string' || typeof x.hubId !== 'string') throw new Error(`${key} does not hold a hub credential`);
  return { homeId: x.homeId, hubId: x.hubId };
}

function decodeGrant(json: string, key: string): AppTokenGrant {
  const x = JSON.parse(json) as Partial<Record<keyof AppTokenGrant, unknown>>;
  const scopes = x.scopes;
  if (
    !isStringArray(x.homes) ||
    !isStringArray(scopes) ||
    !scopes.every((s) => SCOPES.includes(s as Scope)) ||
    typeof x.createdAt !== 'number'
  ) {
    throw new Error(`${key} does not hold an app token grant`);
  }
  return { homes: x.homes, scopes: scopes as Scope[], createdAt: x.createdAt };
}

/**
 * Keys come from `KeyLayout.hubCredential` / `appToken`. A digest is written at most once
 * (`SET NX`): putting the same value again is a no-op, a different value throws
 * `CredentialConflictError` and never replaces the stored one. Digests of 256-bit secrets do
 * not collide, so a conflict means a bug or tampering, not bad luck.
 */
export class RedisCredentialStore implements CredentialStore {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
  ) {}

  async putHub(digest: string, credential: HubCredential): Promise<void> {
    const value: HubCredential = { homeId: credential.homeId, hubId: credential.hubId };
    await this.putOnce('hub', digest, this.keys.hubCredential(digest), value, decodeHub);
  }

  async findHub(digest: string): Promise<HubCredential | undefined> {
    const key = this.keys.hubCredential(digest);
    const json = await this.client.get(key);
    return json === null ? undefined : decodeHub(json, key);
  }

  async putToken(digest: string, grant: AppTokenGrant): Promise<void> {
    const value: AppTokenGrant = { homes: [...grant.homes], scopes: [...grant.scopes], createdAt: grant.createdAt };
    await this.putOnce('token', digest, this.keys.appToken(digest), value, decodeGrant);
  }

  async findToken(digest: string): Promise<AppTokenGrant | undefined> {
    const key = this.keys.appToken(digest);
    const json = await this.client.get(key);
    return json === null ? undefined : decodeGrant(json, key);
  }

  /** DEL: a revoked digest may be written again by a later `putToken` (a new secret never has the same digest). */
  async revokeToken(digest: string): Promise<boolean> {
    return (await this.client.del(this.keys.appToken(digest))) > 0;
  }

  /** SET NX; when the key exists, succeeds only if it already holds this very value. */
  private async putOnce<T>(
    kind: 'hub' | 'token',
    digest: string,
    key: string,
    value: T,
    decode: (json: string, key: string) => T,
  ): Promise<void> {
    const json = JSON.stringify(value);
    if ((await this.client.set(key, json, 'NX')) === 'OK') return;
    const stored = await this.client.get(key);
    // Compared decoded, so a stored value with another field order still counts as the same.
    if (stored !== null && JSON.stringify(decode(stored, key)) === json) return;
    throw new CredentialConflictError(kind, digest);
  }
}
