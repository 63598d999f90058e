/** Shard leases on a real Redis: a lease that lapsed while nobody took the shard is renewed, not lost. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ShardLeases } from '../../cluster/shard-leases.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../runtime/redis/redis-connection.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

let redis: TestRedis;
let client: RedisClient;

beforeAll(async () => {
  redis = await startTestRedis();
  client = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
  await connectRedis(client);
});

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

function leases(owner: string, keys: KeyLayout, ttlMs: number) {
  const lost: number[] = [];
  // No timer renewals (the test renews by hand), as when Redis was unreachable for longer than the TTL.
  const l = new ShardLeases(client, keys, owner, (s) => lost.push(s), silentLogger, { ttlMs, renewEveryMs: 3_600_000 });
  return { leases: l, lost };
}

describe('ShardLeases', () => {
  it('renews a lease that lapsed (Redis down past its TTL) when nobody took the shard since, keeping the fence token', async () => {
    const keys = new KeyLayout(`${redis.cluster}lapse`);
    const a = leases('node-a', keys, 150);
    expect((await a.leases.acquire([3])).size).toBe(0);
    const token = a.leases.token(3);
    await vi.waitFor(async () => expect(await client.exists(keys.lease(3))).toBe(0), { timeout: 5_000, interval: 20 });

    await a.leases.renew();
    expect(a.lost).toEqual([]);
    expect(a.leases.token(3)).toBe(token);
    expect(await client.get(keys.lease(3))).toBe('node-a');
    expect(await client.get(keys.fence(3))).toBe(token);
    // Held again: another node cannot take it.
    const b = leases('node-b', keys, 15_000);
    expect(await b.leases.acquire([3])).toEqual(new Map([[3, 'node-a']]));
    await a.leases.releaseAll();
  });

  it('mints fence tokens that only grow, from Redis TIME in µs: a fence lost or set lower (a failover lost the last mint) still yields a token above every one minted before', async () => {
    const keys = new KeyLayout(`${redis.cluster}mint`);
    const a = leases('node-a', keys, 15_000);
    const b = leases('node-b', keys, 15_000);
    const minted: bigint[] = [];
    const [s1, s2] = await client.time();
    const nowUs = BigInt(s1!) * 1_000_000n + BigInt(s2!);
    for (let i = 0; i < 5; i++) {
      await (i % 2 === 0 ? a : b).leases.acquire([2], { force: true });
      const token = (i % 2 === 0 ? a : b).leases.token(2)!;
      expect(token).toMatch(/^[1-9][0-9]*$/); // a plain decimal integer (fenced writes compare strings)
      minted.push(BigInt(token));
    }
    for (let i = 1; i < minted.length; i++) expect(minted[i]).toBeGreaterThan(minted[i - 1]!);
    expect(minted[0]).toBeGreaterThanOrEqual(nowUs); // Redis' clock in µs, not a counter from 1
    expect(minted.at(-1)!).toBeLessThan(2n ** 53n);
    const highest = minted.at(-1)!;

    // A Sentinel failover lost the last (acknowledged, unreplicated) mints: the fence is lower, or gone.
    await client.set(keys.fence(2), '7');
    await client.del(keys.lease(2));
    await a.leases.acquire([2]);
    expect(BigInt(a.leases.token(2)!)).toBeGreaterThan(highest);
    await client.del(keys.fence(2), keys.lease(2));
    await b.leases.acquire([2]);
    expect(BigInt(b.leases.token(2)!)).toBeGreaterThan(highest);
    // And an existing counter above the clock still only grows by one.
    const ahead = (nowUs + 10n ** 12n).toString();
    await client.set(keys.fence(2), ahead);
    await b.leases.acquire([2], { force: true });
    expect(b.leases.token(2)).toBe((BigInt(ahead) + 1n).toString());
  });

  it('still loses a lapsed lease another node took meanwhile', async () => {
    const keys = new KeyLayout(`${redis.cluster}taken`);
    const a = leases('node-a', keys, 150);
    await a.leases.acquire([5]);
    await vi.waitFor(async () => expect(await client.exists(keys.lease(5))).toBe(0), { timeout: 5_000, interval: 20 });
    const b = leases('node-b', keys, 15_000);
    expect((await b.leases.acquire([5])).size).toBe(0);
    await b.leases.releaseAll(); // even once b let it go again, its acquire raised the fence: a's token is stale

    await a.leases.renew();
    expect(a.lost).toEqual([5]);
    expect(a.leases.token(5)).toBeUndefined();
    expect(await client.exists(keys.lease(5))).toBe(0);
  });
});
