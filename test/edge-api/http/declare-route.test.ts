/** declareRoute: the same zod schemas validate params, query and a JSON body read once, with the edge's own rules for each. */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { securityOf, z } from '../../../edge-api/http/api-schemas.ts';
import { createGuard, isGuard } from '../../../edge-api/http/access-guard.ts';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { TokenGrantCache } from '../../../edge-api/auth/token-grant-cache.ts';
import { defaultRateLimit, RequestLimiter } from '../../../edge-api/http/rate-limiter.ts';
import { declareRoute } from '../../../edge-api/http/declare-route.ts';
import { errorResponse, HttpError } from '../../../edge-api/http/http-error.ts';
import { closeEdges, startEdge } from './harness.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeEdges();
});

/** A bare app with one POST route whose body is optional, and one hidden GET. */
function bareApp() {
  const app = new OpenAPIHono<Env>();
  app.onError((err, c) => errorResponse(c, err instanceof HttpError ? err : new HttpError('internal', 'internal error')));
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/things/{id}',
      request: {
        params: z.object({ id: z.string().regex(/^\d+$/) }),
        query: z.object({ mode: z.enum(['a', 'b']).optional() }),
        body: { required: false, content: { 'application/json': { schema: z.strictObject({ n: z.number().optional() }) } } },
      },
      responses: { 200: { description: 'ok', content: { 'application/json': { schema: z.object({ id: z.string(), n: z.number() }) } } } },
    }),
    (c) => c.json({ id: c.req.valid('param').id, n: c.req.valid('json').n ?? 0 }, 200),
  );
  declareRoute(app, createRoute({ method: 'get', path: '/hidden', hide: true, responses: { 204: { description: 'none' } } }), (c) =>
    c.body(null, 204),
  );
  return app;
}

describe('declareRoute', () => {
  it('registers the route for the document, and a hidden one not', async () => {
    const app = bareApp();
    const doc = app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } });
    expect(Object.keys(doc.paths ?? {})).toEqual(['/things/{id}']);
    expect((await app.request('/hidden')).status).toBe(204);
  });

  it('reads an empty optional body as {} whatever its Content-Type, and validates a non-empty one', async () => {
    const app = bareApp();
    for (const headers of [{}, { 'content-type': 'text/plain' }, { 'content-type': 'application/json' }] as Record<string, string>[]) {
      const res = await app.request('/things/7', { method: 'POST', headers, body: '' });
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(await res.json()).toEqual({ id: '7', n: 0 });
    }
    const ok = await app.request('/things/7', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":3}' });
    expect(await ok.json()).toEqual({ id: '7', n: 3 });
    const form = await app.request('/things/7', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'n=3' });
    expect(form.status).toBe(415);
    const bad = await app.request('/things/x?mode=c', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n":"3"}',
    });
    expect(bad.status).toBe(400);
    const details = ((await bad.json()) as { error: { details: { field: string; fields: { field: string }[] } } }).error.details;
    expect(details.field).toBe('id');
    // The path, the query and the body are all checked before the 400: it lists the bad fields of each.
    expect(details.fields.map((f) => f.field)).toEqual(['id', 'mode', 'n']);
  });

  it('refuses at registration a /v1 route whose first middleware is not a guard, and a path parameter it cannot route', async () => {
    const app = new OpenAPIHono<Env>();
    const responses = { 204: { description: 'none' } };
    const open = createRoute({ method: 'get', path: '/v1/open', responses });
    expect(() => declareRoute(app, open, (c) => c.body(null, 204))).toThrow(/guard/);
    const notAGuard = createRoute({ method: 'get', path: '/v1/open', middleware: [async (_c, next) => next()] as const, responses });
    expect(() => declareRoute(app, notAGuard, (c) => c.body(null, 204))).toThrow(/guard/);
    const dashed = createRoute({ method: 'get', path: '/things/{thing-id}', responses });
    expect(() => declareRoute(app, dashed, (c) => c.body(null, 204))).toThrow(/path parameters/);
    // The documented security must be what the route's guard enforces.
    const guard = createGuard({
      tokens: new TokenGrantCache(new MemoryCredentialStore()),
      adminToken: 'admin-token-for-declare-route',
      limiter: new RequestLimiter(defaultRateLimit),
      clock: Date.now,
    });
    const saysRead = createRoute({
      method: 'get',
      path: '/v1/said',
      security: securityOf('read'),
      middleware: [guard('admin')] as const,
      responses,
    });
    expect(() => declareRoute(app, saysRead, (c) => c.body(null, 204))).toThrow(/securityOf\('admin'\)/);
    // A refused route is neither served nor described.
    expect(app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } }).paths ?? {}).toEqual({});
    expect(app.routes).toEqual([]);
    // The edge itself, however its routes were registered: the first handler of every /v1 route is a guard.
    const edge = startEdge();
    const first = new Map<string, unknown>();
    for (const r of edge.app.routes) {
      if (r.method === 'ALL' || !r.path.startsWith('/v1/')) continue;
      const key = `${r.method} ${r.path}`;
      if (!first.has(key)) first.set(key, r.handler);
    }
    expect(first.size).toBeGreaterThan(30);
    const unguarded = [...first].filter(([, handler]) => !isGuard(handler)).map(([key]) => key);
    expect(unguarded).toEqual([]);
  });

  it('refuses a body that is not one application/json zod schema, and header schemas, when the route is declared', () => {
    const app = new OpenAPIHono<Env>();
    const responses = { 204: { description: 'none' } };
    expect(() =>
      declareRoute(
        app,
        createRoute({
          method: 'post',
          path: '/form',
          request: { body: { content: { 'application/x-www-form-urlencoded': { schema: z.object({}) } } } },
          responses,
        }),
        (c) => c.body(null, 204),
      ),
    ).toThrow(/application\/json/);
    expect(() =>
      declareRoute(app, createRoute({ method: 'get', path: '/h', request: { headers: z.object({ 'x-a': z.string() }) }, responses }), (c) =>
        c.body(null, 204),
      ),
    ).toThrow(/headers/);
  });
});

describe('routes declared with declareRoute', () => {
  it('take the first value of a repeated query key, as the edge did before the schemas', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }, { deviceId: 'd2' }, { deviceId: 'd3' }]);
    const r = await edge.json('GET', '/v1/homes/h1/devices?limit=1&limit=2');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.items).toHaveLength(1);
    const bad = await edge.json('GET', '/v1/homes/h1/devices?limit=0&limit=2');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'limit' } });
  });

  it('accept every Content-Type the edge takes for JSON (parameters, spaces, +json types)', async () => {
    const edge = startEdge();
    for (const [i, type] of [
      'application/json;',
      'application/json ; charset=utf-8',
      'application/vnd.x2+json',
      'APPLICATION/JSON',
    ].entries()) {
      const r = await edge.json('PUT', `/v1/homes/h${i}`, { body: { name: 'Flat' }, headers: { 'content-type': type } });
      expect(r.status, `${type} ${JSON.stringify(r.body)}`).toBe(201);
    }
    const refused = await edge.json('PUT', '/v1/homes/h9', { body: { name: 'Flat' }, headers: { 'content-type': 'text/json' } });
    expect(refused.status).toBe(415);
    expect(refused.body.error).toMatchObject({ code: 'unsupported_media_type', details: { field: 'Content-Type' } });
  });

  it('parse the JSON body once', async () => {
    const edge = startEdge();
    const body = JSON.stringify({ name: 'Parsed once', timezone: 'UTC' });
    const parse = vi.spyOn(JSON, 'parse');
    const r = await edge.call('PUT', '/v1/homes/h1', { body });
    expect(r.status).toBe(201);
    expect(parse.mock.calls.filter(([text]) => text === body)).toHaveLength(1);
  });
});
