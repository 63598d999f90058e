/** The peer transport over real gRPC on loopback: PeerServers on port 0 with fake handlers, PeerClients and the pool. */
import { Client, credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PeerClient } from '../../cluster/peer-client.ts';
import { PeerPool } from '../../cluster/peer-pool.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { signPeerStream, type PeerAuthConfig } from '../../cluster/peer-auth.ts';
import { exchangeMethod, type WirePeerBatch, type WireReply } from '../../cluster/peer-wire.ts';
import { httpStatusOf } from '../../edge-api/error-codes.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok, runtimeError, type Result } from '../../runtime/result.ts';

const HOST = '127.0.0.1';
/** Every server and client of this file shares the cluster secret (authentication itself: peer-auth.test.ts). */
const AUTH: PeerAuthConfig = { cluster: 'peer-transport', secret: 'peer-transport-test-secret-0123456789abcdef' };
/** The fake handlers take any message (the guard itself: peer-auth.test.ts). */
const ACCEPT_ALL = (): undefined => undefined;

interface Recorded {
  readonly tells: { actorId: string; msg: unknown; durable: boolean; hops: number; epoch: number }[];
  readonly deliveries: { channel: string; payload: unknown; from: string }[];
  /** Resolvers of asks of `slow`, released by the test. */
  readonly slow: ((r: Result<unknown>) => void)[];
}

/** Echoes asks; `slow` waits for the test; `throw` / `reject` fail; `overloaded` answers a failed Result. */
function fakeHandler(): { handler: PeerHandler; seen: Recorded } {
  const seen: Recorded = { tells: [], deliveries: [], slow: [] };
  const handler: PeerHandler = {
    ask(actorId, msg, timeoutMs, hops, epoch) {
      switch (actorId) {
        case 'slow':
          return new Promise((resolve) => seen.slow.push(resolve));
        case 'throw':
          throw new Error('boom (sync)');
        case 'reject':
          return Promise.reject(new Error('boom (async)'));
        case 'overloaded':
          return Promise.resolve(runtimeError('overloaded', 'mailbox full'));
        default:
          return Promise.resolve(ok({ actorId, msg, timeoutMs, hops, epoch }));
      }
    },
    tell(actorId, msg, durable, hops, epoch) {
      seen.tells.push({ actorId, msg, durable, hops, epoch });
    },
    deliver(channel, payload, from) {
      seen.deliveries.push({ channel, payload, from });
      if (channel === 'nobody') return 'no_handler';
      return channel === 'refusing' ? 'refused' : 'ok';
    },
  };
  return { handler, seen };
}

async function startServer(
  nodeId: string,
  handler: PeerHandler,
  port = 0,
  shutdownGraceMs = 1_000,
): Promise<{ server: PeerServer; port: number; registry: Registry }> {
  const registry = new Registry();
  const server = new PeerServer({
    nodeId,
    handler,
    auth: AUTH,
    acceptsMessage: ACCEPT_ALL,
    logger: silentLogger,
    registry,
    shutdownGraceMs,
  });
  return { server, port: await server.listen(HOST, port), registry };
}

/** Sum of a metric's samples named `sample` whose labels include `labels`. */
async function sampleSum(registry: Registry, metric: string, labels: Record<string, string>, sample = metric): Promise<number> {
  const m = registry.getSingleMetric(metric);
  if (!m) return 0;
  // Histogram samples carry their own name (`_count`, `_sum`, `_bucket`).
  const values = (await m.get()).values as { metricName?: string; labels: Record<string, string | number>; value: number }[];
  return values
    .filter((v) => (v.metricName ?? metric) === sample && Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

const batches = (registry: Registry, role: string, direction: string) =>
  sampleSum(registry, 'iot_peer_batch_items', { role, direction }, 'iot_peer_batch_items_count');
const batchItems = (registry: Registry, role: string, direction: string) =>
  sampleSum(registry, 'iot_peer_batch_items', { role, direction }, 'iot_peer_batch_items_sum');

/** Stream metadata a member of the cluster sends on a stream to `target`. */
function signed(nodeId: string, target: string): Metadata {
  const md = new Metadata();
  signPeerStream(md, AUTH.secret!, AUTH.cluster, nodeId, target);
  return md;
}

const echoed = (r: Result<unknown>) => {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value as { actorId: string; msg: unknown; timeoutMs: number; hops: number; epoch: number };
};

describe('PeerServer and PeerClient', () => {
  const fakeB = fakeHandler();
  const fakeC = fakeHandler();
  let b: Awaited<ReturnType<typeof startServer>>;
  let c: Awaited<ReturnType<typeof startServer>>;
  let pool: PeerPool;
  const clientRegistry = new Registry();
  const addresses = new Map<string, string>();

  beforeAll(async () => {
    b = await startServer('node-b', fakeB.handler);
    c = await startServer('node-c', fakeC.handler);
    addresses.set('node-b', `${HOST}:${b.port}`).set('node-c', `${HOST}:${c.port}`);
    pool = new PeerPool((id) => addresses.get(id), { nodeId: 'node-a', auth: AUTH, logger: silentLogger, registry: clientRegistry });
  });

  afterAll(async () => {
    await pool.close();
    await Promise.all([b.server.close(), c.server.close()]);
  });

  it('answers an ask with the JSON payload intact, nested objects included', async () => {
    const msg = {
      type: 'device.report',
      nested: { list: [1, { deep: ['x', null, true] }], empty: {}, text: 'ünïcödé ✓ "quoted" \\ / \n' },
      n: -1.25e-7,
      big: Number.MAX_SAFE_INTEGER,
    };
    const r = await pool.get('node-b').ask('device:h1:d1', msg, 1_000, 2, 2 ** 40);
    expect(echoed(r)).toEqual({ actorId: 'device:h1:d1', msg, timeoutMs: 1_000, hops: 2, epoch: 2 ** 40 });
    // A failed Result from the owner comes back as it was.
    expect(await pool.get('node-c').ask('overloaded', {}, 1_000, 0, 1)).toEqual(runtimeError('overloaded', 'mailbox full'));
  });

  it('gives each of 10,000 concurrent asks its own reply', async () => {
    const client = pool.get('node-b');
    const results = await Promise.all(Array.from({ length: 10_000 }, (_, i) => client.ask(`device:h${i % 97}:d${i}`, { i }, 10_000, 0, 1)));
    results.forEach((r, i) => {
      const v = echoed(r);
      expect(v.msg).toEqual({ i });
      expect(v.actorId).toBe(`device:h${i % 97}:d${i}`);
    });
    expect(client.inFlight).toBe(0);
  });

  it('batches the items of one tick: far fewer PeerBatches than items, both ways', async () => {
    const client = pool.get('node-c');
    await client.ask('warm-up', 0, 1_000, 0, 1);
    const before = {
      batches: await batches(c.registry, 'server', 'received'),
      items: await batchItems(c.registry, 'server', 'received'),
      replyBatches: await batches(c.registry, 'server', 'sent'),
    };
    const n = 5_000;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => client.ask(`home:h${i}`, { i }, 10_000, 0, 1)));
    expect(results.every((r) => r.ok)).toBe(true);
    const received = (await batches(c.registry, 'server', 'received')) - before.batches;
    expect((await batchItems(c.registry, 'server', 'received')) - before.items).toBe(n);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThanOrEqual(n / 100);
    expect((await batches(c.registry, 'server', 'sent')) - before.replyBatches).toBeLessThanOrEqual(n / 100);
  });

  it('resolves timeout at the deadline and ignores the late reply', async () => {
    const client = pool.get('node-b');
    const late = () => sampleSum(clientRegistry, 'iot_peer_late_replies_total', { peer: 'node-b' });
    const lateBefore = await late();
    const r = await client.ask('slow', { wait: true }, 50, 0, 1);
    expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(fakeB.seen.slow).toHaveLength(1);
    fakeB.seen.slow.shift()!(ok('too late'));
    await vi.waitFor(async () => expect(await late()).toBe(lateBefore + 1), { timeout: 5_000, interval: 10 });
    expect(client.inFlight).toBe(0);
    expect(echoed(await client.ask('after', { x: 1 }, 1_000, 0, 1)).msg).toEqual({ x: 1 });
  });

  it('delivers tells and channel deliveries to the handler, in order, with durable, hops, epoch and the sender', async () => {
    const client = pool.get('node-c');
    const payload = { homeId: 'h1', hubId: 'hub1', command: { commandId: 'd1~c1', params: { level: 80, fade: true, scene: 'evening' } } };
    expect(client.tell('home:h1', { type: 'device.changed', n: 1 }, true, 1, 9)).toEqual({ ok: true, value: undefined });
    expect(client.tell('home:h1', { type: 'device.changed', n: 2 }, false, 0, 9)).toEqual({ ok: true, value: undefined });
    expect(client.deliver('hub.command', payload).ok).toBe(true);
    expect(client.deliver('refusing', [1]).ok).toBe(true);
    expect(client.deliver('nobody', 'x').ok).toBe(true);
    await vi.waitFor(() => expect(fakeC.seen.deliveries).toHaveLength(3), { timeout: 5_000, interval: 10 });
    expect(fakeC.seen.tells).toEqual([
      { actorId: 'home:h1', msg: { type: 'device.changed', n: 1 }, durable: true, hops: 1, epoch: 9 },
      { actorId: 'home:h1', msg: { type: 'device.changed', n: 2 }, durable: false, hops: 0, epoch: 9 },
    ]);
    expect(fakeC.seen.deliveries).toEqual([
      { channel: 'hub.command', payload, from: 'node-a' },
      { channel: 'refusing', payload: [1], from: 'node-a' },
      { channel: 'nobody', payload: 'x', from: 'node-a' },
    ]);
    for (const outcome of ['ok', 'refused', 'no_handler'])
      expect(await sampleSum(c.registry, 'iot_peer_served_total', { kind: 'delivery', outcome })).toBe(1);
  });

  it('answers a handler that throws or rejects with an error Result and keeps the stream', async () => {
    const client = pool.get('node-b');
    await client.ask('warm-up', 0, 1_000, 0, 1);
    const opens = () => sampleSum(clientRegistry, 'iot_peer_stream_opens_total', { peer: 'node-b' });
    const opensBefore = await opens();
    const [thrown, rejected, fine] = await Promise.all([
      client.ask('throw', {}, 1_000, 0, 1),
      client.ask('reject', {}, 1_000, 0, 1),
      client.ask('echo', { still: 'here' }, 1_000, 0, 1),
    ]);
    expect(thrown).toMatchObject({ ok: false, error: { code: 'actor_crashed', message: expect.stringContaining('boom (sync)') } });
    expect(rejected).toMatchObject({ ok: false, error: { code: 'actor_crashed', message: expect.stringContaining('boom (async)') } });
    expect(echoed(fine).msg).toEqual({ still: 'here' });
    expect(echoed(await client.ask('echo', 2, 1_000, 0, 1)).msg).toBe(2);
    expect(await opens()).toBe(opensBefore);
    expect(await sampleSum(b.registry, 'iot_peer_served_total', { kind: 'ask', outcome: 'threw' })).toBe(2);
  });

  it('answers malformed items with an error Result (or drops them) without ending the stream', async () => {
    const raw = new Client(`${HOST}:${b.port}`, credentials.createInsecure());
    const m = exchangeMethod();
    const call: ClientDuplexStream<WirePeerBatch, WirePeerBatch> = raw.makeBidiStreamRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize,
      signed('raw-peer', 'node-b'),
    );
    const replies: WireReply[] = [];
    call.on('data', (batch: WirePeerBatch) => replies.push(...batch.items.map((i) => i.reply!)));
    call.on('error', () => {});
    const request = (id: number, payload: string) => ({
      request: { id, actor_id: 'echo', payload: Buffer.from(payload), timeout_ms: 1_000, hops: 0, epoch: 1 },
    });
    call.write({
      items: [
        request(7, '{not json'),
        {},
        { tell: { actor_id: 'home:h1', payload: Buffer.from('nope'), durable: true, hops: 0, epoch: 1 } },
        { delivery: { channel: 'hub.command', payload: Buffer.from('') } },
        request(8, '{"fine":1}'),
      ],
    });
    await vi.waitFor(() => expect(replies).toHaveLength(2), { timeout: 5_000, interval: 10 });
    call.write({ items: [request(9, '[1,2]')] });
    await vi.waitFor(() => expect(replies).toHaveLength(3), { timeout: 5_000, interval: 10 });
    const byId = new Map(replies.map((r) => [r.id, JSON.parse(Buffer.from(r.payload).toString())]));
    expect(byId.get('7')).toMatchObject({ ok: false, error: { code: 'actor_crashed', message: expect.stringContaining('not JSON') } });
    expect(byId.get('8')).toMatchObject({ ok: true, value: { msg: { fine: 1 } } });
    expect(byId.get('9')).toMatchObject({ ok: true, value: { msg: [1, 2] } });
    expect(await sampleSum(b.registry, 'iot_peer_served_total', { outcome: 'malformed' })).toBe(4);
    call.end();
    raw.close();
  });

  it('fails asks to a node with no known address with unavailable', async () => {
    const r = await pool.get('node-z').ask('home:h1', {}, 1_000, 0, 1);
    expect(r).toMatchObject({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('node-z') } });
    expect(pool.get('node-z').tell('home:h1', {}, true, 0, 1).ok).toBe(false);
  });

  it('refuses a message with no JSON form without sending anything', async () => {
    const r = await pool.get('node-b').ask('home:h1', { n: 1n }, 1_000, 0, 1);
    expect(r).toMatchObject({ ok: false, error: { code: 'actor_crashed', message: expect.stringContaining('JSON') } });
  });

  it('refuses a message over the peer message limit with payload_too_large (HTTP 413), without sending it', async () => {
    const registry = new Registry();
    const client = new PeerClient(`${HOST}:${b.port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: AUTH,
      logger: silentLogger,
      registry,
      limits: { maxMessageBytes: 4_096 },
    });
    try {
      const big = { blob: 'x'.repeat(8_192) };
      const asked = await client.ask('home:h1', big, 1_000, 0, 1);
      expect(asked).toMatchObject({
        ok: false,
        error: { code: 'payload_too_large', message: expect.stringContaining('over the peer message limit') },
      });
      expect(httpStatusOf(asked.ok ? 'internal' : asked.error.code)).toBe(413);
      expect(client.tell('home:h1', big, true, 0, 1)).toMatchObject({ ok: false, error: { code: 'payload_too_large' } });
      expect(client.deliver('hub.command', big)).toMatchObject({ ok: false, error: { code: 'payload_too_large' } });
      expect(await sampleSum(registry, 'iot_peer_stream_opens_total', { peer: 'node-b' })).toBe(0);
      expect(echoed(await client.ask('home:h1', { small: true }, 1_000, 0, 1)).msg).toEqual({ small: true });
    } finally {
      await client.close();
    }
  });

  it('answers a reply over the peer message limit with payload_too_large', async () => {
    const fake = fakeHandler();
    fake.handler.ask = () => Promise.resolve(ok('y'.repeat(8_192)));
    const server = new PeerServer({
      nodeId: 'node-big',
      handler: fake.handler,
      auth: AUTH,
      acceptsMessage: ACCEPT_ALL,
      logger: silentLogger,
      registry: new Registry(),
      limits: { maxMessageBytes: 4_096 },
      shutdownGraceMs: 1_000,
    });
    const port = await server.listen(HOST, 0);
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-big',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      expect(await client.ask('home:h1', {}, 1_000, 0, 1)).toMatchObject({
        ok: false,
        error: { code: 'payload_too_large', message: expect.stringContaining('peer message limit') },
      });
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('PeerClient across peer restarts', () => {
  const registry = new Registry();
  const opens = (peer: string) => sampleSum(registry, 'iot_peer_stream_opens_total', { peer });

  it('fails the asks in flight with unavailable when the stream breaks, and reconnects by itself after the peer restarts', async () => {
    const fake = fakeHandler();
    // A short grace: the `slow` ask below never answers, so the server is forced down.
    let s = await startServer('node-r', fake.handler, 0, 100);
    const port = s.port;
    const client = new PeerClient(`${HOST}:${port}`, { nodeId: 'node-a', peerId: 'node-r', auth: AUTH, logger: silentLogger, registry });
    try {
      expect(echoed(await client.ask('home:h1', 1, 1_000, 0, 1)).msg).toBe(1);
      const inFlight = client.ask('slow', {}, 20_000, 0, 1);
      await vi.waitFor(() => expect(fake.seen.slow).toHaveLength(1), { timeout: 5_000, interval: 10 });
      await s.server.close();
      expect(await inFlight).toMatchObject({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('node-r') } });
      expect(client.inFlight).toBe(0);
      s = await startServer('node-r', fake.handler, port);
      await vi.waitFor(async () => expect(echoed(await client.ask('home:h1', 2, 1_000, 0, 1)).msg).toBe(2), {
        timeout: 10_000,
        interval: 20,
      });
      expect(await opens('node-r')).toBeGreaterThanOrEqual(2);
      expect(client.breakerState).toBe('closed');
    } finally {
      await client.close();
      await s.server.close();
    }
  });

  it('opens the breaker after consecutive failures, fails fast while open, and closes once the peer is back', async () => {
    const fake = fakeHandler();
    let s = await startServer('node-x', fake.handler);
    const port = s.port;
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-x',
      auth: AUTH,
      logger: silentLogger,
      registry,
      breaker: { failureThreshold: 5, openMs: 300 },
    });
    try {
      expect((await client.ask('home:h1', 1, 1_000, 0, 1)).ok).toBe(true);
      await s.server.close();

      for (let i = 0; i < 5; i++) {
        expect(client.breakerState).toBe('closed');
        const r = await client.ask('home:h1', i, 1_000, 0, 1);
        expect(r).toMatchObject({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('node-x') } });
      }
      expect(client.breakerState).toBe('open');

      // Fast: no stream is opened, nothing waits for a deadline.
      const opensBefore = await opens('node-x');
      const started = performance.now();
      const fast = await Promise.all(Array.from({ length: 100 }, () => client.ask('home:h1', 0, 10_000, 0, 1)));
      expect(performance.now() - started).toBeLessThan(1_000);
      for (const r of fast)
        expect(r).toMatchObject({
          ok: false,
          error: { code: 'unavailable', message: expect.stringMatching(/peer node-x .*circuit breaker open/) },
        });
      expect(client.tell('home:h1', {}, true, 0, 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      expect(await opens('node-x')).toBe(opensBefore);
      expect(await sampleSum(registry, 'iot_peer_asks_total', { peer: 'node-x', outcome: 'rejected' })).toBe(100);
      expect(await sampleSum(registry, 'iot_peer_breaker_state', { peer: 'node-x' })).toBe(2);

      s = await startServer('node-x', fake.handler, port);
      await vi.waitFor(async () => expect(echoed(await client.ask('home:h1', 'back', 1_000, 0, 1)).msg).toBe('back'), {
        timeout: 10_000,
        interval: 20,
      });
      expect(client.breakerState).toBe('closed');
      expect(await sampleSum(registry, 'iot_peer_breaker_state', { peer: 'node-x' })).toBe(0);
    } finally {
      await client.close();
      await s.server.close();
    }
  });

  it('opens the breaker on consecutive timeouts and lets one probe through when half-open', async () => {
    const fake = fakeHandler();
    const s = await startServer('node-t', fake.handler);
    // Wall-clock based: the client also writes this time into its stream proof, which the server checks against its own clock.
    let now = Date.now();
    const client = new PeerClient(`${HOST}:${s.port}`, {
      nodeId: 'node-a',
      peerId: 'node-t',
      auth: AUTH,
      logger: silentLogger,
      registry,
      breaker: { failureThreshold: 3, openMs: 1_000 },
      clock: () => now,
    });
    try {
      const timeouts = await Promise.all([1, 2, 3].map(() => client.ask('slow', {}, 30, 0, 1)));
      for (const r of timeouts) expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
      expect(client.breakerState).toBe('open');
      expect(await client.ask('home:h1', 0, 1_000, 0, 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });

      now += 1_000;
      // Half-open: the first ask is the probe; the others fail fast until it is answered.
      const probe = client.ask('home:h1', 'probe', 1_000, 0, 1);
      expect(client.breakerState).toBe('half-open');
      expect(await client.ask('home:h1', 'second', 1_000, 0, 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      expect(echoed(await probe).msg).toBe('probe');
      expect(client.breakerState).toBe('closed');
      for (const resolve of fake.seen.slow.splice(0)) resolve(ok('late'));
    } finally {
      await client.close();
      await s.server.close();
    }
  });
});
