/** The admin ring routes over a fake cluster admin: status, dry runs, applying a change, and every refusal in the one error shape. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import { NoRingError, RingBusyError, type ClusterStatus, type RingPlan } from '../../../cluster/cluster-admin.ts';
import { MAX_RING_NODES, MAX_WEIGHT } from '../../../cluster/hash-ring.ts';
import { RingChangeError, type RingChange } from '../../../cluster/ring-store.ts';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { EventFeed } from '../../../edge-api/events/event-feed.ts';
import type { ClusterAdminPort } from '../../../edge-api/http/admin-routes.ts';
import { createHttpApp } from '../../../edge-api/http/create-http-app.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { runtimeError } from '../../../runtime/result.ts';

const ADMIN = 'admin-token-for-admin-routes';

const status: ClusterStatus = {
  epoch: 4,
  shardCount: 16,
  nodes: [
    { id: 'n1', address: '127.0.0.1:8080', state: 'active', weight: 1, alive: true, shardsAssigned: 8, shardsOwned: 8 },
    { id: 'n2', address: '127.0.0.1:8081', state: 'draining', weight: 1, alive: true, shardsAssigned: 0, shardsOwned: 8 },
  ],
  handoffs: { pending: 3, done: 5, inFlight: true },
  owners: Array.from({ length: 16 }, () => 'n1'),
};

const plan: RingPlan = {
  epoch: 4,
  nextNodes: [{ id: 'n1', weight: 1, state: 'active' }],
  moving: 2,
  flows: [{ from: 'n2', to: 'n1', shards: 2 }],
  moves: [
    { shard: 3, from: 'n2', to: 'n1' },
    { shard: 9, from: 'n2', to: 'n1' },
  ],
};

/** Records every call; `failWith` makes the next calls throw. */
class FakeClusterAdmin implements ClusterAdminPort {
  readonly calls: { op: 'status' | 'plan' | 'apply'; change?: RingChange }[] = [];
  failWith: Error | undefined;

  async status(): Promise<ClusterStatus> {
    this.calls.push({ op: 'status' });
    if (this.failWith) throw this.failWith;
    return status;
  }

  async plan(change: RingChange): Promise<RingPlan> {
    this.calls.push({ op: 'plan', change });
    if (this.failWith) throw this.failWith;
    return plan;
  }

  async apply(change: RingChange): Promise<{ epoch: number; moving: number }> {
    this.calls.push({ op: 'apply', change });
    if (this.failWith) throw this.failWith;
    return { epoch: 5, moving: 2 };
  }
}

/** The admin routes need no actors: every ask is refused. */
const noActors: ActorRouter = {
  ask: async () => runtimeError('unavailable', 'no actors in this test'),
  tell: () => runtimeError('unavailable', 'no actors in this test'),
  deliver: () => runtimeError('unavailable', 'no actors in this test'),
};

function edge(cluster: ClusterAdminPort | undefined) {
  const app = createHttpApp({
    router: noActors,
    credentials: new MemoryCredentialStore(),
    feed: new EventFeed(),
    adminToken: ADMIN,
    registry: new Registry(),
    logger: silentLogger,
    readiness: () => ({ ready: true, checks: {} }),
    maxBodyBytes: 64 * 1024,
    ...(cluster ? { cluster } : {}),
  });
  async function json(method: string, path: string, o: { token?: string | null; body?: unknown } = {}) {
    const token = o.token === undefined ? ADMIN : o.token;
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  }
  return { app, json };
}

describe('admin ring routes', () => {
  it('GET /v1/admin/cluster answers the cluster status', async () => {
    const admin = new FakeClusterAdmin();
    const r = await edge(admin).json('GET', '/v1/admin/cluster');
    expect(r.status).toBe(200);
    expect(r.body).toEqual(status);
    expect(admin.calls).toEqual([{ op: 'status' }]);
  });

  it('POST /v1/admin/ring/plan answers the dry run, with the per-shard moves only when ?detail=true', async () => {
    const admin = new FakeClusterAdmin();
    const { json } = edge(admin);
    const change = { drain: ['n2'] };
    const brief = await json('POST', '/v1/admin/ring/plan', { body: change });
    expect(brief.status).toBe(200);
    const { moves: _moves, ...withoutMoves } = plan;
    expect(brief.body).toEqual(withoutMoves);
    expect('moves' in brief.body).toBe(false);

    const detailed = await json('POST', '/v1/admin/ring/plan?detail=true', { body: change });
    expect(detailed.status).toBe(200);
    expect(detailed.body).toEqual(plan);
    expect((await json('POST', '/v1/admin/ring/plan?detail=yes', { body: change })).body.moves).toBeUndefined();
    expect(admin.calls).toEqual([
      { op: 'plan', change },
      { op: 'plan', change },
      { op: 'plan', change },
    ]);
  });

  it('POST /v1/admin/ring applies the change and answers 202 {epoch, moving}', async () => {
    const admin = new FakeClusterAdmin();
    const change = { add: [{ id: 'n3', weight: 2 }], remove: ['n2'], weights: { n1: 3 } };
    const r = await edge(admin).json('POST', '/v1/admin/ring', { body: change });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ epoch: 5, moving: 2 });
    expect(admin.calls).toEqual([{ op: 'apply', change }]);
  });

  it('passes weights up to MAX_WEIGHT, and as small as wanted, to the cluster', async () => {
    const admin = new FakeClusterAdmin();
    const change = { add: [{ id: 'n3', weight: MAX_WEIGHT }, { id: 'n4' }], weights: { n1: 1e-3, n2: MAX_WEIGHT } };
    const r = await edge(admin).json('POST', '/v1/admin/ring/plan', { body: change });
    expect(r.status).toBe(200);
    expect(admin.calls).toEqual([{ op: 'plan', change }]);
  });

  it('answers 409 failed_precondition while another change is still moving shards', async () => {
    const admin = new FakeClusterAdmin();
    admin.failWith = new RingBusyError('a ring change is still moving shards (3 pending): retry when it is done');
    const r = await edge(admin).json('POST', '/v1/admin/ring', { body: { drain: ['n1'] } });
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ error: { code: 'failed_precondition', message: admin.failWith.message } });
  });

  it('answers 409 failed_precondition when the cluster has no ring yet', async () => {
    const admin = new FakeClusterAdmin();
    admin.failWith = new NoRingError('the cluster has no ring yet: start a node with AUTO_JOIN=true');
    const r = await edge(admin).json('GET', '/v1/admin/cluster');
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('failed_precondition');
  });

  it.each([
    ['plan', '/v1/admin/ring/plan'],
    ['apply', '/v1/admin/ring'],
  ])('answers 400 naming `change` for an invalid change (%s)', async (_op, path) => {
    const admin = new FakeClusterAdmin();
    admin.failWith = new RingChangeError('node n9 is not in the ring');
    const r = await edge(admin).json('POST', path, { body: { remove: ['n9'] } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'change' } });
    expect(r.body.error.message).toContain('node n9 is not in the ring');
  });

  it('answers 500 internal, without details, for an unexpected failure', async () => {
    const admin = new FakeClusterAdmin();
    admin.failWith = new Error('redis exploded at 10.0.0.7');
    const r = await edge(admin).json('GET', '/v1/admin/cluster');
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
  });

  it.each<[string, unknown, string]>([
    ['an empty body', '', 'body'],
    ['malformed JSON', '{"drain": [', 'body'],
    ['an array', ['n1'], 'body'],
    ['an unknown field', { drain: ['n1'], evict: ['n2'] }, 'evict'],
    ['add that is not an array', { add: { id: 'n3' } }, 'add'],
    ['add with an item without id', { add: [{ weight: 2 }] }, 'add[0].id'],
    ['add with a null item', { add: [{ id: 'n3' }, null] }, 'add[1]'],
    ['add with a weight too large', { add: [{ id: 'n3', weight: MAX_WEIGHT + 0.5 }] }, 'add[0].weight'],
    ['add with a zero weight', { add: [{ id: 'n3', weight: 0 }] }, 'add[0].weight'],
    ['add with a weight that is a string', { add: [{ id: 'n3', weight: '2' }] }, 'add[0].weight'],
    ['a weight of 1e308', { weights: { n1: 1e308 } }, 'weights.n1'],
    ['a weight of 20 000', { weights: { n1: 2, n2: 20_000 } }, 'weights.n2'],
    ['a negative weight', { weights: { n1: -1 } }, 'weights.n1'],
    ['a weight that is null', { weights: { n1: null } }, 'weights.n1'],
    ['drain with a number', { drain: [1] }, 'drain[0]'],
    ['drain with an empty id', { drain: [''] }, 'drain[0]'],
    ['remove that is a string', { remove: 'n2' }, 'remove'],
    ['weights that is an array', { weights: [['n1', 2]] }, 'weights'],
    ['weights that is null', { weights: null }, 'weights'],
    // Thousands of nodes in one change would cost every node seconds of ring math: refused by count first.
    ['an add of more than MAX_RING_NODES nodes', { add: Array.from({ length: MAX_RING_NODES + 1 }, (_, i) => ({ id: `m${i}` })) }, 'add'],
    ['a drain of more than MAX_RING_NODES nodes', { drain: Array.from({ length: MAX_RING_NODES + 1 }, (_, i) => `m${i}`) }, 'drain'],
    [
      'weights of more than MAX_RING_NODES nodes',
      { weights: Object.fromEntries(Array.from({ length: MAX_RING_NODES + 1 }, (_, i) => [`m${i}`, 1])) },
      'weights',
    ],
  ])('answers 400 naming the field for %s, before the cluster is asked', async (_what, body, field) => {
    const admin = new FakeClusterAdmin();
    const { json } = edge(admin);
    for (const path of ['/v1/admin/ring/plan', '/v1/admin/ring']) {
      const r = await json('POST', path, { body });
      expect(r.status, `${path} ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
    expect(admin.calls).toEqual([]);
  });

  it('lists every bad field of a change, the first one also as details.field', async () => {
    const admin = new FakeClusterAdmin();
    const { json } = edge(admin);
    const r = await json('POST', '/v1/admin/ring/plan', { body: { add: [{ id: '', weight: 0 }], drain: [1], colour: 'red' } });
    expect(r.status).toBe(400);
    const fields = (r.body.error.details.fields as { field: string; message: string }[]).map((f) => f.field);
    expect(fields.sort()).toEqual(['add[0].id', 'add[0].weight', 'colour', 'drain[0]']);
    expect(r.body.error.details.field).toBe(r.body.error.details.fields[0].field);
    // The unknown field first, as when the field list was checked first.
    expect(r.body.error.details.field).toBe('colour');
    expect(r.body.error.message).toMatch(/^colour is not a known field .+\(and 3 more: see details.fields\)$/);
    expect(r.body.error.details.fields.find((f: { field: string }) => f.field === 'colour').message).toBe(
      'is not a known field (expected add, drain, remove, weights)',
    );
    expect(admin.calls).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['drain with a number', { drain: [1] }, 'drain[0] must be a node id'],
    ['remove with null', { remove: [null] }, 'remove[0] must be a node id'],
    ['add with a number', { add: [5] }, 'add[0] must be an object {id, weight?}'],
    ['add with an item without id', { add: [{ weight: 2 }] }, 'add[0].id must be a node id'],
    [
      'weights naming __proto__',
      JSON.parse('{"weights": {"n1": 2, "__proto__": 2}}'),
      'weights.__proto__ is not a node id a ring can hold',
    ],
    ['a weight key with a dot', { weights: { 'a.b': 0 } }, 'weights["a.b"] must be a positive finite number, got 0'],
  ])('keeps the messages of the hand-written checks: %s', async (_what, body, message) => {
    const admin = new FakeClusterAdmin();
    const r = await edge(admin).json('POST', '/v1/admin/ring/plan', { body });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toBe(message);
    expect(admin.calls).toEqual([]);
  });

  it('ignores other keys of an added node, as before the schemas', async () => {
    const admin = new FakeClusterAdmin();
    const r = await edge(admin).json('POST', '/v1/admin/ring/plan', { body: { add: [{ id: 'n3', weight: 2, zone: 'eu' }] } });
    expect(r.status).toBe(200);
    expect(admin.calls).toEqual([{ op: 'plan', change: { add: [{ id: 'n3', weight: 2 }] } }]);
  });

  it('counts a list or the weights before reading any item: too many bad ones are one short 400', async () => {
    const admin = new FakeClusterAdmin();
    const { json } = edge(admin);
    const bad = Array.from({ length: MAX_RING_NODES + 1 }, () => 0);
    for (const body of [{ drain: bad }, { add: bad }, { weights: Object.fromEntries(bad.map((w, i) => [`m${i}`, w])) }]) {
      const r = await json('POST', '/v1/admin/ring/plan', { body });
      expect(r.status).toBe(400);
      const field = Object.keys(body)[0]!;
      expect(r.body.error).toEqual({
        code: 'invalid_argument',
        message: `${field} must name at most ${MAX_RING_NODES} nodes (the most a ring may have)`,
        details: { field, fields: [{ field, message: `must name at most ${MAX_RING_NODES} nodes (the most a ring may have)` }] },
      });
    }
    expect(admin.calls).toEqual([]);
  });

  it('answers a 64 KiB body of 16 000 bad items with a small 400', async () => {
    const admin = new FakeClusterAdmin();
    const { app } = edge(admin);
    const send = async (path: string, body: string) => {
      expect(body.length).toBeLessThanOrEqual(64 * 1024);
      const res = await app.request(path, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(text.length, path).toBeLessThan(4096);
      return JSON.parse(text) as { error: { message: string; details: { fields: unknown[] } } };
    };
    const items = Array.from({ length: 16_000 }, () => 1);
    expect((await send('/v1/admin/ring/plan', JSON.stringify({ drain: items }))).error.details.fields).toHaveLength(1);
    // A schema without a count check first: every item is a bad field, 20 of them are listed, all are counted.
    const tokens = await send('/v1/tokens', JSON.stringify({ homes: ['h1'], scopes: items }));
    expect(tokens.error.details.fields).toHaveLength(20);
    expect(tokens.error.message).toBe('scopes[0] must be one of read, control, rules (and 15999 more: the first 20 are in details.fields)');
  });

  it('refuses app tokens with 403 and missing tokens with 401, before the cluster is asked', async () => {
    const admin = new FakeClusterAdmin();
    const { json } = edge(admin);
    const minted = await json('POST', '/v1/tokens', { body: { homes: ['h1'], scopes: ['read', 'control', 'rules'] } });
    expect(minted.status).toBe(201);
    const appToken = minted.body.token as string;
    const routes: [string, string][] = [
      ['GET', '/v1/admin/cluster'],
      ['POST', '/v1/admin/ring/plan'],
      ['POST', '/v1/admin/ring'],
    ];
    for (const [method, path] of routes) {
      const body = method === 'POST' ? { drain: ['n1'] } : undefined;
      const forbidden = await json(method, path, { token: appToken, body });
      expect(forbidden.status, path).toBe(403);
      expect(forbidden.body.error.code).toBe('forbidden');
      const anonymous = await json(method, path, { token: null, body });
      expect(anonymous.status, path).toBe(401);
      expect(anonymous.body.error.code).toBe('unauthenticated');
    }
    expect(admin.calls).toEqual([]);
  });

  it('answers 409 failed_precondition on a node without a cluster', async () => {
    const { json } = edge(undefined);
    for (const [method, path] of [
      ['GET', '/v1/admin/cluster'],
      ['POST', '/v1/admin/ring/plan'],
      ['POST', '/v1/admin/ring'],
    ] as const) {
      const r = await json(method, path, method === 'POST' ? { body: { drain: ['n1'] } } : {});
      expect(r.status, path).toBe(409);
      expect(r.body.error.code).toBe('failed_precondition');
      expect(r.body.error.message).toMatch(/REDIS_URL/);
    }
  });
});
