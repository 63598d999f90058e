/**
 * The audit log end to end: two real `node/main.ts` processes on one private redis-server. What
 * an operator and an app do on one node is read back, with that node's id, from the other; the
 * streams in Redis hold no token or hub secret.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { hashSecret, tokenIdOf } from '../../edge-api/auth/secrets.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { provisionHome, TestCluster } from '../support/cluster-harness.ts';

const ADMIN = 'admin-token-for-audit-tests';

let redis: TestRedis;
let cluster: TestCluster | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

afterAll(async () => {
  await redis?.stop();
});

const rule = {
  id: 'night-light',
  name: 'Light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
};

describe('audit log across nodes', () => {
  it('serves from node b what was done on node a, naming a; Redis keeps no secret', async () => {
    const c = new TestCluster({ redisUrl: redis.url, cluster: `${redis.cluster}audit`, adminToken: ADMIN, shards: 16 });
    cluster = c;
    onTestFailed(() => console.error(c.outputs()));
    await Promise.all([c.start('a'), c.start('b')]);
    await c.settled('a', ['a', 'b']);
    const a = c.api('a');
    const b = c.api('b');

    const { secret, appToken } = await provisionHome(a, ADMIN, 'h1');
    const appId = tokenIdOf(hashSecret(appToken));
    expect((await a('PUT', '/v1/homes/h1/rules/night-light', appToken, rule)).status).toBe(201);
    expect((await a('PUT', '/v1/homes/h2', appToken, { name: 'not yours' })).status).toBe(403);
    expect((await a('DELETE', '/v1/homes/junk-1/rules/r', appToken)).status).toBe(403);
    expect((await a('POST', '/v1/admin/ring/plan', ADMIN, { weights: { a: 2 } })).status).toBe(200);
    expect((await a('PUT', '/v1/homes/h3', ADMIN, { name: 'short-lived' })).status).toBe(201);
    expect((await a('DELETE', '/v1/homes/h3', ADMIN)).status).toBe(204);

    const expected = [
      { who: 'admin', action: 'homes.delete', target: { homeId: 'h3' }, status: 204, outcome: 'succeeded' },
      { who: 'admin', action: 'homes.put', target: { homeId: 'h3' }, status: 201, outcome: 'succeeded' },
      { who: 'admin', action: 'admin.ring.plan.post', target: {}, status: 200, outcome: 'succeeded' },
      {
        who: appId,
        action: 'homes.rules.delete',
        target: { homeId: 'junk-1', ruleId: 'r' },
        status: 403,
        outcome: 'refused',
        code: 'forbidden',
      },
      { who: appId, action: 'homes.put', target: { homeId: 'h2' }, status: 403, outcome: 'refused', code: 'forbidden' },
      { who: appId, action: 'homes.rules.put', target: { homeId: 'h1', ruleId: 'night-light' }, status: 201, outcome: 'succeeded' },
      {
        who: 'admin',
        action: 'tokens.post',
        target: { tokenId: appId, homes: ['h1'], scopes: ['read', 'control', 'rules'] },
        status: 201,
        outcome: 'succeeded',
      },
      { who: 'admin', action: 'homes.hubs.post', target: { homeId: 'h1', hubId: 'hub1' }, status: 201, outcome: 'succeeded' },
      { who: 'admin', action: 'homes.put', target: { homeId: 'h1' }, status: 201, outcome: 'succeeded' },
    ];
    // Appends leave node a in the background: wait until node b reads all of them.
    const all = await vi.waitFor(
      async () => {
        const r = await b('GET', '/v1/admin/audit', ADMIN);
        expect(r.status).toBe(200);
        expect(r.body.items).toHaveLength(expected.length);
        return r.body.items as Record<string, unknown>[];
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(all).toEqual(
      expected.map((e) => ({
        ...e,
        id: expect.any(String),
        at: expect.any(Number),
        time: expect.any(String),
        method: expect.any(String),
        route: expect.any(String),
        node: 'a',
      })),
    );

    const home = await b('GET', '/v1/homes/h1/audit', appToken);
    expect(home.status).toBe(200);
    expect(home.body.items.map((e: { action: string }) => e.action)).toEqual(['homes.rules.put', 'homes.hubs.post', 'homes.put']);
    const paged = await b('GET', `/v1/admin/audit?limit=2&cursor=${all[1]!.id as string}`, ADMIN);
    expect(paged.body.items.map((e: { id: string }) => e.id)).toEqual([all[2]!.id, all[3]!.id]);
    // The deleted home's own log went with it (removed in the background, just after the delete's
    // entry was appended); the refused attempts wrote no home's log.
    await vi.waitFor(async () => expect((await b('GET', '/v1/admin/audit?home=h3', ADMIN)).body.items).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
    expect((await b('GET', '/v1/admin/audit?home=h2', ADMIN)).body.items).toEqual([]);

    // What Redis holds, read raw: no token, hub secret or digest of either.
    const keys = new KeyLayout(c.opts.cluster);
    const raw = new Redis(redis.url);
    try {
      const streams = JSON.stringify([
        await raw.xrange(keys.auditLog(), '-', '+'),
        await raw.xrange(keys.homeAuditLog('h1'), '-', '+'),
        await raw.xrange(keys.homeAuditLog('h2'), '-', '+'),
      ]);
      expect(streams).toContain('homes.rules.put');
      for (const s of [secret, appToken, hashSecret(secret), hashSecret(appToken), ADMIN]) expect(streams).not.toContain(s);
      // Only the home written legitimately has a stream: none for h2, junk-1, or the deleted h3.
      expect(await raw.keys(`${c.opts.cluster}:audit:home:*`)).toEqual([keys.homeAuditLog('h1')]);
    } finally {
      raw.disconnect();
    }
  });
});
