/** The HTTP access log: one line per request with method, route pattern, status, duration and token id; never a token. */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { EventFeed } from '../../../edge-api/events/event-feed.ts';
import { createHttpApp } from '../../../edge-api/http/create-http-app.ts';
import { createActorStack, type ActorStack } from '../../../node/actor-stack.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';

const ADMIN = 'admin-token-for-access-log-tests';

const stacks: ActorStack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.host.close()));
});

/** An edge whose logger writes into `lines` (as startNode's root logger: bound to the node's id). */
function edgeWithLog(accessLog?: boolean, level = 'info') {
  const text: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level, base: { node: 'n1' } }, sink);
  const registry = new Registry();
  const feed = new EventFeed();
  const stack = createActorStack({
    store: new MemoryStore(),
    logger: silentLogger,
    registry,
    hubCommands: { send: () => {} },
    publish: (h, t, d) => feed.publish(h, t, d),
  });
  stacks.push(stack);
  const app = createHttpApp({
    router: stack.router,
    credentials: new MemoryCredentialStore(),
    feed,
    adminToken: ADMIN,
    registry,
    logger,
    readiness: () => ({ ready: true, checks: { store: true, started: true } }),
    maxBodyBytes: 64 * 1024,
    ...(accessLog === undefined ? {} : { accessLog }),
  });
  const call = (method: string, path: string, token?: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  /** Every line logged so far, raw. */
  const raw = (): string => text.join('');
  /** The access log lines so far, parsed. */
  const access = (): Record<string, unknown>[] =>
    raw()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.component === 'access');
  return { call, raw, access };
}

describe('HTTP access log', () => {
  it('logs one info line per request: method, route pattern, status, duration, the admin as "admin", and the node', async () => {
    const edge = edgeWithLog();
    const res = await edge.call('PUT', '/v1/homes/h1', ADMIN, { name: 'Flat', timezone: 'UTC' });
    expect(res.status).toBe(201);
    const lines = edge.access();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      level: 30,
      time: expect.any(Number),
      node: 'n1',
      component: 'access',
      method: 'PUT',
      route: '/v1/homes/:homeId',
      status: 201,
      durationMs: expect.any(Number),
      tokenId: 'admin',
      msg: 'http request',
    });
    expect(lines[0]!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('names an app token by its public id, also when the guard refuses it, and never writes a token into any line', async () => {
    const edge = edgeWithLog();
    expect((await edge.call('PUT', '/v1/homes/h1', ADMIN, { name: 'Flat', timezone: 'UTC' })).status).toBe(201);
    const minted = await edge.call('POST', '/v1/tokens', ADMIN, { homes: ['h1'], scopes: ['read'] });
    expect(minted.status).toBe(201);
    const { token, tokenId } = (await minted.json()) as { token: string; tokenId: string };
    expect(token).toMatch(/^app_/);

    expect((await edge.call('GET', '/v1/homes/h1', token)).status).toBe(200);
    // Home not granted: 403, and the caller is still named.
    expect((await edge.call('GET', '/v1/homes/h2', token)).status).toBe(403);
    const byToken = edge.access().filter((l) => l.tokenId === tokenId);
    expect(byToken.map((l) => [l.method, l.route, l.status])).toEqual([
      ['GET', '/v1/homes/:homeId', 200],
      ['GET', '/v1/homes/:homeId', 403],
    ]);
    // The minting response carried the token; no log line does, nor the admin token.
    expect(edge.raw()).not.toContain(token);
    expect(edge.raw()).not.toContain(token.slice(4));
    expect(edge.raw()).not.toContain(ADMIN);
  });

  it('logs an unmatched path as route "unmatched", and an unauthenticated request without a token id', async () => {
    const edge = edgeWithLog();
    expect((await edge.call('GET', '/no/such/path')).status).toBe(404);
    expect((await edge.call('GET', '/v1/homes/h1', 'app_not-a-token-this-node-knows')).status).toBe(401);
    const [unmatched, refused] = edge.access();
    expect(unmatched).toMatchObject({ method: 'GET', route: 'unmatched', status: 404 });
    expect(unmatched).not.toHaveProperty('tokenId');
    expect(refused).toMatchObject({ method: 'GET', route: '/v1/homes/:homeId', status: 401 });
    expect(refused).not.toHaveProperty('tokenId');
    expect(edge.raw()).not.toContain('app_not-a-token-this-node-knows');
  });

  it('logs the status the error handler answered (a 400 for a bad body, a 404 for a missing home)', async () => {
    const edge = edgeWithLog();
    expect((await edge.call('PUT', '/v1/homes/h1', ADMIN, { name: 42 })).status).toBe(400);
    expect((await edge.call('GET', '/v1/homes/missing', ADMIN)).status).toBe(404);
    expect(edge.access().map((l) => [l.method, l.route, l.status, l.tokenId])).toEqual([
      ['PUT', '/v1/homes/:homeId', 400, 'admin'],
      ['GET', '/v1/homes/:homeId', 404, 'admin'],
    ]);
  });

  it('logs an event stream once, when it opens (status 200), while it stays open', async () => {
    const edge = edgeWithLog();
    expect((await edge.call('PUT', '/v1/homes/h1', ADMIN, { name: 'Flat', timezone: 'UTC' })).status).toBe(201);
    const stream = await edge.call('GET', '/v1/homes/h1/events', ADMIN);
    expect(stream.status).toBe(200);
    await vi.waitFor(() =>
      expect(edge.access().at(-1)).toMatchObject({ method: 'GET', route: '/v1/homes/:homeId/events', status: 200, tokenId: 'admin' }),
    );
    await stream.body?.cancel();
  });

  it('is silent with ACCESS_LOG=false (accessLog: false), other logging unchanged', async () => {
    const edge = edgeWithLog(false);
    expect((await edge.call('PUT', '/v1/homes/h1', ADMIN, { name: 'Flat', timezone: 'UTC' })).status).toBe(201);
    expect((await edge.call('GET', '/no/such/path')).status).toBe(404);
    expect(edge.access()).toEqual([]);
  });

  it('logs at info whatever LOG_LEVEL the components log at (warn, error), and not at all with LOG_LEVEL=silent', async () => {
    for (const level of ['warn', 'error', 'fatal']) {
      const edge = edgeWithLog(undefined, level);
      expect((await edge.call('GET', '/no/such/path')).status).toBe(404);
      expect(edge.access()).toEqual([expect.objectContaining({ level: 30, route: 'unmatched', status: 404 })]);
    }
    const silent = edgeWithLog(undefined, 'silent');
    expect((await silent.call('GET', '/no/such/path')).status).toBe(404);
    expect(silent.raw()).toBe('');
  });

  it('logs /healthz, /readyz and /metrics answered 2xx at debug (probe noise), and the same paths failing at info', async () => {
    const quiet = edgeWithLog();
    for (const path of ['/healthz', '/readyz']) expect((await quiet.call('GET', path)).status).toBe(200);
    expect((await quiet.call('GET', '/metrics', ADMIN)).status).toBe(200);
    // Refused: news, at info.
    expect((await quiet.call('GET', '/metrics')).status).toBe(401);
    expect(quiet.access().map((l) => [l.route, l.status, l.level])).toEqual([['/metrics', 401, 30]]);

    const verbose = edgeWithLog(undefined, 'debug');
    expect((await verbose.call('GET', '/healthz')).status).toBe(200);
    expect((await verbose.call('GET', '/v1/homes/h1', ADMIN)).status).toBe(404);
    expect(verbose.access().map((l) => [l.route, l.status, l.level])).toEqual([
      ['/healthz', 200, 20],
      ['/v1/homes/:homeId', 404, 30],
    ]);
  });
});
