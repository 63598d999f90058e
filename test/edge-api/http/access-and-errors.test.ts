import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import type { Result } from '../../../runtime/result.ts';
import { ADMIN, closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

/** A router whose every ask answers `reply` (or throws it), counting asks. */
function fakeRouter(reply: () => Result<unknown> | Promise<Result<unknown>>) {
  const router = {
    asks: 0,
    ask: async <R>() => {
      router.asks++;
      return (await reply()) as Result<R>;
    },
    tell: () => ({ ok: true as const, value: undefined }),
    deliver: () => ({ ok: true as const, value: undefined }),
  };
  return router satisfies ActorRouter;
}

describe('HTTP edge: authentication and access', () => {
  it('answers 401 without a token or with an unknown one, before touching any actor', async () => {
    const router = fakeRouter(() => ({ ok: true, value: { ok: true, value: {} } }));
    const edge = startEdge({ router });
    for (const token of [null, 'nope', '']) {
      const r = await edge.json('GET', '/v1/homes/h1', { token });
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) } });
      expect(r.res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const basic = await edge.call('GET', '/v1/homes/h1', { token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    expect(basic.status).toBe(401);
    expect(router.asks).toBe(0);
  });

  it('answers 503 unavailable, not 500, when the credential store cannot answer (Redis down); the admin token still works', async () => {
    const router = fakeRouter(() => ({ ok: true, value: { ok: true, value: {} } }));
    const edge = startEdge({ router });
    edge.credentials.findToken = async () => {
      throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
    };
    const r = await edge.json('GET', '/v1/homes/h1', { token: 'app_some-token' });
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: { code: 'unavailable', message: 'credentials cannot be checked right now' } });
    expect(router.asks).toBe(0);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(200);
  });

  it('answers 503 when credentials cannot be stored (Redis down), for tokens and hub secrets', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const down = async () => {
      throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
    };
    edge.credentials.putToken = down;
    edge.credentials.putHub = down;
    const token = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'] } });
    expect(token.status).toBe(503);
    expect(token.body.error.code).toBe('unavailable');
    const hub = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    expect(hub.status).toBe(503);
  });

  it('answers 403 for a home not granted and for a missing scope', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.createHome('h2');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const reader = await edge.mintToken(['h1'], ['read']);
    expect((await edge.json('GET', '/v1/homes/h1', { token: reader })).status).toBe(200);
    const otherHome = await edge.json('GET', '/v1/homes/h2', { token: reader });
    expect(otherHome.status).toBe(403);
    expect(otherHome.body.error.code).toBe('forbidden');
    const patch = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { token: reader, body: { desired: { on: true } } });
    expect(patch.status).toBe(403);
    expect(patch.body.error.message).toMatch(/control/);
    expect((await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { token: reader, body: { name: 'set' } })).status).toBe(403);
    expect((await edge.json('POST', '/v1/homes/h1/rules', { token: reader, body: {} })).status).toBe(403);
    expect((await edge.json('POST', '/v1/homes/h1/scenes/s/activate', { token: reader })).status).toBe(403);

    const controller = await edge.mintToken(['h1'], ['control']);
    expect((await edge.json('GET', '/v1/homes/h1', { token: controller })).status).toBe(403);
    expect((await edge.json('PATCH', '/v1/homes/h1/devices/d1', { token: controller, body: { desired: { on: true } } })).status).toBe(200);
  });

  it('keeps admin-only routes from app tokens, whatever their scopes', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const token = await edge.mintToken(['h1'], ['read', 'control', 'rules']);
    const calls: [string, string, unknown][] = [
      ['PUT', '/v1/homes/h1', { name: 'Mine now' }],
      ['POST', '/v1/homes/h1/hubs', { hubId: 'rogue' }],
      ['POST', '/v1/tokens', { homes: ['h1', 'h2'], scopes: ['read'] }],
    ];
    for (const [method, path, body] of calls) {
      const r = await edge.json(method, path, { token, body });
      expect(r.status, path).toBe(403);
      expect(r.body.error.code).toBe('forbidden');
    }
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual([]);
  });

  it('validates path ids, naming the parameter', async () => {
    const edge = startEdge();
    const cases: [string, string][] = [
      ['/v1/homes/bad%20home', 'homeId'],
      [`/v1/homes/${'h'.repeat(65)}`, 'homeId'],
      [`/v1/homes/h1/devices/${'d'.repeat(129)}`, 'deviceId'],
      [`/v1/homes/h1/rules/${'r'.repeat(129)}`, 'ruleId'],
    ];
    for (const [path, field] of cases) {
      const r = await edge.json('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
    const scene = await edge.json('POST', `/v1/homes/h1/scenes/${'s'.repeat(129)}/activate`);
    expect(scene.body.error.details).toMatchObject({ field: 'sceneId', fields: [{ field: 'sceneId' }] });
  });

  it('refuses C0 and C1 control characters in path ids, naming the parameter, before any actor or log sees them', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const cases: [string, string, string][] = [
      ['GET', '/v1/homes/h1/devices/lamp%0Aforged', 'deviceId'],
      ['PUT', '/v1/homes/h1/rules/r%00', 'ruleId'],
      ['DELETE', '/v1/homes/h1/scenes/s%1B%5B31m', 'sceneId'],
      ['GET', '/v1/homes/h1/commands/d~k%7F', 'commandId'],
      ['DELETE', '/v1/homes/h1/hubs/hub%C2%85x', 'hubId'],
      ['GET', '/v1/homes/h%09', 'homeId'],
    ];
    for (const [method, path, field] of cases) {
      const r = await edge.json(method, path, method === 'PUT' ? { body: { name: 'x' } } : {});
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toMatchObject({ code: 'invalid_argument', details: { field } });
      expect(r.body.error.message, path).toMatch(/control characters/);
    }
    // Printable non-ASCII stays an ordinary id.
    expect((await edge.json('GET', '/v1/homes/h1/devices/l%C3%A4mpchen')).body.error.code).toBe('not_found');
  });
});

describe('HTTP edge: error shape', () => {
  it('answers unknown routes with 404 not_found', async () => {
    const edge = startEdge();
    for (const path of ['/nope', '/v1/homes', '/v1/homes/h1/gadgets']) {
      const r = await edge.json('GET', path);
      expect(r.status, path).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
  });

  it('names body for malformed or missing JSON', async () => {
    const edge = startEdge();
    for (const body of ['{"name": ', '', '42', 'null']) {
      const r = await edge.json('PUT', '/v1/homes/h1', { body, headers: { 'content-type': 'application/json' } });
      expect(r.status, body).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'body' } });
    }
  });

  it('answers 400 (not 500) when the client ends a request before its body, declared or streamed', async () => {
    const edge = startEdge();
    const aborted = (): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"na'));
          controller.error(new Error('aborted')); // what @hono/node-server's request stream rejects with
        },
      });
    for (const length of ['1000', undefined]) {
      const res = await edge.app.request('/v1/homes/h1', {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(length ? { 'content-length': length } : {}) },
        body: aborted(),
        duplex: 'half',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'invalid_argument', details: { field: 'body' } } });
    }
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(404);
    // A route whose body is optional reads it the same way (hub secret rotation).
    await edge.createHome('h2');
    expect((await edge.json('POST', '/v1/homes/h2/hubs', { body: { hubId: 'hub1' } })).status).toBe(201);
    const rotate = await edge.app.request('/v1/homes/h2/hubs/hub1/secret', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'content-length': '1000' },
      body: aborted(),
      duplex: 'half',
    });
    expect(rotate.status).toBe(400);
  });

  it('answers 415 unsupported_media_type to a body that is not declared as JSON, and acts on none of them', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const json = JSON.stringify({ name: 'Flat', timezone: 'UTC' });
    const routes: [string, string][] = [
      ['PUT', '/v1/homes/h2'],
      ['POST', '/v1/tokens'],
      ['PUT', '/v1/homes/h1/rules/r1'],
      ['POST', '/v1/homes/h1/devices/d1/commands'],
      ['POST', '/v1/admin/ring/plan'],
    ];
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
    ]) {
      for (const [method, path] of routes) {
        const r = await edge.json(method, path, { body: json, headers: { 'content-type': type } });
        expect(r.status, `${type} ${method} ${path}`).toBe(415);
        expect(r.body.error).toMatchObject({ code: 'unsupported_media_type', details: { field: 'Content-Type' } });
        expect(r.body.error.message).toContain('application/json');
      }
    }
    // No Content-Type at all (a byte body gets none from fetch, unlike a string body).
    const untyped = await edge.app.request('/v1/homes/h2', {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}` },
      body: new TextEncoder().encode(json),
    });
    expect(untyped.status).toBe(415);
    expect(((await untyped.json()) as any).error.message).toBe('the request body needs Content-Type: application/json');
    expect((await edge.json('GET', '/v1/homes/h2')).status).toBe(404);
  });

  it('takes JSON bodies declared with parameters, in any case, or with a +json type', async () => {
    const edge = startEdge();
    const types = ['application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json'];
    for (const [i, type] of types.entries()) {
      const r = await edge.json('PUT', `/v1/homes/h${i}`, { body: { name: 'Flat', timezone: 'UTC' }, headers: { 'content-type': type } });
      expect(r.status, type).toBe(201);
    }
  });

  it('refuses a body over maxBodyBytes with 413, with or without Content-Length', async () => {
    const edge = startEdge({ maxBodyBytes: 256 });
    const big = { name: 'x'.repeat(300) };
    const streamed = await edge.json('PUT', '/v1/homes/h1', { body: big });
    expect(streamed.status).toBe(413);
    expect(streamed.body.error.code).toBe('payload_too_large');
    const declared = await edge.json('PUT', '/v1/homes/h1', {
      body: big,
      headers: { 'content-length': String(JSON.stringify(big).length) },
    });
    expect(declared.status).toBe(413);
    expect((await edge.json('PUT', '/v1/homes/h1', { body: { name: 'small' } })).status).toBe(201);
  });

  it('maps runtime failures through the code table', async () => {
    const cases: [string, number][] = [
      ['overloaded', 429],
      ['timeout', 503],
      ['unavailable', 503],
      ['stopping', 503],
      ['actor_crashed', 500],
    ];
    for (const [code, status] of cases) {
      const edge = startEdge({ router: fakeRouter(() => ({ ok: false, error: { code: code as 'timeout', message: `runtime ${code}` } })) });
      const r = await edge.json('GET', '/v1/homes/h1');
      expect(r.status, code).toBe(status);
      expect(r.body.error.code).toBe(code);
    }
  });

  it('answers 500 internal for an unexpected exception without leaking it', async () => {
    const edge = startEdge({
      router: fakeRouter(() => {
        throw new Error('secret detail at /srv/app/cluster.ts:42');
      }),
    });
    const r = await edge.json('GET', '/v1/homes/h1');
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
    const malformed = startEdge({ router: fakeRouter(() => ({ ok: true, value: 'not an outcome' })) });
    expect((await malformed.json('GET', '/v1/homes/h1')).body.error.code).toBe('internal');
  });
});

describe('HTTP edge: rate limits and isolation', () => {
  it('limits each token with 429 rate_limited and Retry-After', async () => {
    // Each request reads the clock once: 10 ms pass per request, refilling the home's bucket but
    // only 0.02 of a token.
    let now = 1_000_000;
    const edge = startEdge({ clock: () => (now += 10), rateLimit: { perTokenPerSec: 2, perHomePerSec: 1_000, burst: 3 } });
    await edge.createHome('h1');
    const token = await edge.mintToken(['h1'], ['read']);
    for (let i = 0; i < 3; i++) expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    const limited = await edge.json('GET', '/v1/homes/h1', { token });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(limited.res.headers.get('retry-after')).toBe('1');
    // Another token is not affected; time refills the bucket.
    const other = await edge.mintToken(['h1'], ['read']);
    expect((await edge.json('GET', '/v1/homes/h1', { token: other })).status).toBe(200);
    now += 500;
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(429);
  });

  it('limits each home across tokens; a limited home leaves the others alone', async () => {
    const edge = startEdge({ clock: () => 5_000, rateLimit: { perTokenPerSec: 1_000, perHomePerSec: 1, burst: 4 } });
    await edge.createHome('h1');
    await edge.createHome('h2');
    const a = await edge.mintToken(['h1', 'h2'], ['read']);
    const b = await edge.mintToken(['h1'], ['read']);
    for (const token of [a, b, a]) expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    const limited = await edge.json('GET', '/v1/homes/h1', { token: b });
    expect(limited.status).toBe(429);
    expect(limited.body.error.message).toMatch(/home/);
    expect((await edge.json('GET', '/v1/homes/h2', { token: a })).status).toBe(200);
  });

  it('keeps an overloaded home from affecting another home', async () => {
    const edge = startEdge({ host: { mailboxBound: 2 } });
    await edge.createHome('h1');
    await edge.createHome('h2');
    const flood = await Promise.all(Array.from({ length: 30 }, () => edge.json('GET', '/v1/homes/h1')));
    const statuses = flood.map((r) => r.status);
    expect(statuses).toContain(200);
    expect(statuses).toContain(429);
    const overloaded = flood.find((r) => r.status === 429)!;
    expect(overloaded.body.error.code).toBe('overloaded');
    expect(overloaded.res.headers.get('retry-after')).toBe('1');
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
    const [h2, bad] = await Promise.all([edge.json('GET', '/v1/homes/h2'), edge.json('PUT', '/v1/homes/h1', { body: { name: '' } })]);
    expect(h2.status).toBe(200);
    expect(bad.status).toBe(400);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(200);
  });
});
