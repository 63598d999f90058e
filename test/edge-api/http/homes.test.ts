import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../../edge-api/auth/secrets.ts';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

describe('HTTP edge: homes, hubs and tokens', () => {
  it('creates a home (201), updates it (200) and serves it with its devices and hubs in brief', async () => {
    const edge = startEdge();
    const created = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', timezone: 'Europe/Berlin' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ homeId: 'h1', name: 'Flat', timezone: 'Europe/Berlin', devices: [], hubs: [] });
    const updated = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat 2' } });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ name: 'Flat 2', timezone: 'Europe/Berlin' });

    await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const home = await edge.json('GET', '/v1/homes/h1');
    expect(home.status).toBe(200);
    expect(home.body).toMatchObject({
      homeId: 'h1',
      name: 'Flat 2',
      hubs: ['hub1'],
      devices: [{ deviceId: 'd1', type: 'light', hubId: 'hub1' }],
    });
  });

  it('rejects a bad home body naming the field, and answers 404 for a home never created', async () => {
    const edge = startEdge();
    const noName = await edge.json('PUT', '/v1/homes/h1', { body: { timezone: 'UTC' } });
    expect(noName.status).toBe(400);
    expect(noName.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'name' } });
    const badTz = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', timezone: 'Mars/Olympus' } });
    expect(badTz.body.error.details).toMatchObject({ field: 'timezone' });
    const extra = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', owner: 'me' } });
    expect(extra.body.error.details).toEqual({
      field: 'owner',
      fields: [{ field: 'owner', message: 'is not a known field (expected name, timezone, location)' }],
    });
    expect(extra.body.error.message).toBe('owner is not a known field (expected name, timezone, location)');
    const missing = await edge.json('GET', '/v1/homes/nowhere');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('registers a hub once: the secret is shown once and only its digest is stored', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const reg = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    expect(reg.status).toBe(201);
    expect(reg.body.hubId).toBe('hub1');
    expect(reg.body.secret).toMatch(/^hub_[A-Za-z0-9_-]{43}$/);
    expect(await edge.credentials.findHub(hashSecret(reg.body.secret))).toEqual({ homeId: 'h1', hubId: 'hub1' });
    expect(await edge.credentials.findHub(reg.body.secret)).toBeUndefined();
    const hubs = await edge.router.ask('home:h1', { type: 'home.hubs' });
    expect(hubs).toMatchObject({ ok: true, value: { ok: true, value: [{ hubId: 'hub1', secretHash: hashSecret(reg.body.secret) }] } });
    expect(JSON.stringify(hubs)).not.toContain(reg.body.secret);

    const again = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_exists');
    const badId = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub/1' } });
    expect(badId.status).toBe(400);
    expect(badId.body.error.details).toEqual({
      field: 'hubId',
      fields: [{ field: 'hubId', message: 'must be 1 to 64 letters, digits, _ or -' }],
    });
    const noHome = await edge.json('POST', '/v1/homes/h2/hubs', { body: { hubId: 'hub1' } });
    expect(noHome.status).toBe(404);
  });

  it('mints app tokens scoped to homes and scopes, stored by digest', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const minted = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1', 'h1', 'h2'], scopes: ['read', 'control'] } });
    expect(minted.status).toBe(201);
    expect(minted.body).toMatchObject({ homes: ['h1', 'h2'], scopes: ['read', 'control'] });
    expect(minted.body.token).toMatch(/^app_/);
    expect(await edge.credentials.findToken(hashSecret(minted.body.token))).toMatchObject({
      homes: ['h1', 'h2'],
      scopes: ['read', 'control'],
    });
    expect((await edge.json('GET', '/v1/homes/h1', { token: minted.body.token })).status).toBe(200);
  });

  it('rejects a bad token request naming the field', async () => {
    const edge = startEdge();
    const cases: [unknown, string][] = [
      [{ homes: [], scopes: ['read'] }, 'homes'],
      [{ homes: 'h1', scopes: ['read'] }, 'homes'],
      [{ homes: ['h1', 'bad home'], scopes: ['read'] }, 'homes[1]'],
      [{ homes: ['h1'], scopes: [] }, 'scopes'],
      [{ homes: ['h1'], scopes: ['read', 'admin'] }, 'scopes[1]'],
      [{ homes: ['h1'], scopes: ['read'], ttl: 5 }, 'ttl'],
    ];
    for (const [body, field] of cases) {
      const r = await edge.json('POST', '/v1/tokens', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
  });
  it('lists every bad field of a token request in details.fields, the first in the message, and names an unknown field', async () => {
    const edge = startEdge();
    const r = await edge.json('POST', '/v1/tokens', {
      body: { homes: ['h1', 'bad home'], scopes: ['read', 'admin'], ttlSeconds: 0, ttl: 5 },
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: 'invalid_argument',
      message: 'ttl is not a known field (expected homes, scopes, ttlSeconds) (and 3 more: see details.fields)',
      details: {
        field: 'ttl',
        fields: [
          { field: 'ttl', message: 'is not a known field (expected homes, scopes, ttlSeconds)' },
          { field: 'homes[1]', message: 'must be a home id: 1 to 64 letters, digits, _ . or -' },
          { field: 'scopes[1]', message: 'must be one of read, control, rules' },
          { field: 'ttlSeconds', message: 'must be an integer from 1 to 31536000' },
        ],
      },
    });
    const missing = await edge.json('POST', '/v1/tokens', { body: {} });
    expect(missing.body.error.details.fields).toEqual([
      { field: 'homes', message: 'must be an array of 1 to 1000 home ids' },
      { field: 'scopes', message: 'must be a non-empty array of read, control, rules' },
    ]);
    expect((await edge.json('GET', '/v1/tokens')).body.items).toEqual([]); // nothing minted
  });

  it('lists every bad field of a home body, and keeps the home checks (and messages) for the values', async () => {
    const edge = startEdge();
    const r = await edge.json('PUT', '/v1/homes/h1', { body: { name: 5, timezone: 7, owner: 'me' } });
    expect(r.status).toBe(400);
    // An unknown field first, as the field list check came first before the schemas.
    expect(r.body.error.details).toEqual({
      field: 'owner',
      fields: [
        { field: 'owner', message: 'is not a known field (expected name, timezone, location)' },
        { field: 'name', message: 'must be a non-empty string' },
        { field: 'timezone', message: 'must be an IANA time zone name' },
      ],
    });
    // The same message as the home's own check of a name it refuses (an empty one).
    const empty = await edge.json('PUT', '/v1/homes/h1', { body: { name: '' } });
    expect(empty.body.error).toMatchObject({ message: 'name must be a non-empty string', details: { field: 'name' } });
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(404);
  });

  it("checks a new hub id before storing its secret, with the home's rule and message", async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    for (const body of [{}, { hubId: 5 }, { hubId: '' }, { hubId: 'a'.repeat(65) }]) {
      const r = await edge.json('POST', '/v1/homes/h1/hubs', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message).toBe('hubId must be 1 to 64 letters, digits, _ or -');
    }
    const reserved = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: '__proto__' } });
    expect(reserved.body.error.message).toBe('hubId is a reserved name');
    const extra = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1', name: 'x' } });
    expect(extra.body.error.details).toMatchObject({ field: 'name' });
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual([]);
  });
});
