/** The credential lifecycle over HTTP: token ids, expiry, listing and revocation by id; hub secret rotation; hub and home deletion. */
import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId, hubActorId } from '../../../actors/actor-id.ts';
import { hubCredentialIdOf, RETIRED_SECRETS_KEPT, type HubState } from '../../../actors/hub.ts';
import { hashSecret, tokenIdOf } from '../../../edge-api/auth/secrets.ts';
import { HubIngress } from '../../../edge-api/hub-ingress/hub-ingress.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { closeEdges, openSse, startEdge, type Edge } from './harness.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeEdges();
});

const T0 = 1_800_000_000_000;

/** An edge whose route clock (token expiry) the test moves. */
function edgeWithClock() {
  let now = T0;
  const edge = startEdge({ clock: () => now });
  return { edge, advance: (ms: number) => (now += ms), now: () => now };
}

/** A hub ingress on a free loopback port over the edge's actors and credential store (as on one node). */
async function hubIngressOf(edge: Edge): Promise<{ address: string; close(): Promise<void> }> {
  const ingress = new HubIngress({
    router: edge.router,
    credentials: edge.credentials,
    nodeId: 'n1',
    window: 100,
    maxMessageBytes: 64 * 1024,
    logger: silentLogger,
    registry: new Registry(),
    durableIntervalMs: 0,
    shutdownGraceMs: 1_000,
  });
  const port = await ingress.listen('127.0.0.1', 0);
  return { address: `127.0.0.1:${port}`, close: () => ingress.close() };
}

async function registerHub(edge: Edge, homeId: string, hubId: string): Promise<string> {
  const r = await edge.json('POST', `/v1/homes/${homeId}/hubs`, { body: { hubId } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.secret as string;
}

describe('HTTP edge: app tokens with ids and lifetimes', () => {
  it('mints a token with an id and an expiry (epoch ms), or none without ttlSeconds', async () => {
    const { edge } = edgeWithClock();
    const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds: 60 } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      token: expect.stringMatching(/^app_/),
      tokenId: tokenIdOf(hashSecret(r.body.token)),
      homes: ['h1'],
      scopes: ['read'],
      expiresAt: T0 + 60_000,
    });
    expect(r.body.tokenId).toMatch(/^tok_[0-9a-f]{24}$/);
    const forever = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'] } });
    expect(forever.body.expiresAt).toBeNull();
  });

  it('names ttlSeconds when it is not an integer from 1 to 31536000', async () => {
    const edge = startEdge();
    for (const ttlSeconds of [0, -1, 1.5, '60', null, 31_536_001]) {
      const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds } });
      expect(r.status, String(ttlSeconds)).toBe(400);
      expect(r.body.error.details).toEqual({
        field: 'ttlSeconds',
        fields: [{ field: 'ttlSeconds', message: 'must be an integer from 1 to 31536000' }],
      });
    }
    const max = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds: 31_536_000 } });
    expect(max.status).toBe(201);
  });

  it('answers token_expired from the moment a token expires, and unauthenticated for one never issued', async () => {
    const { edge, advance } = edgeWithClock();
    await edge.createHome('h1');
    const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds: 60 } });
    const token = r.body.token as string;
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    advance(59_999);
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200); // served from the token cache
    advance(1);
    const expired = await edge.json('GET', '/v1/homes/h1', { token });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('token_expired');
    expect(expired.res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const unknown = await edge.json('GET', '/v1/homes/h1', { token: 'app_never-issued' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('unauthenticated');
  });

  it('lists tokens for the admin only, without secrets, page by page', async () => {
    const { edge } = edgeWithClock();
    const minted: { token: string; tokenId: string; expiresAt: number | null }[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await edge.json('POST', '/v1/tokens', {
        body: { homes: [`h${i}`], scopes: ['read', 'control'], ...(i === 0 ? { ttlSeconds: 10 } : {}) },
      });
      minted.push(r.body);
    }
    const seen = [];
    let cursor: string | undefined;
    do {
      const page = await edge.json('GET', `/v1/tokens?limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      expect(JSON.stringify(page.body)).not.toMatch(/app_/);
      for (const m of minted) expect(JSON.stringify(page.body)).not.toContain(hashSecret(m.token));
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor !== undefined);
    expect(seen.map((t) => t.tokenId)).toEqual(minted.map((m) => m.tokenId).sort());
    const first = seen.find((t) => t.tokenId === minted[0]!.tokenId);
    expect(first).toEqual({
      tokenId: minted[0]!.tokenId,
      homes: ['h0'],
      scopes: ['read', 'control'],
      createdAt: T0,
      expiresAt: T0 + 10_000,
    });

    expect((await edge.json('GET', '/v1/tokens', { token: minted[1]!.token })).status).toBe(403);
    expect((await edge.json('GET', '/v1/tokens?limit=0')).body.error.details).toEqual({
      field: 'limit',
      fields: [{ field: 'limit', message: 'must be an integer from 1 to 200' }],
    });
    expect((await edge.json('GET', '/v1/tokens?limit=201')).body.error.details).toMatchObject({ field: 'limit' });
    expect((await edge.json('GET', '/v1/tokens?cursor=nope')).body.error.details).toEqual({
      field: 'cursor',
      fields: [{ field: 'cursor', message: 'must be a token id: tok_ and 24 hex digits' }],
    });
    expect((await edge.json('GET', '/v1/tokens?limit=0&cursor=nope')).body.error.details.fields).toEqual([
      { field: 'limit', message: 'must be an integer from 1 to 200' },
      { field: 'cursor', message: 'must be a token id: tok_ and 24 hex digits' },
    ]);
  });

  it('revokes a token by id: 204, then token_revoked on every request, 404 for a second try', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'] } });
    const { token, tokenId } = r.body as { token: string; tokenId: string };
    const other = await edge.mintToken(['h1'], ['read']);
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
    expect((await edge.json('DELETE', `/v1/tokens/${tokenId}`, { token: other })).status).toBe(403);

    expect((await edge.call('DELETE', `/v1/tokens/${tokenId}`)).status).toBe(204);
    const refused = await edge.json('GET', '/v1/homes/h1', { token });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('token_revoked');
    expect((await edge.json('GET', '/v1/homes/h1', { token: other })).status).toBe(200);
    expect((await edge.json('GET', '/v1/tokens')).body.items.map((t: { tokenId: string }) => t.tokenId)).toEqual([
      tokenIdOf(hashSecret(other)),
    ]);

    const again = await edge.json('DELETE', `/v1/tokens/${tokenId}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
    expect((await edge.json('DELETE', `/v1/tokens/tok_${'0'.repeat(24)}`)).status).toBe(404);
    for (const bad of ['tok_123', 'abc', `tok_${'A'.repeat(24)}`]) {
      const malformed = await edge.json('DELETE', `/v1/tokens/${bad}`);
      expect(malformed.status, bad).toBe(400);
      expect(malformed.body.error.details).toEqual({
        field: 'tokenId',
        fields: [{ field: 'tokenId', message: 'must be a token id: tok_ and 24 hex digits' }],
      });
    }
    // The compatible route answers the same code for a token revoked by id.
    expect((await edge.json('POST', '/v1/tokens/revoke', { body: { token } })).status).toBe(404);
  });

  it('answers 503 when the store cannot mint, list or revoke', async () => {
    const edge = startEdge();
    const token = await edge.mintToken(['h1'], ['read']);
    vi.spyOn(edge.credentials, 'putToken').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'] } })).status).toBe(503);
    vi.spyOn(edge.credentials, 'listTokens').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('GET', '/v1/tokens')).body.error.code).toBe('unavailable');
    vi.spyOn(edge.credentials, 'tokenDigest').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('DELETE', `/v1/tokens/${tokenIdOf(hashSecret(token))}`)).status).toBe(503);
  });

  it('ends an open event stream when its token expires, with token_expired', async () => {
    const edge = startEdge({ sseHeartbeatMs: 50 });
    await edge.createHome('h1');
    const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds: 1 } });
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token: r.body.token }));
    try {
      await vi.waitFor(() => expect(sse.ended()).toBe(true), { timeout: 5_000, interval: 50 });
      expect(sse.events().at(-1)).toMatchObject({ event: 'access.revoked', data: { error: { code: 'token_expired' } } });
    } finally {
      await sse.close();
    }
  });
});

describe('HTTP edge: token expiry on the edge’s clock', () => {
  it('ends an open event stream by the same clock the guard checks expiry with', async () => {
    let now = Date.now();
    const edge = startEdge({ sseHeartbeatMs: 50, clock: () => now });
    await edge.createHome('h1');
    const r = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'], ttlSeconds: 60 } });
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token: r.body.token }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sse.ended()).toBe(false);
      now += 61_000; // a new request would now get token_expired: so must the open stream
      expect((await edge.json('GET', '/v1/homes/h1', { token: r.body.token })).body.error.code).toBe('token_expired');
      await vi.waitFor(() => expect(sse.ended()).toBe(true), { timeout: 5_000, interval: 50 });
      expect(sse.events().at(-1)).toMatchObject({ event: 'access.revoked', data: { error: { code: 'token_expired' } } });
    } finally {
      await sse.close();
    }
  });
});

describe('HTTP edge: hub secrets', () => {
  it('registers a hub so that it is recorded only with a stored secret: a store failure records nothing and can be retried', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    vi.spyOn(edge.credentials, 'putHub').mockRejectedValueOnce(new Error('down'));
    const failed = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    expect(failed.status).toBe(503);
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual([]);
    const secret = await registerHub(edge, 'h1', 'hub1');
    expect(await edge.credentials.findHub(hashSecret(secret))).toEqual({ homeId: 'h1', hubId: 'hub1' });
  });

  it('takes a stored secret back when the home refuses the hub (exists, no home, bad id)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    const put = vi.spyOn(edge.credentials, 'putHub');
    const exists = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    expect(exists.status).toBe(409);
    const noHome = await edge.json('POST', '/v1/homes/nowhere/hubs', { body: { hubId: 'hub1' } });
    expect(noHome.status).toBe(404);
    expect(put).toHaveBeenCalledTimes(2);
    for (const [digest] of put.mock.calls) expect(await edge.credentials.findHub(digest)).toBeUndefined();
    const bad = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub/1' } });
    expect(bad.body.error.details).toMatchObject({ field: 'hubId' });
    expect(put).toHaveBeenCalledTimes(2); // refused before anything was stored
  });

  it('rotates a hub secret: the new one works, the old one until previousValidUntil', async () => {
    const { edge, now } = edgeWithClock();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 600 } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ hubId: 'hub1', secret: expect.stringMatching(/^hub_/), previousValidUntil: now() + 600_000 });
    expect(await edge.credentials.findHub(hashSecret(r.body.secret))).toEqual({ homeId: 'h1', hubId: 'hub1' });
    // The store's own clock ends it (see the store tests); here: the end it was given.
    expect(await edge.credentials.findHub(hashSecret(old))).toEqual({ homeId: 'h1', hubId: 'hub1', expiresAt: now() + 600_000 });
    const hubs = await edge.router.ask('home:h1', { type: 'home.hubs' });
    expect(hubs).toMatchObject({
      ok: true,
      value: { ok: true, value: [{ hubId: 'hub1', secretHash: hashSecret(r.body.secret), rotatedAt: expect.any(Number) }] },
    });
  });

  it('tells the hub actor exactly the secrets it retires in the store, one that predates the store index included', async () => {
    const { edge, now } = edgeWithClock();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    // As a secret stored by a release without the hub index: known to the home, not indexed.
    (edge.credentials as unknown as { hubSecrets: Map<string, Set<string>> }).hubSecrets.get('h1:hub1')!.delete(hashSecret(old));
    expect(await edge.credentials.hubSecretDigests('h1', 'hub1')).toEqual([]);
    const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 600 } });
    expect(r.status).toBe(200);
    expect(await edge.credentials.findHub(hashSecret(old))).toEqual({ homeId: 'h1', hubId: 'hub1', expiresAt: now() + 600_000 });
    const hub = await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' });
    expect(hub).toMatchObject({
      value: { value: { retiredSecrets: [{ credentialId: hubCredentialIdOf(hashSecret(old)), until: now() + 600_000 }] } },
    });
    // The next rotation retires the secret of this one (indexed), and not the new one.
    const next = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret');
    const after = await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' });
    const ids = (after as { value: { value: HubState } }).value.value.retiredSecrets?.map((x) => x.credentialId);
    expect(ids).toEqual([hubCredentialIdOf(hashSecret(old)), hubCredentialIdOf(hashSecret(r.body.secret))]);
    expect(ids).not.toContain(hubCredentialIdOf(hashSecret(next.body.secret)));
  });

  it('rotates a hub holding more secrets than one rotation may name (frequent rotations with long grace periods)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    const many = [hashSecret(old), ...Array.from({ length: 1_100 }, (_, i) => hashSecret(`in-grace-${i}`))];
    vi.spyOn(edge.credentials, 'hubSecretDigests').mockResolvedValueOnce(many);
    const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 60 } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const hub = (await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' })) as { value: { value: HubState } };
    expect(hub.value.value.retiredSecrets).toHaveLength(RETIRED_SECRETS_KEPT);
    expect(await edge.credentials.findHub(hashSecret(old))).toMatchObject({ expiresAt: expect.any(Number) });
  });

  it('ends the old secret at once without a grace period (an empty body is fine)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret');
    expect(r.status).toBe(200);
    expect(await edge.credentials.findHub(hashSecret(old))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(r.body.secret))).toBeDefined();
  });

  it('reads an empty rotation body, sent with any type or none, as {}; refuses one that is not a JSON object', async () => {
    const { edge } = edgeWithClock();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    const rotate = (body: string | undefined, type?: string) =>
      edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', {
        ...(body === undefined ? {} : { body }),
        ...(type === undefined ? {} : { headers: { 'content-type': type } }),
      });
    // An empty body is `{}` whatever its type (as before the schemas: a body-less `curl -X POST` may still send one).
    for (const [body, type] of [
      [undefined],
      [''],
      [' \n'],
      ['{}'],
      ['', 'application/json; charset=utf-8'],
      ['', 'application/x-www-form-urlencoded'],
      [' ', 'text/plain'],
    ] as const) {
      const r = await rotate(body, type);
      expect(r.status, `${String(body)} ${String(type)} ${JSON.stringify(r.body)}`).toBe(200);
      expect(r.body.previousValidUntil).toBe(T0); // no grace period
    }
    expect((await rotate('{"graceSeconds":600}')).body.previousValidUntil).toBe(T0 + 600_000);
    for (const [body, message] of [
      ['[]', 'body must be a JSON object'],
      ['{"graceSeconds":', 'body is not valid JSON'],
      ['null', 'body must be a JSON object'],
    ] as const) {
      const r = await rotate(body);
      expect(r.status, body).toBe(400);
      expect(r.body.error, body).toMatchObject({ code: 'invalid_argument', message, details: { field: 'body' } });
    }
    // A body that is not declared JSON is refused.
    for (const body of ['graceSeconds=5', '{"graceSeconds":5}']) {
      const r = await rotate(body, 'application/x-www-form-urlencoded');
      expect(r.status, body).toBe(415);
      expect(r.body.error).toMatchObject({ code: 'unsupported_media_type', details: { field: 'Content-Type' } });
    }
    // Every bad field is listed, an unknown one first (as before the schemas); the first is named in the message.
    const several = await rotate(JSON.stringify({ graceSeconds: -1, grace: 5 }));
    expect(several.status).toBe(400);
    expect(several.body.error.message).toBe('grace is not a known field (expected graceSeconds) (and 1 more: see details.fields)');
    expect(several.body.error.details).toEqual({
      field: 'grace',
      fields: [
        { field: 'grace', message: 'is not a known field (expected graceSeconds)' },
        { field: 'graceSeconds', message: 'must be an integer from 0 to 2592000' },
      ],
    });
  });

  it('keeps both new secrets of two racing rotations working and retires the old one (the hub is never left without one)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    // Both rotations read the hub's secrets before either stores its own, as when they race.
    const read = edge.credentials.hubSecretDigests.bind(edge.credentials);
    let arrived = 0;
    let bothRead!: () => void;
    const barrier = new Promise<void>((resolve) => (bothRead = resolve));
    vi.spyOn(edge.credentials, 'hubSecretDigests').mockImplementation(async (homeId, hubId) => {
      const digests = await read(homeId, hubId);
      if (++arrived === 2) bothRead();
      await barrier;
      return digests;
    });
    const [a, b] = await Promise.all([
      edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 0 } }),
      edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 0 } }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(await edge.credentials.findHub(hashSecret(old))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(a.body.secret))).toEqual({ homeId: 'h1', hubId: 'hub1' });
    expect(await edge.credentials.findHub(hashSecret(b.body.secret))).toEqual({ homeId: 'h1', hubId: 'hub1' });
    // And the hub actor, told of both rotations, welcomes the hub on either new secret.
    const ingress = await hubIngressOf(edge);
    try {
      for (const secret of [a.body.secret as string, b.body.secret as string]) {
        const hub = new HubClient(ingress.address, secret);
        hub.hello('hub1', 'h1', [{ deviceId: 'lamp', type: 'light', capabilities: ['on'] }]);
        expect((await hub.welcome()).last_durable_seq).toBe('0');
        hub.close();
        await vi.waitFor(async () =>
          expect(await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' })).toMatchObject({
            value: { value: { connected: false } },
          }),
        );
      }
      const refused = new HubClient(ingress.address, old);
      expect(await refused.ended()).toMatchObject({ code: status.UNAUTHENTICATED });
      refused.close();
    } finally {
      await ingress.close();
    }
    // The next rotation retires both.
    vi.restoreAllMocks();
    const c = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret');
    expect(await edge.credentials.findHub(hashSecret(a.body.secret))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(b.body.secret))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(c.body.secret))).toBeDefined();
  });

  it('keeps the old secret working when a rotation fails half way, and completes on retry', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    vi.spyOn(edge.credentials, 'retireHubSecrets').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 0 } })).status).toBe(503);
    expect(await edge.credentials.findHub(hashSecret(old))).toBeDefined();
    const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 0 } });
    expect(r.status).toBe(200);
    expect(await edge.credentials.findHub(hashSecret(old))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(r.body.secret))).toBeDefined();
  });

  it('refuses a rotation of an unknown hub or home (404), a bad grace period (400), an app token (403)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    const put = vi.spyOn(edge.credentials, 'putHub');
    const noHub = await edge.json('POST', '/v1/homes/h1/hubs/hub9/secret', { body: {} });
    expect(noHub.status).toBe(404);
    expect((await edge.json('POST', '/v1/homes/nowhere/hubs/hub1/secret')).status).toBe(404);
    for (const [digest] of put.mock.calls) expect(await edge.credentials.findHub(digest)).toBeUndefined();
    for (const graceSeconds of [-1, 1.5, '60', 2_592_001]) {
      const r = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds } });
      expect(r.status, String(graceSeconds)).toBe(400);
      expect(r.body.error.details).toEqual({
        field: 'graceSeconds',
        fields: [{ field: 'graceSeconds', message: 'must be an integer from 0 to 2592000' }],
      });
    }
    expect((await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { grace: 5 } })).body.error.details).toEqual({
      field: 'grace',
      fields: [{ field: 'grace', message: 'is not a known field (expected graceSeconds)' }],
    });
    const app = await edge.mintToken(['h1'], ['read', 'control', 'rules']);
    expect((await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { token: app })).status).toBe(403);
  });
});

describe('HTTP edge: deleting hubs and homes', () => {
  it('deletes a hub: every secret of it goes, the home forgets it, its actor is told (its session ends)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const first = await registerHub(edge, 'h1', 'hub1');
    const rotated = (await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: { graceSeconds: 600 } })).body.secret as string;
    const kept = await registerHub(edge, 'h1', 'hub2');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    expect(await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' })).toMatchObject({ value: { value: { connected: true } } });

    expect((await edge.call('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(204);
    expect(await edge.credentials.findHub(hashSecret(first))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(rotated))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(kept))).toBeDefined();
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual(['hub2']);
    await vi.waitFor(async () =>
      expect(await edge.router.ask(hubActorId('h1', 'hub1'), { type: 'hub.get' })).toMatchObject({
        value: { value: { connected: false } },
      }),
    );
    expect((await edge.json('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(404);
    expect((await edge.json('DELETE', '/v1/homes/nowhere/hubs/hub1')).status).toBe(404);
  });

  it('keeps the hub when its secrets cannot be removed (503), so a retry finishes', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const secret = await registerHub(edge, 'h1', 'hub1');
    vi.spyOn(edge.credentials, 'removeHub').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(503);
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual(['hub1']);
    expect((await edge.call('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(204);
    expect(await edge.credentials.findHub(hashSecret(secret))).toBeUndefined();
  });

  it('removes the new secret of a rotation the home accepts while the hub is being deleted', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const old = await registerHub(edge, 'h1', 'hub1');
    // The delete pauses after its first removal of the hub's secrets, before the home forgets the
    // hub: a rotation then stores its secret and the home, still holding the hub, accepts it.
    const remove = edge.credentials.removeHub.bind(edge.credentials);
    let firstDone!: () => void;
    const paused = new Promise<void>((resolve) => (firstDone = resolve));
    let release!: () => void;
    const resume = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    vi.spyOn(edge.credentials, 'removeHub').mockImplementation(async (...args) => {
      await remove(...args);
      if (++calls === 1) {
        firstDone();
        await resume;
      }
    });
    const deleting = edge.call('DELETE', '/v1/homes/h1/hubs/hub1');
    await paused;
    const rotated = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret');
    expect(rotated.status).toBe(200);
    release();
    expect((await deleting).status).toBe(204);
    expect(await edge.credentials.findHub(hashSecret(old))).toBeUndefined();
    expect(await edge.credentials.findHub(hashSecret(rotated.body.secret))).toBeUndefined();
    expect(await edge.credentials.hubSecretDigests('h1', 'hub1')).toEqual([]);
    // A hub registered anew under the id works on its own secret only.
    vi.restoreAllMocks();
    const fresh = await registerHub(edge, 'h1', 'hub1');
    expect(await edge.credentials.hubSecretDigests('h1', 'hub1')).toEqual([hashSecret(fresh)]);
  });

  it('takes back the new secret of a rotation the home refuses because the hub was deleted meanwhile', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    // The rotation pauses between storing its secret and asking the home; the delete completes.
    const put = edge.credentials.putHub.bind(edge.credentials);
    const stored: string[] = [];
    let storedOne!: () => void;
    const paused = new Promise<void>((resolve) => (storedOne = resolve));
    let release!: () => void;
    const resume = new Promise<void>((resolve) => (release = resolve));
    vi.spyOn(edge.credentials, 'putHub').mockImplementation(async (digest, credential) => {
      await put(digest, credential);
      stored.push(digest);
      storedOne();
      await resume;
    });
    const rotating = edge.json('POST', '/v1/homes/h1/hubs/hub1/secret');
    await paused;
    expect((await edge.call('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(204);
    release();
    expect((await rotating).status).toBe(404);
    expect(stored).toHaveLength(1);
    expect(await edge.credentials.findHub(stored[0]!)).toBeUndefined();
    expect(await edge.credentials.hubSecretDigests('h1', 'hub1')).toEqual([]);
  });

  it('removes secrets still indexed under a hub the home no longer has (a retry after a partial delete), 404 once none is left', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    // The home forgets the hub, but the last removal of its secrets fails (after a rotation whose
    // outcome was unknown stored one).
    const remove = edge.credentials.removeHub.bind(edge.credentials);
    let calls = 0;
    vi.spyOn(edge.credentials, 'removeHub').mockImplementation(async (...args) => {
      if (++calls === 2) {
        await edge.credentials.putHub(hashSecret('hub_left_behind'), { homeId: 'h1', hubId: 'hub1' });
        throw new Error('down');
      }
      await remove(...args);
    });
    expect((await edge.json('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(503);
    expect((await edge.json('GET', '/v1/homes/h1')).body.hubs).toEqual([]);
    expect(await edge.credentials.findHub(hashSecret('hub_left_behind'))).toBeDefined();
    expect((await edge.call('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(204);
    expect(await edge.credentials.findHub(hashSecret('hub_left_behind'))).toBeUndefined();
    expect((await edge.json('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(404);
  });

  it('deletes a home: 404 after, hub secrets gone, devices refuse late reports, a home created anew starts empty', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const secret = await registerHub(edge, 'h1', 'hub1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    await edge.report('h1', 'd1', 1, { on: true });
    const app = await edge.mintToken(['h1'], ['read', 'control', 'rules']);
    expect((await edge.json('DELETE', '/v1/homes/h1', { token: app })).status).toBe(403);

    expect((await edge.call('DELETE', '/v1/homes/h1')).status).toBe(204);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(404);
    expect(await edge.credentials.findHub(hashSecret(secret))).toBeUndefined();
    await vi.waitFor(async () => expect((await edge.json('GET', '/v1/homes/h1/devices/d1')).status).toBe(404));
    const late = await edge.router.ask(deviceActorId('h1', 'd1'), { type: 'report', seq: 2, tsMs: Date.now(), attributes: { on: false } });
    expect(late).toMatchObject({ ok: true, value: { ok: false, error: { code: 'not_found' } } });
    expect((await edge.json('DELETE', '/v1/homes/h1')).status).toBe(404);

    await edge.createHome('h1');
    expect((await edge.json('GET', '/v1/homes/h1')).body).toMatchObject({ devices: [], hubs: [] });
    await registerHub(edge, 'h1', 'hub2');
    await edge.attachDevices('h1', 'hub2', [{ deviceId: 'd1' }]);
    const shadow = await edge.json('GET', '/v1/homes/h1/devices/d1');
    // Nothing of the old device is kept but its version, which only grows (a hub may ignore a desired
    // delta whose version is lower than one it applied).
    expect(shadow.body).toMatchObject({ reported: {}, online: false });
    expect((shadow.body as { version: number }).version).toBeGreaterThan(1);
  });

  it('takes a deleted home from the tokens granted it: a home created anew under its id is out of their reach', async () => {
    const { edge, advance } = edgeWithClock();
    await edge.createHome('h1');
    await edge.createHome('h2');
    const old = await edge.mintToken(['h1', 'h2'], ['read', 'control', 'rules']);
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token: old }));
    try {
      expect((await edge.json('GET', '/v1/homes/h1', { token: old })).status).toBe(200);
      advance(1);
      expect((await edge.call('DELETE', '/v1/homes/h1')).status).toBe(204);
      advance(1);
      await edge.createHome('h1');
      const refused = await edge.json('GET', '/v1/homes/h1', { token: old });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/home h1 was deleted/) });
      expect((await edge.json('GET', '/v1/homes/h1/devices', { token: old })).status).toBe(403);
      // Its open stream of the home ends too.
      await vi.waitFor(() => expect(sse.ended()).toBe(true), { timeout: 5_000, interval: 50 });
      expect(sse.events().at(-1)).toMatchObject({ event: 'access.revoked', data: { error: { code: 'forbidden' } } });
      // Its other home is unaffected; a token minted after the home was created anew works.
      expect((await edge.json('GET', '/v1/homes/h2', { token: old })).status).toBe(200);
      advance(1);
      const fresh = await edge.mintToken(['h1'], ['read']);
      expect((await edge.json('GET', '/v1/homes/h1', { token: fresh })).status).toBe(200);
    } finally {
      await sse.close();
    }
  });

  it('answers 503 when whether a home was deleted cannot be read', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const token = await edge.mintToken(['h1'], ['read']);
    vi.spyOn(edge.credentials, 'homeDeletedAt').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('GET', '/v1/homes/h1', { token })).body.error.code).toBe('unavailable');
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(200);
  });

  it('deletes nothing and marks nothing for a home that does not exist; a store failure leaves the home (503)', async () => {
    const edge = startEdge();
    const mark = vi.spyOn(edge.credentials, 'markHomeDeleted');
    expect((await edge.json('DELETE', '/v1/homes/nowhere')).status).toBe(404);
    expect(mark).not.toHaveBeenCalled();
    await edge.createHome('h1');
    mark.mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('DELETE', '/v1/homes/h1')).status).toBe(503);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(200);
    expect((await edge.call('DELETE', '/v1/homes/h1')).status).toBe(204);
    expect(mark).toHaveBeenCalledTimes(2);
  });

  it('keeps the home when its hub secrets cannot be removed (503)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await registerHub(edge, 'h1', 'hub1');
    vi.spyOn(edge.credentials, 'removeHub').mockRejectedValueOnce(new Error('down'));
    expect((await edge.json('DELETE', '/v1/homes/h1')).status).toBe(503);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(200);
    expect((await edge.call('DELETE', '/v1/homes/h1')).status).toBe(204);
  });
});
