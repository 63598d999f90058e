import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditLog, AuditPage, AuditRecord } from '../../../edge-api/audit/audit-log.ts';
import { actionOf, REDACTED } from '../../../edge-api/audit/audit-writes.ts';
import { MemoryAuditLog } from '../../../edge-api/audit/memory-audit-log.ts';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { hashSecret, tokenIdOf } from '../../../edge-api/auth/secrets.ts';
import { EventFeed } from '../../../edge-api/events/event-feed.ts';
import { createHttpApp, type HttpDeps } from '../../../edge-api/http/create-http-app.ts';
import { createActorStack, type ActorStack } from '../../../node/actor-stack.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import { ADMIN, closeEdges, startEdge, type Edge } from './harness.ts';

const own: ActorStack[] = [];

afterEach(async () => {
  await closeEdges();
  await Promise.all(own.splice(0).map((s) => s.host.close()));
});

const nightLight = {
  id: 'night-light',
  name: 'Light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
};

/** Every entry of the cluster's log (or one home's, read as admin), newest first, through the API. */
async function entries(edge: Edge, home?: string): Promise<Record<string, any>[]> {
  const path = home === undefined ? '/v1/admin/audit?limit=500' : `/v1/homes/${home}/audit?limit=500`;
  const r = await edge.json('GET', path);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.nextCursor).toBeNull();
  return r.body.items;
}

/** What an entry says, without its id and times. */
const gist = (e: Record<string, any>) => ({
  who: e.who,
  action: e.action,
  target: e.target,
  status: e.status,
  outcome: e.outcome,
  code: e.code,
});

async function homeWithDevices(): Promise<Edge> {
  const edge = startEdge();
  await edge.createHome('h1');
  await edge.attachDevices('h1', 'hub1', [{ deviceId: 'motion1', type: 'motion_sensor' }, { deviceId: 'light1' }]);
  return edge;
}

/** An edge over its own actor stack with the given audit log and node id (what the harness leaves at their defaults). */
function edgeWith(audit: AuditLog, nodeId: string, extra: Partial<HttpDeps> = {}) {
  const registry = extra.registry ?? new Registry();
  const feed = new EventFeed();
  const stack = createActorStack({
    store: new MemoryStore(),
    logger: silentLogger,
    registry,
    hubCommands: { send: () => {} },
    publish: () => {},
  });
  own.push(stack);
  const app = createHttpApp({
    router: stack.router,
    credentials: new MemoryCredentialStore(),
    feed,
    adminToken: ADMIN,
    registry,
    logger: silentLogger,
    readiness: () => ({ ready: true, checks: {} }),
    maxBodyBytes: 64 * 1024,
    audit,
    nodeId,
    ...extra,
  });
  return async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  };
}

describe('HTTP edge: audit of admin actions and app writes', () => {
  it('appends who, what, which, outcome, when and node for each admin action and app write, and no reads', async () => {
    const edge = await homeWithDevices();
    const hub = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub2' } });
    expect(hub.status).toBe(201);
    const minted = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read', 'control', 'rules'] } });
    expect(minted.status).toBe(201);
    const app = minted.body.token as string;
    const appId = tokenIdOf(hashSecret(app));

    expect((await edge.json('PATCH', '/v1/homes/h1/devices/light1', { token: app, body: { desired: { on: true } } })).status).toBe(200);
    const command = await edge.json('POST', '/v1/homes/h1/devices/light1/commands', {
      token: app,
      body: { name: 'set', params: { on: false } },
    });
    expect(command.status).toBe(202);
    expect((await edge.json('PUT', '/v1/homes/h1/rules/night-light', { token: app, body: nightLight })).status).toBe(201);
    expect((await edge.call('DELETE', '/v1/homes/h1/rules/night-light', { token: app })).status).toBe(204);
    // Reads change nothing and are not audited.
    expect((await edge.json('GET', '/v1/homes/h1/devices/light1', { token: app })).status).toBe(200);
    expect((await edge.json('GET', '/v1/homes/h1')).status).toBe(200);
    // Without a cluster the ring routes refuse; the refusal is audited with its code.
    expect((await edge.json('POST', '/v1/admin/ring/plan', { body: { drain: ['n1'] } })).status).toBe(409);
    expect((await edge.call('POST', '/v1/tokens/revoke', { body: { token: app } })).status).toBe(204);

    const before = Date.now();
    const all = await entries(edge);
    expect(all.map(gist)).toEqual([
      { who: 'admin', action: 'tokens.revoke.post', target: { tokenId: appId }, status: 204, outcome: 'succeeded', code: undefined },
      { who: 'admin', action: 'admin.ring.plan.post', target: {}, status: 409, outcome: 'refused', code: 'failed_precondition' },
      {
        who: appId,
        action: 'homes.rules.delete',
        target: { homeId: 'h1', ruleId: 'night-light' },
        status: 204,
        outcome: 'succeeded',
        code: undefined,
      },
      {
        who: appId,
        action: 'homes.rules.put',
        target: { homeId: 'h1', ruleId: 'night-light' },
        status: 201,
        outcome: 'succeeded',
        code: undefined,
      },
      {
        who: appId,
        action: 'homes.devices.commands.post',
        target: { homeId: 'h1', deviceId: 'light1', commandId: command.body.commandId },
        status: 202,
        outcome: 'succeeded',
        code: undefined,
      },
      {
        who: appId,
        action: 'homes.devices.patch',
        target: { homeId: 'h1', deviceId: 'light1' },
        status: 200,
        outcome: 'succeeded',
        code: undefined,
      },
      {
        who: 'admin',
        action: 'tokens.post',
        target: { tokenId: appId, homes: ['h1'], scopes: ['read', 'control', 'rules'] },
        status: 201,
        outcome: 'succeeded',
        code: undefined,
      },
      {
        who: 'admin',
        action: 'homes.hubs.post',
        target: { homeId: 'h1', hubId: 'hub2' },
        status: 201,
        outcome: 'succeeded',
        code: undefined,
      },
      { who: 'admin', action: 'homes.put', target: { homeId: 'h1' }, status: 201, outcome: 'succeeded', code: undefined },
    ]);
    for (const e of all) {
      expect(e.node).toBe(hostname());
      expect(e.at).toBeLessThanOrEqual(before);
      expect(e.time).toBe(new Date(e.at as number).toISOString());
      expect(e.id).toMatch(/^\d+-\d+$/);
    }
    expect(all.find((e) => e.action === 'homes.devices.commands.post')).toMatchObject({
      method: 'POST',
      route: '/v1/homes/:homeId/devices/:deviceId/commands',
    });
    // The home's log holds the entries whose path named the home.
    expect((await entries(edge, 'h1')).map((e) => e.action)).toEqual(all.filter((e) => e.target.homeId === 'h1').map((e) => e.action));
  });

  it('audits a refused write with the token that tried (403), but not an unauthenticated one (401)', async () => {
    const edge = await homeWithDevices();
    await edge.createHome('h2');
    const h1Control = await edge.mintToken(['h1'], ['read', 'control']);
    const id = tokenIdOf(hashSecret(h1Control));
    const baseline = (await entries(edge)).length;

    const otherHome = await edge.json('PATCH', '/v1/homes/h2/devices/light1', { token: h1Control, body: { desired: { on: true } } });
    expect(otherHome.status).toBe(403);
    const noRulesScope = await edge.json('PUT', '/v1/homes/h1/rules/night-light', { token: h1Control, body: nightLight });
    expect(noRulesScope.status).toBe(403);
    const adminOnly = await edge.json('PUT', '/v1/homes/h1', { token: h1Control, body: { name: 'mine now' } });
    expect(adminOnly.status).toBe(403);
    for (const token of [null, 'app_not-a-token']) {
      expect((await edge.json('PUT', '/v1/homes/h1', { token, body: { name: 'x' } })).status).toBe(401);
    }

    const all = await entries(edge);
    expect(all).toHaveLength(baseline + 3);
    expect(all.slice(0, 3).map(gist)).toEqual([
      { who: id, action: 'homes.put', target: { homeId: 'h1' }, status: 403, outcome: 'refused', code: 'forbidden' },
      {
        who: id,
        action: 'homes.rules.put',
        target: { homeId: 'h1', ruleId: 'night-light' },
        status: 403,
        outcome: 'refused',
        code: 'forbidden',
      },
      {
        who: id,
        action: 'homes.devices.patch',
        target: { homeId: 'h2', deviceId: 'light1' },
        status: 403,
        outcome: 'refused',
        code: 'forbidden',
      },
    ]);
    // The attempt on h2 is in the cluster's log only: a token not granted h2 cannot write into h2's log.
    expect((await entries(edge, 'h2')).map(gist)).toEqual([
      { who: 'admin', action: 'homes.put', target: { homeId: 'h2' }, status: 201, outcome: 'succeeded', code: undefined },
    ]);
    // Nor into h1's with a 403 for a scope it lacks: a refusal never reaches the home's log.
    expect((await entries(edge, 'h1')).filter((e) => e.status === 403)).toEqual([]);
  });

  it("keeps refusals out of the homes' logs and within a small budget per token, counting the drops", async () => {
    const audit = new MemoryAuditLog();
    const registry = new Registry();
    const call = edgeWith(audit, 'n1', { registry, auditRefusedBudget: { perSec: 0.001, burst: 5 }, clock: () => 1_700_000_000_000 });
    expect((await call('PUT', '/v1/homes/h1', { name: 'One' })).status).toBe(201);
    const minted = await call('POST', '/v1/tokens', { homes: ['h1'], scopes: ['rules'] });
    const token = minted.body.token as string;
    for (let i = 0; i < 40; i++) expect((await call('DELETE', `/v1/homes/junk-${i}/rules/r`, undefined, token)).status).toBe(403);
    // Refusals inside a granted home (404s) take from the same budget.
    expect((await call('DELETE', '/v1/homes/h1/rules/none', undefined, token)).status).toBe(404);

    const refused = (await audit.read({ limit: 100 })).items.filter((e) => e.who === minted.body.tokenId);
    expect(refused.map((e) => e.target.homeId)).toEqual(['junk-4', 'junk-3', 'junk-2', 'junk-1', 'junk-0']);
    for (let i = 0; i < 40; i++) expect((await audit.read({ homeId: `junk-${i}`, limit: 5 })).items).toEqual([]);
    const dropped = (await registry.getSingleMetric('iot_audit_appends_total')!.get()).values.find(
      (v) => v.labels.result === 'over_budget',
    );
    expect(dropped?.value).toBe(36);
    // The admin is not budgeted, and a write that succeeds is always recorded.
    expect((await call('DELETE', '/v1/homes/h1/rules/none')).status).toBe(404);
    const rule = { ...nightLight, id: 'r1' };
    expect((await call('PUT', '/v1/homes/h1/rules/r1', rule, token)).status).toBe(201);
    expect((await audit.read({ homeId: 'h1', limit: 3 })).items.map((e) => [e.who, e.status])).toEqual([
      [minted.body.tokenId, 201],
      ['admin', 404],
      ['admin', 201],
    ]);
  });

  it('names what the route created or acted on beyond the path: rule, scene, token ids and lists (bounded), never the body', async () => {
    const edge = await homeWithDevices();
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: nightLight })).status).toBe(201);
    const scene = { id: 'evening', name: 'scene-marker-91c2', actions: [{ device: 'light1', name: 'set', params: { on: true } }] };
    expect((await edge.json('POST', '/v1/homes/h1/scenes', { body: scene })).status).toBe(201);
    // A body the home refuses names no id from it.
    expect((await edge.json('POST', '/v1/homes/h1/scenes', { body: { id: 'x', name: 'bad', actions: [] } })).status).toBe(400);
    const homes = Array.from({ length: 25 }, (_, i) => `home-${i}`);
    const minted = await edge.json('POST', '/v1/tokens', { body: { homes, scopes: ['read'], ttlSeconds: 60 } });
    expect(minted.status).toBe(201);
    expect((await edge.call('POST', '/v1/tokens/revoke', { body: { token: 'app_no-such-token' } })).status).toBe(404);

    const all = await entries(edge);
    expect(all.slice(0, 5).map((e) => [e.action, e.status, e.target])).toEqual([
      ['tokens.revoke.post', 404, { tokenId: tokenIdOf(hashSecret('app_no-such-token')) }],
      ['tokens.post', 201, { tokenId: minted.body.tokenId, homes: homes.slice(0, 20), homesTotal: '25', scopes: ['read'] }],
      ['homes.scenes.post', 400, { homeId: 'h1' }],
      ['homes.scenes.post', 201, { homeId: 'h1', sceneId: 'evening' }],
      ['homes.rules.post', 201, { homeId: 'h1', ruleId: 'night-light' }],
    ]);
    expect(JSON.stringify(all)).not.toContain('scene-marker-91c2');
  });

  it('answers a malformed home id with 400 before 403, and audits neither it nor its home', async () => {
    const edge = await homeWithDevices();
    const h1Control = await edge.mintToken(['h1'], ['read', 'control']);
    const baseline = (await entries(edge)).length;
    const r = await edge.json('PATCH', '/v1/homes/bad%20home/devices/light1', { token: h1Control, body: { desired: { on: true } } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'homeId' } });
    expect(await entries(edge)).toHaveLength(baseline);
  });

  it("does not audit the guard's rate-limit refusals (429), which would let a caller outpace its limit in the log", async () => {
    const audit = new MemoryAuditLog();
    // A fixed clock: the bucket never refills, so the second write is refused for certain.
    const call = edgeWith(audit, 'n1', {
      clock: () => 1_700_000_000_000,
      rateLimit: { perTokenPerSec: 1, perHomePerSec: 1_000, burst: 1 },
    });
    expect((await call('PUT', '/v1/homes/h1', { name: 'One' })).status).toBe(201);
    expect((await call('PUT', '/v1/homes/h1', { name: 'Two' })).status).toBe(429);
    expect((await audit.read({ limit: 10 })).items.map(gist)).toEqual([
      { who: 'admin', action: 'homes.put', target: { homeId: 'h1' }, status: 201, outcome: 'succeeded', code: undefined },
    ]);
  });

  it('records the code of a write that failed validation or found nothing', async () => {
    const edge = await homeWithDevices();
    expect((await edge.json('PUT', '/v1/homes/h1/rules/other', { body: nightLight })).status).toBe(400);
    expect((await edge.json('DELETE', '/v1/homes/h1/rules/none')).status).toBe(404);
    expect((await entries(edge, 'h1')).slice(0, 2).map(gist)).toEqual([
      {
        who: 'admin',
        action: 'homes.rules.delete',
        target: { homeId: 'h1', ruleId: 'none' },
        status: 404,
        outcome: 'refused',
        code: 'not_found',
      },
      {
        who: 'admin',
        action: 'homes.rules.put',
        target: { homeId: 'h1', ruleId: 'other' },
        status: 400,
        outcome: 'refused',
        code: 'invalid_argument',
      },
    ]);
  });

  it('never records a token, a hub secret or a request body', async () => {
    const edge = await homeWithDevices();
    const hub = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub-secretive' } });
    const minted = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read', 'control', 'rules'] } });
    const token = minted.body.token as string;
    await edge.json('PATCH', '/v1/homes/h1/devices/light1', { token, body: { desired: { on: true } } });
    await edge.json('PUT', '/v1/homes/h1/rules/night-light', { token, body: { ...nightLight, name: 'body-marker-7f3a' } });
    await edge.json('PATCH', '/v1/homes/h1/devices/light1', { token: 'app_not-a-token', body: { desired: { on: true } } });
    await edge.call('POST', '/v1/tokens/revoke', { body: { token } });
    await edge.json('PATCH', '/v1/homes/h1/devices/light1', { token, body: { desired: { on: false } } });
    // A secret pasted where an id goes (a token instead of its id, the admin token as a rule id).
    const other = (await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read'] } })).body.token as string;
    expect((await edge.call('DELETE', `/v1/tokens/${other}`)).status).toBe(400);
    expect((await edge.call('DELETE', `/v1/homes/h1/rules/${ADMIN}`)).status).toBeGreaterThanOrEqual(400);
    const pasted = (await entries(edge)).slice(0, 2);
    expect(pasted.map((e) => e.target)).toEqual([{ homeId: 'h1', ruleId: REDACTED }, { tokenId: REDACTED }]);
    const secrets = [
      hub.body.secret as string,
      token,
      other,
      hashSecret(token),
      hashSecret(hub.body.secret as string),
      ADMIN,
      'body-marker-7f3a',
    ];
    expect(secrets[0]).toMatch(/^hub_/);
    const logs = JSON.stringify([await entries(edge), await entries(edge, 'h1')]);
    expect(logs).toContain('homes.rules.put');
    for (const s of secrets) expect(logs).not.toContain(s);
  });

  it('audits the credential lifecycle: token ids, revocation by id, hub secret rotation, hub and home deletion', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const hub = await edge.json('POST', '/v1/homes/h1/hubs', { body: { hubId: 'hub1' } });
    const minted = await edge.json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['rules'] } });
    expect(minted.status).toBe(201);
    const tokenId = minted.body.tokenId as string;
    expect(tokenId).toBe(tokenIdOf(hashSecret(minted.body.token as string)));
    const rotated = await edge.json('POST', '/v1/homes/h1/hubs/hub1/secret', { body: {} });
    expect(rotated.status).toBe(200);
    expect((await edge.call('DELETE', `/v1/tokens/${tokenId}`)).status).toBe(204);
    expect((await edge.call('DELETE', '/v1/homes/h1/hubs/hub1')).status).toBe(204);
    expect((await edge.call('DELETE', '/v1/homes/h1')).status).toBe(204);

    const all = await entries(edge);
    expect(all.slice(0, 4).map(gist)).toEqual([
      { who: 'admin', action: 'homes.delete', target: { homeId: 'h1' }, status: 204, outcome: 'succeeded', code: undefined },
      {
        who: 'admin',
        action: 'homes.hubs.delete',
        target: { homeId: 'h1', hubId: 'hub1' },
        status: 204,
        outcome: 'succeeded',
        code: undefined,
      },
      { who: 'admin', action: 'tokens.delete', target: { tokenId }, status: 204, outcome: 'succeeded', code: undefined },
      {
        who: 'admin',
        action: 'homes.hubs.secret.post',
        target: { homeId: 'h1', hubId: 'hub1' },
        status: 200,
        outcome: 'succeeded',
        code: undefined,
      },
    ]);
    // The deleted home's own log goes with it (the cluster's log above keeps its history for the
    // admin): a home created again under its id starts with an empty log.
    expect((await edge.json('GET', '/v1/admin/audit?home=h1')).body.items).toEqual([]);
    await edge.createHome('h1');
    const newOwner = await edge.mintToken(['h1'], ['rules']);
    const fresh = await edge.json('GET', '/v1/homes/h1/audit', { token: newOwner });
    expect(fresh.body.items.map((e: Record<string, unknown>) => e.action)).toEqual(['homes.put']);
    expect(all.filter((e) => e.target.homeId === 'h1').map((e) => e.action)).toEqual([
      'homes.delete',
      'homes.hubs.delete',
      'homes.hubs.secret.post',
      'homes.hubs.post',
      'homes.put',
    ]);
    const logs = JSON.stringify(all);
    for (const secret of [hub.body.secret as string, rotated.body.secret as string, minted.body.token as string])
      expect(logs).not.toContain(secret);
  });

  it('audits a write route by its pattern and path ids, whatever route it is', async () => {
    expect(actionOf('DELETE', '/v1/tokens/:tokenId')).toBe('tokens.delete');
    expect(actionOf('POST', '/v1/homes/:homeId/hubs/:hubId/secret')).toBe('homes.hubs.secret.post');
    expect(actionOf('DELETE', '/v1/homes/:homeId')).toBe('homes.delete');
    expect(actionOf('POST', '/v1/homes/:homeId/scenes/:sceneId/activate')).toBe('homes.scenes.activate.post');
    const edge = startEdge();
    // A route the middleware has never heard of, registered after the app was built.
    edge.app.delete('/v1/homes/:homeId/widgets/:widgetId', (c) => {
      c.set('principal', { kind: 'admin' });
      return c.body(null, 204);
    });
    expect((await edge.call('DELETE', '/v1/homes/h7/widgets/w1')).status).toBe(204);
    expect((await entries(edge)).map(gist)).toEqual([
      {
        who: 'admin',
        action: 'homes.widgets.delete',
        target: { homeId: 'h7', widgetId: 'w1' },
        status: 204,
        outcome: 'succeeded',
        code: undefined,
      },
    ]);
  });

  it('answers a write only once its entry is appended', async () => {
    const logged = new MemoryAuditLog();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: AuditLog = {
      append: async (record) => {
        await gate;
        await logged.append(record);
      },
      read: (query) => logged.read(query),
      forgetHome: (homeId) => logged.forgetHome(homeId),
      settled: async () => {},
    };
    const call = edgeWith(slow, 'node-a');
    let answered = false;
    const put = call('PUT', '/v1/homes/h1', { name: 'One' }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    release();
    expect((await put).status).toBe(201);
    expect((await logged.read({ limit: 5 })).items).toEqual([expect.objectContaining({ action: 'homes.put', status: 201 })]);
  });

  it('names the node it was given, and never fails a request when the audit log does', async () => {
    const logged = new MemoryAuditLog();
    const call = edgeWith(logged, 'node-a');
    expect((await call('PUT', '/v1/homes/h1', { name: 'One' })).status).toBe(201);
    expect((await call('GET', '/v1/admin/audit')).body.items).toEqual([expect.objectContaining({ node: 'node-a', action: 'homes.put' })]);

    const appended: AuditRecord[] = [];
    const broken: AuditLog = {
      append: (record) => {
        appended.push(record);
        throw new Error('audit log broken');
      },
      read: (): Promise<AuditPage> => Promise.reject(new Error('audit log broken')),
      forgetHome: () => {
        throw new Error('audit log broken');
      },
      settled: async () => {},
    };
    const failing = edgeWith(broken, 'node-b');
    expect((await failing('PUT', '/v1/homes/h1', { name: 'One' })).status).toBe(201);
    expect(appended).toHaveLength(1);
    // Nor when forgetting a deleted home's log throws.
    expect((await failing('DELETE', '/v1/homes/h1')).status).toBe(204);
    const read = await failing('GET', '/v1/admin/audit');
    expect(read.status).toBe(503);
    expect(read.body.error.code).toBe('unavailable');
  });
});

describe('HTTP edge: reading the audit log', () => {
  it('pages newest first with limit and cursor, and stops at since (epoch ms or ISO)', async () => {
    const edge = startEdge();
    for (let i = 0; i < 7; i++) await edge.createHome(`p${i}`);
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { items: { target: { homeId: string } }[]; nextCursor: string | null } } = await edge.json(
        'GET',
        `/v1/admin/audit?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(3);
      ids.push(...r.body.items.map((e) => e.target.homeId));
      cursor = r.body.nextCursor;
    } while (cursor !== null);
    expect(ids).toEqual(['p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);

    const all = await entries(edge);
    const third = all[2]!;
    const msOf = (id: string) => Number(id.split('-')[0]);
    const expected = all.filter((e) => msOf(e.id as string) >= msOf(third.id as string)).map((e) => e.id);
    for (const since of [String(msOf(third.id as string)), new Date(msOf(third.id as string)).toISOString()]) {
      const r = await edge.json('GET', `/v1/admin/audit?since=${encodeURIComponent(since)}`);
      expect(
        r.body.items.map((e: { id: string }) => e.id),
        since,
      ).toEqual(expected);
    }
    const byHome = await edge.json('GET', '/v1/admin/audit?home=p3');
    expect(byHome.body.items.map(gist)).toEqual([
      { who: 'admin', action: 'homes.put', target: { homeId: 'p3' }, status: 201, outcome: 'succeeded', code: undefined },
    ]);
  });

  it('answers 400 naming the bad query parameter', async () => {
    const edge = startEdge();
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=ten', 'limit'],
      ['since=yesterday', 'since'],
      ['since=-5', 'since'],
      ['since=2026-13-45T00:00:00Z', 'since'],
      // A time without a zone would be read in each node's local time.
      ['since=2026-01-31T12:00:00', 'since'],
      ['since=2026-01-31T12:00', 'since'],
      ['cursor=abc', 'cursor'],
      ['cursor=1-2-3', 'cursor'],
      ['home=has%20space', 'home'],
    ];
    for (const [query, field] of cases) {
      const r = await edge.json('GET', `/v1/admin/audit?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.error, query).toMatchObject({ code: 'invalid_argument', details: { field } });
      const home = await edge.json('GET', `/v1/homes/h1/audit?${query}`);
      expect(home.status, query).toBe(field === 'home' ? 200 : 400);
    }
  });

  it('lists every bad query parameter in details.fields', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const fields = [
      { field: 'limit', message: 'must be an integer from 1 to 500' },
      {
        field: 'since',
        message: 'must be epoch milliseconds, an ISO 8601 date, or a date and time with Z or an offset, such as 2026-01-31T12:00:00Z',
      },
      { field: 'cursor', message: 'must be the nextCursor of a previous page' },
    ];
    const home = await edge.json('GET', '/v1/homes/h1/audit?limit=0&since=yesterday&cursor=abc');
    expect(home.status).toBe(400);
    expect(home.body.error.details).toEqual({ field: 'limit', fields });
    expect(home.body.error.message).toBe('limit must be an integer from 1 to 500 (and 2 more: see details.fields)');
    const admin = await edge.json('GET', '/v1/admin/audit?limit=0&since=yesterday&cursor=abc&home=a%20b');
    // The home is the cluster log's first parameter: checked and named first.
    expect(admin.body.error.details.fields).toEqual([
      { field: 'home', message: 'must be a home id: 1 to 64 letters, digits, _ . or -' },
      ...fields,
    ]);
    expect(admin.body.error.details.field).toBe('home');
  });

  it('reads since as UTC or with the offset given, and answers cursor=0-0 with an empty last page', async () => {
    const audit = new MemoryAuditLog();
    const call = edgeWith(audit, 'n1', { clock: () => Date.UTC(2026, 0, 31, 12, 0, 0) });
    expect((await call('PUT', '/v1/homes/h1', { name: 'One' })).status).toBe(201);
    for (const [since, found] of [
      ['2026-01-31', 1],
      ['2026-01-31T12:00:00Z', 1],
      ['2026-01-31T12:00:00.001Z', 0],
      ['2026-01-31T13:00:00%2B01:00', 1],
      ['2026-01-31T12:00:01%2B00:00', 0],
      ['2026-01-31T11:00:00-01:00', 1],
      ['2026-01-31T11:00:01-01:00', 0],
    ] as const) {
      const r = await call('GET', `/v1/admin/audit?since=${since}`);
      expect(r.status, since).toBe(200);
      expect(r.body.items, since).toHaveLength(found);
    }
    for (const path of ['/v1/admin/audit?cursor=0-0', '/v1/admin/audit?home=h1&cursor=0-0', '/v1/homes/h1/audit?cursor=0-0']) {
      const r = await call('GET', path);
      expect(r.status, path).toBe(200);
      expect(r.body, path).toEqual({ items: [], nextCursor: null });
    }
  });

  it("serves a home's log to a token with the rules scope for that home only, and the cluster's to the admin only", async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.createHome('h2');
    const rules = await edge.mintToken(['h1'], ['rules']);
    const noRules = await edge.mintToken(['h1', 'h2'], ['read', 'control']);

    const own = await edge.json('GET', '/v1/homes/h1/audit', { token: rules });
    expect(own.status).toBe(200);
    expect(own.body.items.map(gist)).toEqual([
      { who: 'admin', action: 'homes.put', target: { homeId: 'h1' }, status: 201, outcome: 'succeeded', code: undefined },
    ]);
    expect((await edge.json('GET', '/v1/homes/h2/audit', { token: rules })).status).toBe(403);
    expect((await edge.json('GET', '/v1/homes/h1/audit', { token: noRules })).status).toBe(403);
    expect((await edge.json('GET', '/v1/admin/audit', { token: rules })).status).toBe(403);
    expect((await edge.json('GET', '/v1/admin/audit', { token: null })).status).toBe(401);
  });
});
