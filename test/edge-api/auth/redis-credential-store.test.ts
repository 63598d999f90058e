import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppTokenGrant } from '../../../edge-api/auth/credential-store.ts';
import { CredentialConflictError, RedisCredentialStore } from '../../../edge-api/auth/redis-credential-store.ts';
import { hashSecret, newSecret } from '../../../edge-api/auth/secrets.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let suite = 0;

/** A store over a fresh connection and a cluster name of its own (unless one is given). */
async function open(cluster = `${redis.cluster}c${suite++}`) {
  const client = await clients.connect();
  const keys = new KeyLayout(cluster);
  return { client, keys, store: new RedisCredentialStore(client, keys) };
}

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

describe('RedisCredentialStore', () => {
  it('round-trips hub credentials and app token grants by digest', async () => {
    const { store } = await open();
    const hub = hashSecret(newSecret('hub'));
    const app = hashSecret(newSecret('app'));
    const grant: AppTokenGrant = { homes: ['h1', 'h2'], scopes: ['read', 'control'], createdAt: 1_700_000_000_000 };
    await store.putHub(hub, { homeId: 'h1', hubId: 'hub-1' });
    await store.putToken(app, grant);
    expect(await store.findHub(hub)).toEqual({ homeId: 'h1', hubId: 'hub-1' });
    expect(await store.findToken(app)).toEqual(grant);
    // Hub and token digests live in separate key spaces.
    expect(await store.findToken(hub)).toBeUndefined();
    expect(await store.findHub(app)).toBeUndefined();
  });

  it('answers undefined for an unknown digest', async () => {
    const { store } = await open();
    expect(await store.findHub(hashSecret('never-issued'))).toBeUndefined();
    expect(await store.findToken(hashSecret('never-issued'))).toBeUndefined();
  });

  it('revokes an app token grant for every client, and says whether there was one', async () => {
    const first = await open();
    const second = await open(first.keys.cluster);
    const token = hashSecret(newSecret('app'));
    const hub = hashSecret(newSecret('hub'));
    await first.store.putToken(token, { homes: ['h1'], scopes: ['read'], createdAt: 1 });
    await first.store.putHub(hub, { homeId: 'h1', hubId: 'hub-1' });
    expect(await first.store.revokeToken(token)).toBe(true);
    expect(await second.store.findToken(token)).toBeUndefined();
    expect(await second.store.revokeToken(token)).toBe(false);
    expect(await first.store.revokeToken(hub)).toBe(false); // a hub digest is not a token
    expect(await second.store.findHub(hub)).toEqual({ homeId: 'h1', hubId: 'hub-1' });
  });

  it('keeps credentials across a new client connection', async () => {
    const first = await open();
    const digest = hashSecret(newSecret('hub'));
    const token = hashSecret(newSecret('app'));
    await first.store.putHub(digest, { homeId: 'h7', hubId: 'hub-9' });
    await first.store.putToken(token, { homes: ['h7'], scopes: ['rules'], createdAt: 5 });
    await first.client.quit();
    const second = await open(first.keys.cluster);
    expect(await second.store.findHub(digest)).toEqual({ homeId: 'h7', hubId: 'hub-9' });
    expect(await second.store.findToken(token)).toEqual({ homes: ['h7'], scopes: ['rules'], createdAt: 5 });
  });

  it('refuses to overwrite a digest with a different credential and keeps the first', async () => {
    const { store } = await open();
    const digest = hashSecret(newSecret('hub'));
    await store.putHub(digest, { homeId: 'h1', hubId: 'hub-1' });
    await store.putHub(digest, { homeId: 'h1', hubId: 'hub-1' }); // the same value again is fine
    const conflict = store.putHub(digest, { homeId: 'h2', hubId: 'hub-2' });
    await expect(conflict).rejects.toBeInstanceOf(CredentialConflictError);
    await expect(conflict).rejects.toMatchObject({ code: 'already_exists', kind: 'hub' });
    expect(await store.findHub(digest)).toEqual({ homeId: 'h1', hubId: 'hub-1' });

    const token = hashSecret(newSecret('app'));
    await store.putToken(token, { homes: ['h1'], scopes: ['read'], createdAt: 1 });
    await expect(store.putToken(token, { homes: ['h1', 'h2'], scopes: ['read'], createdAt: 1 })).rejects.toBeInstanceOf(
      CredentialConflictError,
    );
    expect(await store.findToken(token)).toEqual({ homes: ['h1'], scopes: ['read'], createdAt: 1 });
  });

  it('lets exactly one of two racing writers claim a digest', async () => {
    const a = await open();
    const b = await open(a.keys.cluster);
    const digest = hashSecret(newSecret('hub'));
    const results = await Promise.allSettled([
      a.store.putHub(digest, { homeId: 'h1', hubId: 'hub-a' }),
      b.store.putHub(digest, { homeId: 'h1', hubId: 'hub-b' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = results[0].status === 'fulfilled' ? 'hub-a' : 'hub-b';
    expect(await a.store.findHub(digest)).toEqual({ homeId: 'h1', hubId: winner });
  });

  it('stores credentials under keys that carry the cluster name, never the secret', async () => {
    const { store, client, keys } = await open();
    const secret = newSecret('hub');
    await store.putHub(hashSecret(secret), { homeId: 'h1', hubId: 'hub-1' });
    const stored = await client.keys(`${keys.cluster}:*`);
    // The credential, and the index of the hub's secrets (for rotation and removal).
    expect(stored.sort()).toEqual([keys.hubCredential(hashSecret(secret)), keys.hubSecrets('h1', 'hub-1')].sort());
    expect(stored.join(' ')).not.toContain(secret);
    expect(await client.get(keys.hubCredential(hashSecret(secret)))).not.toContain(secret);
    expect(await client.smembers(keys.hubSecrets('h1', 'hub-1'))).toEqual([hashSecret(secret)]);
  });

  it('rejects a stored value that is not a credential instead of trusting it', async () => {
    const { store, client, keys } = await open();
    const digest = hashSecret('tampered');
    await client.set(keys.appToken(digest), JSON.stringify({ homes: ['h1'], scopes: ['admin'], createdAt: 1 }));
    await expect(store.findToken(digest)).rejects.toThrow(/app token grant/);
  });
});
