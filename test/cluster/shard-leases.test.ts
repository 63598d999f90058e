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
