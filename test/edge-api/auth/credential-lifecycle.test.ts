/** The credential lifecycle of both stores (memory and Redis): hub secret rotation and removal, token expiry, listing and revocation. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemoryCredentialStore,
  TOKEN_RECORD_RETENTION_MS,
  type AppTokenGrant,
  type CredentialStore,
} from '../../../edge-api/auth/credential-store.ts';
import { RedisCredentialStore, TOKEN_INDEX_PRUNE_BATCH } from '../../../edge-api/auth/redis-credential-store.ts';
import { hashSecret, newSecret, tokenIdOf } from '../../../edge-api/auth/secrets.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { RedisClients } from '../../support/redis-node.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let suite = 0;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/**
 * A store and a clock it reads. The clock starts at the real time and only moves forward, so a
 * Redis expiry (`PXAT`, on Redis's own clock) never ends a secret before the store's clock does.
 */
interface Opened {
  readonly store: CredentialStore;
  readonly advance: (ms: number) => void;
  readonly now: () => number;
}

const kinds: [string, () => Promise<Opened>][] = [
  [
    'MemoryCredentialStore',
    async () => {
      let now = Date.now();
      return { store: new MemoryCredentialStore(() => now), advance: (ms) => (now += ms), now: () => now };
    },
  ],
  [
    'RedisCredentialStore',
    async () => {
      let now = Date.now();
      const client = await clients.connect();
      const store = new RedisCredentialStore(client, new KeyLayout(`${redis.cluster}l${suite++}`), () => now);
      return { store, advance: (ms) => (now += ms), now: () => now };
    },
  ],
];

const digest = (): string => hashSecret(newSecret('x'));
const grant = (over: Partial<AppTokenGrant> = {}): AppTokenGrant => ({
  homes: ['h1'],
  scopes: ['read'],
  createdAt: 1,
  expiresAt: null,
  ...over,
});

describe.each(kinds)('%s: credential lifecycle', (_name, open) => {
  it('rotates a hub secret: the new one works, the old ones until the grace period ends', async () => {
    const { store, advance, now } = await open();
    const [first, second, next] = [digest(), digest(), digest()];
    await store.putHub(first, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(second, { homeId: 'h1', hubId: 'hub1' });
    const other = digest();
    await store.putHub(other, { homeId: 'h1', hubId: 'hub2' });
    const before = await store.hubSecretDigests('h1', 'hub1');
    expect(before.sort()).toEqual([first, second].sort());
    await store.putHub(next, { homeId: 'h1', hubId: 'hub1' });
    const until = now() + 60_000;
    // `other` is not hub1's: named by mistake, it is left alone.
    await store.retireHubSecrets('h1', 'hub1', [...before, other], until);
    expect(await store.findHub(first)).toEqual({ homeId: 'h1', hubId: 'hub1', expiresAt: until });
    expect(await store.findHub(next)).toEqual({ homeId: 'h1', hubId: 'hub1' });
    // A later rotation with a longer grace does not stretch an end already set.
    await store.retireHubSecrets('h1', 'hub1', before, until + 60_000);
    expect(await store.findHub(second)).toMatchObject({ expiresAt: until });
    advance(59_999);
    expect(await store.findHub(second)).toBeDefined();
    advance(1);
    expect(await store.findHub(first)).toBeUndefined();
    expect(await store.findHub(second)).toBeUndefined();
    expect(await store.findHub(next)).toEqual({ homeId: 'h1', hubId: 'hub1' });
    expect(await store.findHub(other)).toEqual({ homeId: 'h1', hubId: 'hub2' }); // another hub's secret is untouched
  });

  it('retires the old secrets at once without a grace period, and secrets named by the home that predate the index', async () => {
    const { store, now } = await open();
    const [old, next, legacyOfOtherHub] = [digest(), digest(), digest()];
    await store.putHub(old, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(legacyOfOtherHub, { homeId: 'h1', hubId: 'hub2' });
    const before = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(next, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', before, now(), [legacyOfOtherHub]);
    expect(await store.findHub(old)).toBeUndefined();
    expect(await store.findHub(next)).toBeDefined();
    expect(await store.findHub(legacyOfOtherHub)).toEqual({ homeId: 'h1', hubId: 'hub2' });
    // Retrying is harmless.
    await store.retireHubSecrets('h1', 'hub1', before, now());
    expect(await store.findHub(next)).toBeDefined();
  });

  it('keeps both new secrets of two racing rotations, and at least the newer one when one began after the other stored its own', async () => {
    const { store, now } = await open();
    const [old, a, b] = [digest(), digest(), digest()];
    await store.putHub(old, { homeId: 'h1', hubId: 'hub1' });
    // Both read what to retire before either stores its new secret; the home names the other's
    // new secret as the previous one (it recorded that rotation first): indexed, so left alone.
    const beforeA = await store.hubSecretDigests('h1', 'hub1');
    const beforeB = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(a, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(b, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', beforeA, now(), [b]);
    await store.retireHubSecrets('h1', 'hub1', beforeB, now(), [a]);
    expect(await store.findHub(old)).toBeUndefined();
    expect(await store.findHub(a)).toBeDefined();
    expect(await store.findHub(b)).toBeDefined();
    // A later rotation retires both.
    const c = digest();
    const beforeC = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(c, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', beforeC, now());
    expect(await store.findHub(a)).toBeUndefined();
    expect(await store.findHub(b)).toBeUndefined();
    expect(await store.findHub(c)).toBeDefined();
    // D begins after E stored its secret: D's own survives E's retirement; D retires E's (the
    // rotation that began last wins), and the hub always keeps a working secret.
    const [d, e] = [digest(), digest()];
    const beforeE = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(e, { homeId: 'h1', hubId: 'hub1' });
    const beforeD = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(d, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', beforeD, now());
    await store.retireHubSecrets('h1', 'hub1', beforeE, now());
    expect(await store.findHub(c)).toBeUndefined();
    expect(await store.findHub(e)).toBeUndefined();
    expect(await store.findHub(d)).toBeDefined();
  });

  it('records when a home was deleted, the latest deletion standing', async () => {
    const { store, now } = await open();
    expect(await store.homeDeletedAt('h1')).toBeUndefined();
    await store.markHomeDeleted('h1', now());
    expect(await store.homeDeletedAt('h1')).toBe(now());
    await store.markHomeDeleted('h1', now() + 5);
    expect(await store.homeDeletedAt('h1')).toBe(now() + 5);
    expect(await store.homeDeletedAt('h2')).toBeUndefined();
  });

  it('removes every secret of a hub, and one secret of a failed registration only when it is that hub’s', async () => {
    const { store } = await open();
    const [a, b, c, d] = [digest(), digest(), digest(), digest()];
    await store.putHub(a, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(b, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(c, { homeId: 'h1', hubId: 'hub2' });
    await store.putHub(d, { homeId: 'h1', hubId: 'hub3' });
    await store.deleteHubSecret('h1', 'hub1', c); // not hub1's: left alone
    expect(await store.findHub(c)).toBeDefined();
    await store.deleteHubSecret('h1', 'hub3', d);
    expect(await store.findHub(d)).toBeUndefined();
    await store.removeHub('h1', 'hub1');
    expect(await store.findHub(a)).toBeUndefined();
    expect(await store.findHub(b)).toBeUndefined();
    expect(await store.findHub(c)).toBeDefined();
    await store.removeHub('h1', 'hub1'); // idempotent
    await store.removeHub('h1', 'hub2', [c]);
    expect(await store.findHub(c)).toBeUndefined();
  });

  it('keeps a token’s expiry, lists tokens by id without secrets, page by page, and finds one by id', async () => {
    const { store, now } = await open();
    const expiresAt = now() + 5_000;
    const digests = Array.from({ length: 5 }, digest);
    for (const [i, d] of digests.entries()) await store.putToken(d, grant({ createdAt: i, expiresAt: i === 0 ? expiresAt : null }));
    expect(await store.findToken(digests[0]!)).toEqual(grant({ createdAt: 0, expiresAt }));
    const ids = digests.map(tokenIdOf).sort();
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 5; pages++) {
      const page = await store.listTokens(2, cursor);
      seen.push(...page.items.map((t) => t.tokenId));
      for (const t of page.items) expect(Object.keys(t).sort()).toEqual(['createdAt', 'expiresAt', 'homes', 'scopes', 'tokenId']);
      cursor = page.nextCursor;
      if (cursor === undefined) break;
      expect(page.items).toHaveLength(2);
    }
    expect(seen).toEqual(ids);
    const first = (await store.listTokens(5)).items.find((t) => t.tokenId === tokenIdOf(digests[0]!));
    expect(first).toEqual({ tokenId: tokenIdOf(digests[0]!), homes: ['h1'], scopes: ['read'], createdAt: 0, expiresAt });
    expect(await store.tokenDigest(tokenIdOf(digests[3]!))).toBe(digests[3]);
    expect(await store.tokenDigest(`tok_${'0'.repeat(24)}`)).toBeUndefined();
  });

  it('revokes a token: its grant goes, a tombstone says when, it is neither listed nor found by id', async () => {
    const { store, now } = await open();
    const revokedAt = now();
    const [d, kept] = [digest(), digest()];
    await store.putToken(d, grant());
    await store.putToken(kept, grant());
    expect(await store.findRevocation(d)).toBeUndefined();
    expect(await store.revokeToken(d, revokedAt)).toBe(true);
    expect(await store.findToken(d)).toBeUndefined();
    expect(await store.findRevocation(d)).toEqual({ revokedAt });
    expect(await store.tokenDigest(tokenIdOf(d))).toBeUndefined();
    expect((await store.listTokens(10)).items.map((t) => t.tokenId)).toEqual([tokenIdOf(kept)]);
    expect(await store.revokeToken(d)).toBe(false);
    expect(await store.findRevocation(d)).toEqual({ revokedAt }); // a second try keeps the first time
  });
});

describe('MemoryCredentialStore: retention', () => {
  it('drops from a hub’s index a secret that expired and was forgotten on lookup, at the next rotation', async () => {
    let now = 1_000;
    const store = new MemoryCredentialStore(() => now);
    const [a, b, c] = [digest(), digest(), digest()];
    await store.putHub(a, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(b, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', [a], now + 1_000);
    now += 2_000;
    expect(await store.findHub(a)).toBeUndefined(); // forgotten on lookup
    const before = await store.hubSecretDigests('h1', 'hub1');
    await store.putHub(c, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', before, now + 60_000);
    expect((await store.hubSecretDigests('h1', 'hub1')).sort()).toEqual([b, c].sort());
  });

  it('forgets tombstones and expired grants after the retention, as Redis expires them', async () => {
    let now = 1_000;
    const store = new MemoryCredentialStore(() => now);
    const [revoked, expiring] = [digest(), digest()];
    await store.putToken(revoked, grant());
    await store.putToken(expiring, grant({ expiresAt: 2_000 }));
    await store.revokeToken(revoked);
    now = 2_000 + TOKEN_RECORD_RETENTION_MS - 1;
    expect(await store.findToken(expiring)).toBeDefined();
    now = 1_000 + TOKEN_RECORD_RETENTION_MS;
    expect(await store.findRevocation(revoked)).toBeUndefined();
    now = 2_000 + TOKEN_RECORD_RETENTION_MS;
    expect(await store.findToken(expiring)).toBeUndefined();
    expect((await store.listTokens(10)).items).toEqual([]);
  });
});

describe('RedisCredentialStore: keys and expiry in Redis', () => {
  async function openRedis(): Promise<{ store: RedisCredentialStore; client: RedisClient; keys: KeyLayout }> {
    const client = await clients.connect();
    const keys = new KeyLayout(`${redis.cluster}r${suite++}`);
    return { store: new RedisCredentialStore(client, keys), client, keys };
  }

  it('gives tombstones, expiring grants and retired hub secrets a Redis TTL, so none piles up', async () => {
    const { store, client, keys } = await openRedis();
    const [revoked, expiring, forever, oldHub, newHub] = [digest(), digest(), digest(), digest(), digest()];
    const expiresAt = Date.now() + 60_000;
    await store.putToken(revoked, grant());
    await store.putToken(expiring, grant({ expiresAt }));
    await store.putToken(forever, grant());
    await store.revokeToken(revoked);
    const pttl = (key: string) => client.pttl(key);
    expect(await pttl(keys.tokenRevocation(revoked))).toBeGreaterThan(TOKEN_RECORD_RETENTION_MS - 60_000);
    const expiringTtl = await pttl(keys.appToken(expiring));
    expect(expiringTtl).toBeGreaterThan(TOKEN_RECORD_RETENTION_MS);
    expect(expiringTtl).toBeLessThanOrEqual(TOKEN_RECORD_RETENTION_MS + 60_000);
    expect(await pttl(keys.appToken(forever))).toBe(-1);
    await store.putHub(oldHub, { homeId: 'h1', hubId: 'hub1' });
    await store.putHub(newHub, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', [oldHub], Date.now() + 30_000);
    expect(await pttl(keys.hubCredential(oldHub))).toBeGreaterThan(20_000);
    expect(await pttl(keys.hubCredential(newHub))).toBe(-1);
  });

  it('decodes grants stored before expiry and ids existed, and lists them once they are used', async () => {
    const { store, client, keys } = await openRedis();
    const d = digest();
    await client.set(keys.appToken(d), JSON.stringify({ homes: ['h1'], scopes: ['read'], createdAt: 7 }));
    expect((await store.listTokens(10)).items).toEqual([]);
    expect(await store.findToken(d)).toEqual({ homes: ['h1'], scopes: ['read'], createdAt: 7 });
    expect((await store.listTokens(10)).items).toEqual([
      { tokenId: tokenIdOf(d), homes: ['h1'], scopes: ['read'], createdAt: 7, expiresAt: null },
    ]);
    expect(await store.tokenDigest(tokenIdOf(d))).toBe(d);
    // A hub credential from before rotation decodes too.
    const hub = digest();
    await client.set(keys.hubCredential(hub), JSON.stringify({ homeId: 'h1', hubId: 'hub1' }));
    expect(await store.findHub(hub)).toEqual({ homeId: 'h1', hubId: 'hub1' });
  });

  it('prunes index entries whose grant is gone while filling a page', async () => {
    const { store, client, keys } = await openRedis();
    const digests = Array.from({ length: 4 }, digest).sort();
    for (const d of digests) await store.putToken(d, grant());
    await client.del(keys.appToken(digests[0]!), keys.appToken(digests[1]!)); // e.g. expired past retention
    const page = await store.listTokens(1);
    expect(page.items.map((t) => t.tokenId)).toEqual([tokenIdOf(digests[2]!)]);
    expect(page.nextCursor).toBe(tokenIdOf(digests[2]!));
    expect(await client.zcard(keys.tokenIndex())).toBe(2);
  });

  it('retires a secret of the hub stored before its index existed, named by the home', async () => {
    const { store, client, keys } = await openRedis();
    const [legacy, next] = [digest(), digest()];
    await client.set(keys.hubCredential(legacy), JSON.stringify({ homeId: 'h1', hubId: 'hub1' }));
    const before = await store.hubSecretDigests('h1', 'hub1');
    expect(before).toEqual([]);
    await store.putHub(next, { homeId: 'h1', hubId: 'hub1' });
    await store.retireHubSecrets('h1', 'hub1', before, Date.now(), [legacy]);
    expect(await store.findHub(legacy)).toBeUndefined();
    expect(await store.findHub(next)).toBeDefined();
  });

  it('indexes a hub secret only once it is stored, so a racing prune never drops one being written', async () => {
    const { client, keys } = await openRedis();
    const calls: string[] = [];
    // Records which commands the store sends, in order.
    const recording = new Proxy(client, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(prop));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const store = new RedisCredentialStore(recording, keys);
    await store.putHub(digest(), { homeId: 'h1', hubId: 'hub1' });
    expect(calls).toEqual(['set', 'sadd']);
  });

  it('removes index entries of tokens expired past the retention as new tokens are minted, a bounded batch at a time', async () => {
    let now = Date.now();
    const client = await clients.connect();
    const keys = new KeyLayout(`${redis.cluster}r${suite++}`);
    const store = new RedisCredentialStore(client, keys, () => now);
    const expiring = Array.from({ length: TOKEN_INDEX_PRUNE_BATCH + 5 }, digest);
    for (const d of expiring) await store.putToken(d, grant({ expiresAt: now + 1_000 }));
    const [forever, revoked] = [digest(), digest()];
    await store.putToken(forever, grant());
    await store.putToken(revoked, grant({ expiresAt: now + 60_000 }));
    await store.revokeToken(revoked);
    expect(await client.zcard(keys.tokenExpiry())).toBe(expiring.length);
    now += 1_000 + TOKEN_RECORD_RETENTION_MS - 1;
    await store.putToken(digest(), grant());
    expect(await client.zcard(keys.tokenIndex())).toBe(expiring.length + 2); // none due yet
    now += 1;
    await store.putToken(digest(), grant());
    expect(await client.zcard(keys.tokenIndex())).toBe(5 + 3);
    await store.putToken(digest(), grant());
    expect(await client.zcard(keys.tokenIndex())).toBe(4);
    expect(await client.zcard(keys.tokenExpiry())).toBe(0);
    expect(await store.tokenDigest(tokenIdOf(forever))).toBe(forever);
  });

  it('keeps a home deletion mark without expiry, and refuses one that is not an epoch ms', async () => {
    const { store, client, keys } = await openRedis();
    await store.markHomeDeleted('h1', 1_800_000_000_000);
    expect(await client.pttl(keys.homeDeleted('h1'))).toBe(-1);
    expect(await client.get(keys.homeDeleted('h1'))).toBe('1800000000000');
    await client.set(keys.homeDeleted('h2'), 'yesterday');
    await expect(store.homeDeletedAt('h2')).rejects.toThrow(/epoch ms/);
  });

  it('refuses a stored expiry that is not an epoch ms', async () => {
    const { store, client, keys } = await openRedis();
    const d = digest();
    await client.set(keys.appToken(d), JSON.stringify({ homes: ['h1'], scopes: ['read'], createdAt: 7, expiresAt: 'soon' }));
    await expect(store.findToken(d)).rejects.toThrow(/app token grant/);
    await client.set(keys.hubCredential(d), JSON.stringify({ homeId: 'h1', hubId: 'hub1', expiresAt: -1 }));
    await expect(store.findHub(d)).rejects.toThrow(/hub credential/);
  });
});
