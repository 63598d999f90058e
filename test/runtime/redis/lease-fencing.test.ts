import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ShardLeases } from '../../../cluster/shard-leases.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { FencedError, RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
const leaseSets: ShardLeases[] = [];
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}l${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await Promise.all(leaseSets.map((l) => l.releaseAll()));
  clients.disconnectAll();
  await redis.stop();
});

/** Leases for `owner` on its own connection; `lost` collects what onLost reported. */
async function leasesFor(owner: string, keys: KeyLayout, config: { ttlMs?: number; renewEveryMs?: number } = {}) {
  const client = await clients.connect();
  const lost: { shard: number; reason: string }[] = [];
  const leases = new ShardLeases(client, keys, owner, (shard, reason) => lost.push({ shard, reason }), silentLogger, {
    ttlMs: config.ttlMs ?? 15_000,
    renewEveryMs: config.renewEveryMs ?? 60_000,
  });
  leaseSets.push(leases);
  return { client, leases, lost };
}

/** A store whose fence tokens come from `leases` (shard = the number after `home:s`). */
function storeOver(node: Awaited<ReturnType<typeof leasesFor>>, keys: KeyLayout) {
  return new RedisStore({
    client: node.client,
    keys,
    shardOf: (id) => Number(/^home:s(\d+)/.exec(id)![1]),
    fenceToken: (s) => node.leases.token(s),
    onFenced: (s) => node.leases.lost(s, 'fenced'),
    registry: new Registry(),
    logger: silentLogger,
  });
}

describe('ShardLeases with fencing', () => {
  it('does not let a second owner take a shard the first holds', async () => {
    const keys = freshKeys();
    const a = await leasesFor('node-a', keys);
    const b = await leasesFor('node-b', keys);
    expect((await a.leases.acquire([0, 1])).size).toBe(0);
    const held = await b.leases.acquire([0, 1, 2]);
    expect(held).toEqual(
      new Map([
        [0, 'node-a'],
        [1, 'node-a'],
      ]),
    );
    expect(b.leases.token(0)).toBeUndefined();
    expect(b.leases.token(2)).toBeDefined();
    expect(a.leases.owned).toBe(2);
    expect(b.leases.owned).toBe(1);
  });

  it('hands a shard over after releaseAll, with a newer fence token that fences the old owner', async () => {
    const keys = freshKeys();
    const a = await leasesFor('node-a', keys);
    const b = await leasesFor('node-b', keys);
    await a.leases.acquire([3]);
    const oldToken = a.leases.token(3)!;
    const storeA = storeOver(a, keys);
    await storeA.write('home:s3', { events: [{ seq: 1, at: 1, msg: 'a-1' }] });

    await a.leases.releaseAll();
    expect(a.leases.token(3)).toBeUndefined();
    expect((await b.leases.acquire([3])).size).toBe(0);
    expect(Number(b.leases.token(3))).toBeGreaterThan(Number(oldToken));

    const storeB = storeOver(b, keys);
    await storeB.write('home:s3', { events: [{ seq: 2, at: 2, msg: 'b-2' }] });
    // The old owner, had it kept its token (a paused process), is refused by Redis itself.
    const stale = storeOver({ ...a, leases: { token: () => oldToken, lost: () => {} } as unknown as ShardLeases }, keys);
    await expect(stale.write('home:s3', { events: [{ seq: 2, at: 3, msg: 'a-2' }] })).rejects.toBeInstanceOf(FencedError);
    expect((await storeB.recover('home:s3')).events.map((e) => e.msg)).toEqual(['a-1', 'b-2']);
  });

  it('reports a shard lost through onLost when a renewal finds it taken over', async () => {
    const keys = freshKeys();
    const a = await leasesFor('node-a', keys, { ttlMs: 200 });
    const b = await leasesFor('node-b', keys);
    await a.leases.acquire([4, 5]);
    // Node a stalls (no renewals); its leases lapse and b takes shard 4.
    await vi.waitFor(async () => expect((await b.leases.acquire([4])).size).toBe(0), { timeout: 5_000, interval: 50 });
    expect(a.lost).toEqual([]);
    await a.leases.renew();
    expect(a.lost.map((l) => l.shard)).toContain(4);
    expect(a.lost.find((l) => l.shard === 4)?.reason).toMatch(/renewal refused/);
    expect(a.leases.token(4)).toBeUndefined();
    expect(b.leases.token(4)).toBeDefined();
    // A write for the lost shard is refused before it reaches Redis.
    await expect(storeOver(a, keys).write('home:s4', { events: [{ seq: 1, at: 1, msg: 'x' }] })).rejects.toBeInstanceOf(FencedError);
  });

  it('reports a shard lost when the same owner id took it again elsewhere (new fence token)', async () => {
    const keys = freshKeys();
    const first = await leasesFor('node-a', keys);
    const restarted = await leasesFor('node-a', keys);
    await first.leases.acquire([6]);
    await restarted.leases.acquire([6]);
    expect(Number(restarted.leases.token(6))).toBeGreaterThan(Number(first.leases.token(6))); // tokens only grow (Redis TIME in µs, shard-leases.ts)
    await first.leases.renew();
    expect(first.lost).toEqual([{ shard: 6, reason: expect.stringMatching(/renewal refused/) }]);
    await restarted.leases.renew();
    expect(restarted.lost).toEqual([]);
  });

  it('marks a shard lost once a fenced write is reported, and only once', async () => {
    const keys = freshKeys();
    const a = await leasesFor('node-a', keys);
    await a.leases.acquire([7]);
    const storeA = storeOver(a, keys);
    await (await leasesFor('node-a', keys)).leases.acquire([7]); // a successor with a newer token
    const writes = [
      storeA.write('home:s7', { events: [{ seq: 1, at: 1, msg: 1 }] }),
      storeA.write('home:s7x', { events: [{ seq: 1, at: 1, msg: 2 }] }),
    ];
    for (const w of writes) await expect(w).rejects.toBeInstanceOf(FencedError);
    expect(a.lost).toEqual([{ shard: 7, reason: 'fenced' }]);
  });

  it('renews again after releaseAll and a new acquire', async () => {
    const keys = freshKeys();
    const a = await leasesFor('node-a', keys, { ttlMs: 5_000, renewEveryMs: 10 });
    await a.leases.acquire([8]);
    await a.leases.releaseAll();
    const renew = vi.spyOn(a.leases, 'renew');
    await a.leases.acquire([8]);
    await vi.waitFor(() => expect(renew).toHaveBeenCalled(), { timeout: 2_000, interval: 10 });
    expect(a.lost).toEqual([]);
  });
});
