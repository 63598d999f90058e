import { afterEach, describe, expect, it } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import { closeEdges, startEdge, type Edge } from './harness.ts';

afterEach(closeEdges);

async function homeWithLights(n = 2): Promise<Edge> {
  const edge = startEdge();
  await edge.createHome('h1');
  await edge.attachDevices(
    'h1',
    'hub1',
    Array.from({ length: n }, (_, i) => ({ deviceId: `d${i + 1}` })),
  );
  return edge;
}

describe('HTTP edge: device list', () => {
  it('pages devices by id with an opaque cursor', async () => {
    const edge = await homeWithLights(5);
    const first = await edge.json('GET', '/v1/homes/h1/devices?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([
      { deviceId: 'd1', type: 'light', hubId: 'hub1' },
      { deviceId: 'd2', type: 'light', hubId: 'hub1' },
    ]);
    const ids = first.body.items.map((d: { deviceId: string }) => d.deviceId);
    let cursor: string | null = first.body.nextCursor;
    while (cursor !== null) {
      const page = await edge.json('GET', `/v1/homes/h1/devices?limit=2&cursor=${encodeURIComponent(cursor)}`);
      expect(page.status).toBe(200);
      ids.push(...page.body.items.map((d: { deviceId: string }) => d.deviceId));
      cursor = page.body.nextCursor;
    }
    expect(ids).toEqual(['d1', 'd2', 'd3', 'd4', 'd5']);
    expect((await edge.json('GET', '/v1/homes/h1/devices')).body).toMatchObject({ nextCursor: null });
  });

  it('rejects a bad limit or cursor naming it', async () => {
    const edge = await homeWithLights(1);
    for (const limit of ['0', '201', 'ten', '-1', '1.5', '']) {
      const r = await edge.json('GET', `/v1/homes/h1/devices?limit=${limit}`);
      expect(r.status, limit).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'limit' } });
    }
    const badCursor = await edge.json('GET', '/v1/homes/h1/devices?cursor=%2A%2A');
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.details).toMatchObject({ field: 'cursor', fields: [{ field: 'cursor' }] });
    expect((await edge.json('GET', '/v1/homes/h9/devices')).status).toBe(404);
  });
});

describe('HTTP edge: shadows', () => {
  it('serves the shadow with an ETag and answers 304 to a matching If-None-Match', async () => {
    const edge = await homeWithLights(1);
    await edge.report('h1', 'd1', 1, { on: false, brightness: 10 });
    const r = await edge.json('GET', '/v1/homes/h1/devices/d1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ deviceId: 'd1', type: 'light', reported: { on: { value: false } }, version: 1, online: true });
    expect(r.res.headers.get('etag')).toBe('"1"');
    const cached = await edge.call('GET', '/v1/homes/h1/devices/d1', { headers: { 'if-none-match': '"1"' } });
    expect(cached.status).toBe(304);
    expect(cached.headers.get('etag')).toBe('"1"');
    expect(await cached.text()).toBe('');
    const stale = await edge.call('GET', '/v1/homes/h1/devices/d1', { headers: { 'if-none-match': '"0", W/"7"' } });
    expect(stale.status).toBe(200);
  });

  it('sets desired state with If-Match: the new ETag works, a stale one gets 412', async () => {
    const edge = await homeWithLights(1);
    const v0 = await edge.json('GET', '/v1/homes/h1/devices/d1');
    const etag = v0.res.headers.get('etag')!;
    const set = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { on: true } }, headers: { 'if-match': etag } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ desired: { on: true }, delta: { on: true } });
    const etag2 = set.res.headers.get('etag')!;
    expect(etag2).toBe(`"${set.body.version}"`);
    expect(etag2).not.toBe(etag);

    const stale = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { on: false } }, headers: { 'if-match': etag } });
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('version_conflict');

    const fresh = await edge.json('PATCH', '/v1/homes/h1/devices/d1', {
      body: { desired: { on: false, brightness: 40 } },
      headers: { 'if-match': etag2 },
    });
    expect(fresh.status).toBe(200);
    const removed = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { brightness: null } } });
    expect(removed.body.desired).toEqual({ on: false });
  });

  it('rejects malformed If-Match, bad desired values and unknown devices', async () => {
    const edge = await homeWithLights(1);
    for (const ifMatch of ['1', 'W/"1"', '"1", "2"', '"x"']) {
      const r = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { on: true } }, headers: { 'if-match': ifMatch } });
      expect(r.status, ifMatch).toBe(400);
      expect(r.body.error.details).toMatchObject({ field: 'If-Match', fields: [{ field: 'If-Match' }] });
    }
    const badValue = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { on: { nested: 1 } } } });
    expect(badValue.status).toBe(400);
    expect(badValue.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'desired.on' } });
    const notObject = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: [1] } });
    expect(notObject.body.error.details).toMatchObject({ field: 'desired', fields: [{ field: 'desired' }] });
    const extra = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: {}, reported: {} } });
    expect(extra.body.error.details).toMatchObject({ field: 'reported', fields: [{ field: 'reported' }] });
    expect(extra.body.error.message).toBe('reported is not a known field (expected desired)');
    // The schema answers with the device's phrasing.
    expect(notObject.body.error.message).toBe('desired must be an object');
    const missing = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: {} });
    expect(missing.body.error).toMatchObject({ message: 'desired must be an object', details: { field: 'desired' } });
    // Every bad entry at once; `__proto__` refused as the device refuses it, not dropped.
    const several = await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: JSON.parse('{"desired":{"on":[1],"":2,"__proto__":3}}') });
    expect(several.status).toBe(400);
    expect(several.body.error.details.fields).toEqual(
      expect.arrayContaining([
        { field: 'desired.on', message: 'must be a number, boolean or string' },
        { field: 'desired.__proto__', message: 'is a reserved name' },
      ]),
    );
    expect(several.body.error.details.fields).toHaveLength(3);

    expect((await edge.json('GET', '/v1/homes/h1/devices/ghost')).status).toBe(404);
    const ghost = await edge.json('PATCH', '/v1/homes/h1/devices/ghost', { body: { desired: { on: true } } });
    expect(ghost.status).toBe(404);
    expect(ghost.body.error.code).toBe('not_found');
    // The refused write left nothing behind.
    expect((await edge.json('GET', '/v1/homes/h1/devices/ghost')).status).toBe(404);
  });
});

describe('HTTP edge: commands', () => {
  it('issues a command (202), reads its status, and is idempotent by Idempotency-Key', async () => {
    const edge = await homeWithLights(1);
    const body = { name: 'set', params: { on: true }, ttlMs: 60_000 };
    const first = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body, headers: { 'idempotency-key': 'tap-1' } });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ commandId: 'd1~tap-1', status: 'sent' });
    expect(first.res.headers.get('location')).toBe('/v1/homes/h1/commands/d1~tap-1');
    // A retry of the same command answers the first; another command under the key is a conflict.
    const again = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body, headers: { 'idempotency-key': 'tap-1' } });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    const conflicting = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', {
      body: { ...body, params: { on: false } },
      headers: { 'idempotency-key': 'tap-1' },
    });
    expect(conflicting.status).toBe(409);
    expect(conflicting.body.error).toMatchObject({ code: 'idempotency_conflict', details: { field: 'params' } });
    const record = await edge.json('GET', `/v1/homes/h1/commands/${encodeURIComponent('d1~tap-1')}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({
      commandId: 'd1~tap-1',
      name: 'set',
      params: { on: true },
      status: 'sent',
      source: { kind: 'app' },
      depth: 0,
    });
    expect(record.body.expiresAtMs - record.body.createdAt).toBe(60_000);

    const other = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body: { name: 'toggle' } });
    expect(other.status).toBe(202);
    expect(other.body.commandId).toMatch(/^d1~[A-Za-z0-9_-]{16}$/);
    expect(other.body.commandId).not.toBe('d1~tap-1');
    const otherRecord = await edge.json('GET', `/v1/homes/h1/commands/${other.body.commandId}`);
    expect(otherRecord.body.expiresAtMs - otherRecord.body.createdAt).toBe(30_000);
    expect(otherRecord.body.params).toEqual({});
  });

  it('shows the result map the hub sent with the command result on GET …/commands/{commandId}', async () => {
    const edge = await homeWithLights(1);
    const issued = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body: { name: 'dim', params: { level: 40 } } });
    const id: string = issued.body.commandId;
    const before = await edge.json('GET', `/v1/homes/h1/commands/${id}`);
    expect(before.body).not.toHaveProperty('result');
    const done = await edge.stack.router.ask(deviceActorId('h1', 'd1'), {
      type: 'command.result',
      commandId: id,
      ok: true,
      result: { level: 40, clamped: false, unit: 'percent' },
    });
    expect(done).toMatchObject({ ok: true, value: { ok: true } });
    const after = await edge.json('GET', `/v1/homes/h1/commands/${id}`);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ status: 'succeeded', result: { level: 40, clamped: false, unit: 'percent' } });
  });

  it('rejects bad commands naming the field, and answers 404 for unknown devices and commands', async () => {
    const edge = await homeWithLights(1);
    const cases: [unknown, string][] = [
      [{ params: {} }, 'name'],
      [{ name: 'set', ttlMs: 0 }, 'ttlMs'],
      [{ name: 'set', params: { on: [true] } }, 'params.on'],
      [{ name: 'set', urgent: true }, 'urgent'],
    ];
    for (const [body, field] of cases) {
      const r = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.details).toMatchObject({ field, fields: [{ field }] });
    }
    const unknown = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body: { name: 'set', urgent: true } });
    expect(unknown.body.error.message).toBe('urgent is not a known field (expected name, params, ttlMs)');
    const badName = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body: { name: 7 } });
    expect(badName.body.error.message).toBe('name must be a string of 1-64 characters');
    // Every unknown field is named, one entry each.
    const two = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', { body: { name: 'set', urgent: true, retries: 3 } });
    expect(two.body.error.details.fields).toEqual([
      { field: 'urgent', message: 'is not a known field (expected name, params, ttlMs)' },
      { field: 'retries', message: 'is not a known field (expected name, params, ttlMs)' },
    ]);
    expect(two.body.error.message).toBe('urgent is not a known field (expected name, params, ttlMs) (and 1 more: see details.fields)');
    const badKey = await edge.json('POST', '/v1/homes/h1/devices/d1/commands', {
      body: { name: 'set' },
      headers: { 'idempotency-key': 'a~b' },
    });
    expect(badKey.status).toBe(400);
    expect(badKey.body.error.details).toMatchObject({ field: 'Idempotency-Key', fields: [{ field: 'Idempotency-Key' }] });
    expect((await edge.json('POST', '/v1/homes/h1/devices/ghost/commands', { body: { name: 'set' } })).status).toBe(404);
    expect((await edge.json('GET', '/v1/homes/h1/commands/not-a-command-id')).status).toBe(404);
    expect((await edge.json('GET', '/v1/homes/h1/commands/d1~never')).status).toBe(404);
    expect((await edge.json('GET', '/v1/homes/h1/commands/ghost~never')).status).toBe(404);
  });
});

describe('HTTP edge: device routes in the API document', () => {
  it('documents the conditional and idempotency headers the routes read, and their statuses', async () => {
    const doc = (await startEdge().json('GET', '/openapi.json', { token: null })).body;
    const shadow = doc.paths['/v1/homes/{homeId}/devices/{deviceId}'];
    const names = (op: { parameters: { name: string; in: string }[] }) => op.parameters.map((p) => `${p.in}:${p.name}`);
    expect(names(shadow.get).sort()).toEqual(['header:If-None-Match', 'path:deviceId', 'path:homeId']);
    expect(Object.keys(shadow.get.responses)).toEqual(expect.arrayContaining(['200', '304', '404']));
    expect(shadow.get.responses['200'].headers.ETag).toBeDefined();
    expect(names(shadow.patch)).toContain('header:If-Match');
    expect(shadow.patch.responses['412'].content['application/json'].examples.version_conflict).toBeDefined();
    const commands = doc.paths['/v1/homes/{homeId}/devices/{deviceId}/commands'].post;
    expect(names(commands)).toContain('header:Idempotency-Key');
    expect(commands.responses['202'].headers.Location).toBeDefined();
    expect(commands.responses['409'].content['application/json'].examples.idempotency_conflict).toBeDefined();
  });
});
