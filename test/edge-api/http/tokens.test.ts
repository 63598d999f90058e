import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../../edge-api/http/create-http-app.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { ADMIN, closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

describe('HTTP edge: app token revocation', () => {
  it('refuses a revoked token at once on the node that revoked it', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const token = await edge.mintToken(['h1'], ['read']);
    const other = await edge.mintToken(['h1'], ['read']);
    // Warm the token cache: the grant is now served from memory.
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);

    const revoked = await edge.call('POST', '/v1/tokens/revoke', { body: { token } });
    expect(revoked.status).toBe(204);
    const refused = await edge.json('GET', '/v1/homes/h1', { token });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('token_revoked');
    expect((await edge.json('GET', '/v1/homes/h1', { token: other })).status).toBe(200);

    const again = await edge.json('POST', '/v1/tokens/revoke', { body: { token } });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
  });

  it('lets only the admin revoke, and names a bad token field', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const token = await edge.mintToken(['h1'], ['read', 'control', 'rules']);
    expect((await edge.json('POST', '/v1/tokens/revoke', { token, body: { token } })).status).toBe(403);
    for (const body of [{}, { token: 5 }, { token: '' }]) {
      const r = await edge.json('POST', '/v1/tokens/revoke', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.details).toEqual({ field: 'token', fields: [{ field: 'token', message: 'must be the app token to revoke' }] });
    }
    expect((await edge.json('POST', '/v1/tokens/revoke', { body: { token, extra: 1 } })).body.error.details).toEqual({
      field: 'extra',
      fields: [{ field: 'extra', message: 'is not a known field (expected token)' }],
    });
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
  });

  it('is seen by another node sharing the store within its token cache TTL', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const nodeA = startEdge({ clock });
    // Node B: its own app (and token cache) over the same credential store and actors.
    const nodeB = createHttpApp({
      router: nodeA.router,
      credentials: nodeA.credentials,
      feed: nodeA.feed,
      adminToken: ADMIN,
      registry: new Registry(),
      logger: silentLogger,
      readiness: () => ({ ready: true, checks: {} }),
      maxBodyBytes: 1024,
      clock,
      tokenCache: { ttlMs: 1_000, clock }, // the cache keeps its TTL on its own (monotonic) clock
    });
    const getB = async (token: string) => (await nodeB.request('/v1/homes/h1', { headers: { authorization: `Bearer ${token}` } })).status;
    await nodeA.createHome('h1');
    const token = await nodeA.mintToken(['h1'], ['read']);
    expect(await getB(token)).toBe(200);

    expect((await nodeA.call('POST', '/v1/tokens/revoke', { body: { token } })).status).toBe(204);
    expect((await nodeA.json('GET', '/v1/homes/h1', { token })).status).toBe(401);
    // B read the grant at `now`: it may serve it until the TTL has passed, not after.
    now += 999;
    expect(await getB(token)).toBe(200);
    now += 1;
    expect(await getB(token)).toBe(401);
  });
});
