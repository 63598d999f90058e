import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryCredentialStore, type AppTokenGrant } from '../../../edge-api/auth/credential-store.ts';
import { hashSecret, newSecret } from '../../../edge-api/auth/secrets.ts';
import { defaultTokenGrantCache, TokenGrantCache } from '../../../edge-api/auth/token-grant-cache.ts';

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

  it('keeps unknown tokens apart from grants: a token stored later (outside it) resolves once missTtlMs has passed', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { clock, missTtlMs: 500 });
    const token = newSecret('app');
    expect(await cache.resolve(token)).toBeUndefined();
    expect(cache.size).toBe(0);
    await store.putToken(hashSecret(token), GRANT);
    now = 499;
    expect(await cache.resolve(token)).toBeUndefined();
    now = 500;
    expect(await cache.resolve(token)).toMatchObject({ grant: GRANT });
    expect(counts.reads).toBe(2);
  });

  it('answers a flood of one unknown token with one token read and one tombstone read per missTtlMs', async () => {
    const { store, counts } = countingStore();
    const tombstones = vi.spyOn(store, 'findRevocation');
    const cache = new TokenGrantCache(store, { clock, missTtlMs: 500 });
    const junk = newSecret('app');
    for (now = 0; now < 500; now += 50) {
      expect(await cache.resolve(junk)).toBeUndefined();
      expect(await cache.revocation(hashSecret(junk))).toBeUndefined();
    }
    expect([counts.reads, tombstones.mock.calls.length]).toEqual([1, 1]);
    now = 500;
    await cache.resolve(junk);
    await cache.revocation(hashSecret(junk));
    expect([counts.reads, tombstones.mock.calls.length]).toEqual([2, 2]);
    expect(cache.size).toBe(0);
  });

  it('remembers a revoked token as revoked, and at most maxMisses unknown tokens, dropping the oldest', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { clock, maxMisses: 2 });
    const revoked = await minted(store);
    await store.revokeToken(hashSecret(revoked));
    expect(await cache.resolve(revoked)).toBeUndefined();
    expect(await cache.revocation(hashSecret(revoked))).toEqual({ revokedAt: expect.any(Number) });
    expect(await cache.revocation(hashSecret(revoked))).toEqual({ revokedAt: expect.any(Number) });
    const [a, b] = [newSecret('app'), newSecret('app')];
    await cache.resolve(a);
    await cache.resolve(b);
    expect(cache.missCount).toBe(2);
    counts.reads = 0;
    await cache.resolve(b); // remembered
    await cache.resolve(revoked); // pushed out by b: read again
    expect(counts.reads).toBe(1);
    expect(new TokenGrantCache(store, { clock, maxMisses: 0 }).missCount).toBe(0);
    expect(() => new TokenGrantCache(store, { maxMisses: 1.5, clock })).toThrow(RangeError);
    expect(() => new TokenGrantCache(store, { missTtlMs: -1, clock })).toThrow(RangeError);
  });

  it('forgets remembered misses when it revokes: a token it had found unknown then shows its tombstone at once', async () => {
    const store = new MemoryCredentialStore();
    const cache = new TokenGrantCache(store, { clock });
    const token = newSecret('app');
    const digest = hashSecret(token);
    expect(await cache.resolve(token)).toBeUndefined();
    expect(await cache.revocation(digest)).toBeUndefined();
    await store.putToken(digest, GRANT); // stored outside this cache (say, by an operator's script)
    expect(await cache.revoke(digest)).toBe(true);
    expect(await cache.revocation(digest)).toEqual({ revokedAt: expect.any(Number) });
  });

  it('does not remember a miss read while a revocation landed', async () => {
    const { store, counts, hold } = countingStore();
    const cache = new TokenGrantCache(store, { clock });
    const token = newSecret('app');
    const release = hold();
    const reading = cache.resolve(token);
    await cache.revoke(hashSecret('app_other'));
    release();
    expect(await reading).toBeUndefined();
    expect(cache.missCount).toBe(0);
    await cache.resolve(token);
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

  it('defaults to a TTL of 500 ms, so an event stream re-checking every 400 ms learns of a revocation elsewhere within 1 s', () => {
    expect(defaultTokenGrantCache.ttlMs).toBe(500);
  });

  it('tells whether a token covers a home: granted it, and not deleted since; the mark read once per token, home and TTL', async () => {
    const { store } = countingStore();
    const marks = vi.spyOn(store, 'homeDeletedAt');
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store, { homes: ['h1', 'h2'], scopes: ['read'], createdAt: 100 });
    const resolved = (await cache.resolve(token))!;
    expect(await cache.coversHome(resolved, 'h3')).toBe(false); // not granted: no read
    expect(marks).not.toHaveBeenCalled();
    await store.markHomeDeleted('h1', 100); // elsewhere, in the very ms of the grant: fails closed
    await store.markHomeDeleted('h2', 99);
    for (let i = 0; i < 3; i++) {
      const again = (await cache.resolve(token))!;
      expect(await cache.coversHome(again, 'h1')).toBe(false);
      expect(await cache.coversHome(again, 'h2')).toBe(true);
    }
    expect(marks).toHaveBeenCalledTimes(2);
    await store.markHomeDeleted('h2', 150); // on another node: seen once the TTL has passed
    now = 999;
    expect(await cache.coversHome((await cache.resolve(token))!, 'h2')).toBe(true);
    now = 1_000;
    expect(await cache.coversHome((await cache.resolve(token))!, 'h2')).toBe(false);
    expect(marks).toHaveBeenCalledTimes(3);
  });

  it('takes a home from the tokens granted it at once on the node that deletes it', async () => {
    const { store } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store, { homes: ['h1'], scopes: ['read'], createdAt: 100 });
    expect(await cache.coversHome((await cache.resolve(token))!, 'h1')).toBe(true);
    await cache.markHomeDeleted('h1', 200);
    expect(await store.homeDeletedAt('h1')).toBe(200);
    expect(await cache.coversHome((await cache.resolve(token))!, 'h1')).toBe(false);
    // A token minted after the home was created anew covers it.
    const fresh = await minted(store, { homes: ['h1'], scopes: ['read'], createdAt: 201 });
    expect(await cache.coversHome((await cache.resolve(fresh))!, 'h1')).toBe(true);
  });

  it('forgets cached grants also when recording a home deletion failed (it may have landed)', async () => {
    const { store, counts } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store);
    await cache.resolve(token);
    vi.spyOn(store, 'markHomeDeleted').mockRejectedValueOnce(new Error('down'));
    await expect(cache.markHomeDeleted('h1', 5)).rejects.toThrow('down');
    await cache.resolve(token);
    expect(counts.reads).toBe(2);
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
    expect(cache.missCount).toBe(0);
  });

  it('tells a revoked token from one never issued, through the store’s tombstone', async () => {
    const { store } = countingStore();
    const cache = new TokenGrantCache(store, { ttlMs: 1_000, clock });
    const token = await minted(store);
    await cache.resolve(token);
    expect(await cache.revocation(hashSecret(token))).toBeUndefined();
    expect(await cache.revoke(hashSecret(token))).toBe(true);
    expect(await cache.resolve(token)).toBeUndefined();
    expect(await cache.revocation(hashSecret(token))).toEqual({ revokedAt: expect.any(Number) });
    expect(await cache.revocation(hashSecret('never-issued'))).toBeUndefined();
  });
});
