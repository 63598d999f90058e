/** Hub secrets and app tokens by digest, looked up before any actor is touched. */

/** What a hub secret lets its holder speak for. */
export interface HubCredential {
  readonly homeId: string;
  readonly hubId: string;
}

export type Scope = 'read' | 'control' | 'rules';
export const SCOPES: readonly Scope[] = ['read', 'control', 'rules'];

/** What an app token may do: which homes, which scopes. */
export interface AppTokenGrant {
  readonly homes: readonly string[];
  readonly scopes: readonly Scope[];
  /** Epoch ms. */
  readonly createdAt: number;
}

/**
 * Keyed by the secret's digest (see `hashSecret`), never by the secret. The memory store serves
 * one node without Redis; a Redis store replaces it with the durable store.
 */
export interface CredentialStore {
  putHub(digest: string, credential: HubCredential): Promise<void>;
  findHub(digest: string): Promise<HubCredential | undefined>;
  putToken(digest: string, grant: AppTokenGrant): Promise<void>;
  findToken(digest: string): Promise<AppTokenGrant | undefined>;
  /** Deletes the grant of `digest`; true when there was one. Nodes that cached it stop honouring it within their cache's TTL. */
  revokeToken(digest: string): Promise<boolean>;
}

export class MemoryCredentialStore implements CredentialStore {
  private readonly hubs = new Map<string, HubCredential>();
  private readonly tokens = new Map<string, AppTokenGrant>();

  async putHub(digest: string, credential: HubCredential): Promise<void> {
    this.hubs.set(digest, credential);
  }

  async findHub(digest: string): Promise<HubCredential | undefined> {
    return this.hubs.get(digest);
  }

  async putToken(digest: string, grant: AppTokenGrant): Promise<void> {
    this.tokens.set(digest, grant);
  }

  async findToken(digest: string): Promise<AppTokenGrant | undefined> {
    return this.tokens.get(digest);
  }

  async revokeToken(digest: string): Promise<boolean> {
    return this.tokens.delete(digest);
  }
}
