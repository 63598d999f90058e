import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryCredentialStore, type AppTokenGrant } from '../../../edge-api/auth/credential-store.ts';
import { hashSecret, newSecret } from '../../../edge-api/auth/secrets.ts';
import { TokenGrantCache } from '../../../edge-api/auth/token-grant-cache.ts';

const GRANT: AppTokenGrant = { homes: ['h1'], scopes: ['read'], createdAt: 1 };

/** A memory store that counts reads and can hold a read until released. */
function countingStore() {
  const store = new MemoryCredentialStore();
  const find = store.findToken.bind(store);
  const counts = { reads: 0 };
  let gate: Promise<void> | undefined;
  store.findToken = async (digest) => {
    counts.reads++;
    const grant = await find(digest);
    if (gate) await gate;
    return grant;
  };
  /** Holds every read until the returned function is called. */
  const hold = (): (() => void) => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    return () => {
      gate = undefined;
      release();
    };
  };
  return { store, counts, hold };
}

/** The cache's monotonic clock, moved by hand (ms). */
let now = 0;
const clock = (): number => now;

beforeEach(() => {
  now = 0;
});

async function minted(store: MemoryCredentialStore, grant: AppTokenGrant = GRANT): Promise<string> {
  const token = newSecret('app');
  await store.putToken(hashSecret(token), grant);
  return token;
}

describe('TokenGrantCache', () => {
  it('reads a hot token from the store once per TTL', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store);
    for (now = 0; now < 1_000; now += 100) {
      expect(await cache.resolve(token)).toEqual({ digest: hashSecret(token), grant: GRANT, readAt: 0 });
    }
    expect(counts.reads).toBe(1);
    now = 1_000;
    await cache.resolve(token);
    expect(counts.reads).toBe(2);
  });

  it('does not cache unknown tokens: a token stored later resolves at once', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { clock });
    const token = newSecret('app');
    expect(await cache.resolve(token)).toBeUndefined();
    expect(cache.size).toBe(0);
    await store.putToken(hashSecret(token), GRANT);
    now = 1;
    expect(await cache.resolve(token)).toMatchObject({ grant: GRANT });
    expect(counts.reads).toBe(2);
  });

  it('refuses a token revoked through it at once, and reports whether there was one', async () => {
    const { store } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 60_000, clock });
    const token = await minted(store);
    const other = await minted(store);
    expect(await cache.resolve(token)).toBeDefined();
    expect(await cache.resolve(other)).toBeDefined();
    expect(await cache.revoke(hashSecret(token))).toBe(true);
    now = 1;
    expect(await cache.resolve(token)).toBeUndefined();
    expect(await cache.resolve(other)).toMatchObject({ grant: GRANT });
    expect(await cache.revoke(hashSecret(token))).toBe(false);
  });

  it('does not keep a grant read while a revocation landed', async () => {
    const { store, hold } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 60_000, clock });
    const token = await minted(store);
    const open = hold();
    const inFlight = cache.resolve(token);
    await cache.revoke(hashSecret(token));
    open();
    // The read began before the revocation: that one request may see the grant, no later one does.
    expect(await inFlight).toMatchObject({ grant: GRANT });
    expect(cache.size).toBe(0);
    now = 1;
    expect(await cache.resolve(token)).toBeUndefined();
  });

  it('sees a revocation made elsewhere (straight in the store) once the TTL has passed', async () => {
    const { store } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store);
    await cache.resolve(token);
    await store.revokeToken(hashSecret(token));
    now = 999;
    expect(await cache.resolve(token)).toBeDefined();
    now = 1_000;
    expect(await cache.resolve(token)).toBeUndefined();
  });

  it('does not serve a grant longer than the TTL when its clock steps back', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store);
    now = 10_000;
    await cache.resolve(token);
    await store.revokeToken(hashSecret(token)); // on another node
    // Stepped back an hour: before, the entry lived until the clock caught up with it again.
    now = 10_000 - 3_600_000;
    expect(await cache.resolve(token)).toBeUndefined();
    expect(counts.reads).toBe(2);
  });

  it('keeps the TTL on a monotonic clock by default, whatever the wall clock does', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 60_000 });
    const token = await minted(store);
    const wall = vi.spyOn(Date, 'now').mockReturnValue(1_000_000);
    try {
      await cache.resolve(token);
      wall.mockReturnValue(1_000_000 - 3_600_000);
      await cache.resolve(token);
      expect(counts.reads).toBe(1);
    } finally {
      wall.mockRestore();
    }
  });

  it('tells listeners which token was revoked through it, also when the store failed', async () => {
    const { store } = countingStore();
    const cache = new TokenGrantCache(store, { clock });
    const token = await minted(store);
    const heard: string[] = [];
    const stop = cache.onRevoke((digest) => heard.push(digest));
    await cache.revoke(hashSecret(token));
    store.revokeToken = async () => {
      throw new Error('redis down');
    };
    await expect(cache.revoke('d2')).rejects.toThrow(/redis down/);
    expect(heard).toEqual([hashSecret(token), 'd2']);
    stop();
    await expect(cache.revoke('d3')).rejects.toThrow();
    expect(heard).toHaveLength(2);
  });

  it('holds at most maxEntries tokens, dropping the oldest', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { maxEntries: 3, ttlMs: 60_000, clock });
    const tokens: string[] = [];
    for (let i = 0; i < 10; i++) tokens.push(await minted(store));
    for (const t of tokens) await cache.resolve(t);
    expect(cache.size).toBe(3);
    counts.reads = 0;
    now = 1;
    for (const t of tokens.slice(-3)) await cache.resolve(t);
    expect(counts.reads).toBe(0);
    await cache.resolve(tokens[0]!);
    expect(counts.reads).toBe(1);
    expect(cache.size).toBe(3);
  });

  it('caches nothing with maxEntries 0 or ttlMs 0, and refuses bad settings', async () => {
    for (const config of [{ maxEntries: 0 }, { ttlMs: 0 }]) {
      const { store, counts } = countingStore();
      const cache = new TokenGrantCache(store, { ...config, clock });
      const token = await minted(store);
      await cache.resolve(token);
      await cache.resolve(token);
      expect(counts.reads).toBe(2);
      expect(cache.size).toBe(0);
    }
    const store = new MemoryCredentialStore();
    expect(() => new TokenGrantCache(store, { maxEntries: -1, clock })).toThrow(RangeError);
    expect(() => new TokenGrantCache(store, { ttlMs: Number.NaN, clock })).toThrow(RangeError);
  });

  it('rejects when the store cannot answer, and caches nothing', async () => {
    const store = new MemoryCredentialStore();
    store.findToken = async () => {
      throw new Error('redis down');
    };
    const cache = new TokenGrantCache(store, { clock });
    await expect(cache.resolve('app_x')).rejects.toThrow(/redis down/);
    expect(cache.size).toBe(0);
  });
});
