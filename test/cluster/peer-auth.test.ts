/** Peer authentication by cluster secret: the stream proof, and a real PeerServer refusing unauthenticated streams before reading them. */
import {
  Client,
  credentials,
  Metadata,
  Server,
  status,
  type ClientDuplexStream,
  type ServerDuplexStream,
  type StatusObject,
} from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageRefusal } from '../../actors/message-kinds.ts';
import {
  PEER_AUTH_SKEW_MS,
  PEER_MAC_HEADER,
  signPeerAnswer,
  PEER_NONCE_HEADER,
  PEER_TIME_HEADER,
  PeerStreamVerifier,
  signPeerStream,
  type PeerAuthConfig,
} from '../../cluster/peer-auth.ts';
import { PeerClient } from '../../cluster/peer-client.ts';
import { LogThrottle } from '../../runtime/log-throttle.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { bindServer, shutdownServer } from '../../cluster/grpc-server.ts';
import {
  exchangeMethod,
  PEER_NODE_HEADER,
  peerService,
  type WirePeerBatch,
  type WirePeerMessage,
  type WireReply,
} from '../../cluster/peer-wire.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok } from '../../runtime/result.ts';

const HOST = '127.0.0.1';
const SECRET = 'peer-auth-test-cluster-secret-0123456789abcdef';
const AUTH: PeerAuthConfig = { cluster: 'peer-auth', secret: SECRET };
const T0 = 1_780_000_000_000;

/** A stream proof of `nodeId` for a stream to `target` (the server of these tests is node-b). */
function proof(secret = SECRET, cluster = 'peer-auth', nodeId = 'node-a', now = Date.now(), target = 'node-b'): Metadata {
  const md = new Metadata();
  signPeerStream(md, secret, cluster, nodeId, target, now);
  return md;
}

const accepted = (nodeId: string) => ({ ok: true, nodeId, nonce: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown });

describe('PeerStreamVerifier', () => {
  const at = (now: number) => new PeerStreamVerifier(SECRET, 'peer-auth', 'node-b', { wall: () => now, monotonic: () => 0 });

  it('accepts a proof signed with the cluster secret once, and refuses it replayed', () => {
    const v = at(T0);
    const md = proof(SECRET, 'peer-auth', 'node-a', T0);
    expect(v.verify(md)).toEqual(accepted('node-a'));
    expect(v.verify(md)).toEqual({ ok: false, reason: 'replayed_nonce' });
    // Another proof of the same node at the same time has its own nonce.
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', T0))).toEqual(accepted('node-a'));
  });

  it('never carries the secret on the wire', () => {
    const md = proof(SECRET, 'peer-auth', 'node-a', T0);
    expect(JSON.stringify(md.getMap())).not.toContain(SECRET);
  });

  it('refuses a stream without a proof, or with a proof of another secret, cluster or node id', () => {
    const v = at(T0);
    expect(v.verify(new Metadata())).toEqual({ ok: false, reason: 'unauthenticated' });
    const onlyNode = new Metadata();
    onlyNode.set(PEER_NODE_HEADER, 'node-a');
    expect(v.verify(onlyNode)).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(v.verify(proof('another-secret-of-another-cluster-000000', 'peer-auth', 'node-a', T0))).toEqual({
      ok: false,
      reason: 'bad_mac',
    });
    expect(v.verify(proof(SECRET, 'other-cluster', 'node-a', T0))).toEqual({ ok: false, reason: 'bad_mac' });
    const renamed = proof(SECRET, 'peer-auth', 'node-a', T0);
    renamed.set(PEER_NODE_HEADER, 'node-b');
    expect(v.verify(renamed)).toEqual({ ok: false, reason: 'bad_mac' });
    const retimed = proof(SECRET, 'peer-auth', 'node-a', T0);
    retimed.set(PEER_TIME_HEADER, String(T0 + 1));
    expect(v.verify(retimed)).toEqual({ ok: false, reason: 'bad_mac' });
    for (const [key, value] of [
      [PEER_MAC_HEADER, 'zz'],
      [PEER_NONCE_HEADER, 'not-hex'],
      [PEER_TIME_HEADER, '-5'],
    ] as const) {
      const bad = proof(SECRET, 'peer-auth', 'node-a', T0);
      bad.set(key, value);
      expect(v.verify(bad)).toEqual({ ok: false, reason: 'bad_mac' });
    }
  });

  it(`refuses a proof more than ${PEER_AUTH_SKEW_MS} ms from its clock, either way`, () => {
    const v = at(T0);
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', T0 - PEER_AUTH_SKEW_MS - 1))).toEqual({ ok: false, reason: 'stale_time' });
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', T0 + PEER_AUTH_SKEW_MS + 1))).toEqual({ ok: false, reason: 'stale_time' });
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', T0 - PEER_AUTH_SKEW_MS)).ok).toBe(true);
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', T0 + PEER_AUTH_SKEW_MS)).ok).toBe(true);
  });

  it('remembers nonces only while their proof could be accepted (bounded memory)', () => {
    let now = T0;
    const v = new PeerStreamVerifier(SECRET, 'peer-auth', 'node-b', { wall: () => now, monotonic: () => now - T0 });
    const first = proof(SECRET, 'peer-auth', 'node-a', now);
    for (let i = 0; i < 500; i++) expect(v.verify(i === 0 ? first : proof(SECRET, 'peer-auth', 'node-a', now)).ok).toBe(true);
    expect(v.remembered).toBe(500);
    now += 2 * PEER_AUTH_SKEW_MS + 1;
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', now)).ok).toBe(true);
    expect(v.remembered).toBe(1);
    // The forgotten proof is refused all the same: its time is out of the window.
    expect(v.verify(first)).toEqual({ ok: false, reason: 'stale_time' });
  });

  it('measures how long a nonce is remembered on the monotonic clock: a wall clock step forward and back reopens no replay', () => {
    let wall = T0;
    const v = new PeerStreamVerifier(SECRET, 'peer-auth', 'node-b', { wall: () => wall, monotonic: () => 1_000 });
    const captured = proof(SECRET, 'peer-auth', 'node-a', T0);
    expect(v.verify(captured).ok).toBe(true);
    // The wall clock jumps ahead past every remembered nonce's lifetime; a proof checked then would forget them on a wall-clock expiry.
    wall = T0 + 2 * PEER_AUTH_SKEW_MS + 1;
    expect(v.verify(proof(SECRET, 'peer-auth', 'node-a', wall)).ok).toBe(true);
    // NTP steps it back: the captured proof is within the skew again, and still remembered.
    wall = T0;
    expect(v.verify(captured)).toEqual({ ok: false, reason: 'replayed_nonce' });
    expect(v.remembered).toBe(2);
  });

  it('binds a proof to the node it was made for: a proof for a stream to node-b is refused by node-c', () => {
    const md = proof(SECRET, 'peer-auth', 'node-a', T0, 'node-b');
    const nodeC = new PeerStreamVerifier(SECRET, 'peer-auth', 'node-c', { wall: () => T0 });
    expect(nodeC.verify(md)).toEqual({ ok: false, reason: 'bad_mac' });
    expect(at(T0).verify(md)).toEqual(accepted('node-a'));
    expect(nodeC.verify(proof(SECRET, 'peer-auth', 'node-a', T0, 'node-c'))).toEqual(accepted('node-a'));
  });
});

describe('LogThrottle', () => {
  it('admits a few lines per window and reports how many it held back', () => {
    let now = 0;
    const t = new LogThrottle(3, 1_000, () => now);
    expect([t.admit(), t.admit(), t.admit(), t.admit(), t.admit()]).toEqual([0, 0, 0, undefined, undefined]);
    now = 1_000;
    expect(t.admit()).toBe(2);
    expect(t.admit()).toBe(0);
  });
});

/** Records what reaches the handler: nothing may, from an unauthenticated stream. */
function recordingHandler() {
  const seen: { asks: unknown[]; tells: unknown[]; deliveries: unknown[] } = { asks: [], tells: [], deliveries: [] };
  const handler: PeerHandler = {
    ask: (actorId, msg) => {
      seen.asks.push({ actorId, msg });
      return Promise.resolve(ok({ applied: true }));
    },
    tell: (actorId, msg) => void seen.tells.push({ actorId, msg }),
    deliver: (channel, payload) => {
      seen.deliveries.push({ channel, payload });
      return 'ok';
    },
  };
  return { handler, seen };
}

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const values = (await m.get()).values as { labels: Record<string, string | number>; value: number }[];
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
}

function nodeIdOnly(nodeId: string): Metadata {
  const md = new Metadata();
  md.set(PEER_NODE_HEADER, nodeId);
  return md;
}

const payload = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Items that would change state if they were served: a durable cursor at 2^53-1, a forged report, a command down a hub's stream. */
const HOSTILE: WirePeerMessage[] = [
  {
    request: {
      id: 1,
      actor_id: 'hub:h1:hub-1',
      payload: payload({ type: 'hub.durable', upToSeq: 2 ** 53 - 1 }),
      timeout_ms: 1_000,
      hops: 0,
      epoch: 1,
    },
  },
  {
    tell: {
      actor_id: 'device:h1:lock',
      payload: payload({ type: 'report', seq: 1, values: { locked: false } }),
      durable: true,
      hops: 0,
      epoch: 1,
    },
  },
  { delivery: { channel: 'hub.command', payload: payload({ homeId: 'h1', hubId: 'hub-1', command: { name: 'unlock' } }) } },
];

interface RawOutcome {
  readonly status: StatusObject;
  readonly replies: WireReply[];
}

/** Opens a raw Exchange stream with `md` (no proof when undefined), sends `items`, and resolves when the stream ends. */
function rawExchange(port: number, md: Metadata | undefined, items: WirePeerMessage[], endAfterMs = 1_000): Promise<RawOutcome> {
  const raw = new Client(`${HOST}:${port}`, credentials.createInsecure());
  const m = exchangeMethod();
  const call: ClientDuplexStream<WirePeerBatch, WirePeerBatch> = raw.makeBidiStreamRequest(
    m.path,
    m.requestSerialize,
    m.responseDeserialize,
    md ?? new Metadata(),
  );
  const replies: WireReply[] = [];
  call.on('data', (batch: WirePeerBatch) => replies.push(...batch.items.flatMap((i) => (i.reply ? [i.reply] : []))));
  call.on('error', () => {});
  call.write({ items });
  // An accepted stream would stay open: half-close so the server ends it once it has answered.
  const timer = setTimeout(() => call.end(), endAfterMs);
  return new Promise((resolve) =>
    call.on('status', (s: StatusObject) => {
      clearTimeout(timer);
      raw.close();
      resolve({ status: s, replies });
    }),
  );
}

describe('PeerServer with a cluster secret', () => {
  const registry = new Registry();
  const { handler, seen } = recordingHandler();
  let server: PeerServer;
  let port: number;

  beforeAll(async () => {
    server = new PeerServer({ nodeId: 'node-b', handler, auth: AUTH, acceptsMessage: messageRefusal, logger: silentLogger, registry });
    port = await server.listen(HOST, 0);
  });
  afterAll(() => server.close());

  it.each([
    ['no proof at all', () => undefined, 'unauthenticated'],
    ['a node id alone', () => nodeIdOnly('node-a'), 'unauthenticated'],
    ['the wrong secret', () => proof('a-guessed-secret-that-is-long-enough-000'), 'bad_mac'],
    ['a proof of another cluster', () => proof(SECRET, 'another-cluster'), 'bad_mac'],
    ['a proof older than the skew', () => proof(SECRET, 'peer-auth', 'node-a', Date.now() - PEER_AUTH_SKEW_MS - 5_000), 'stale_time'],
  ])('ends a stream with %s UNAUTHENTICATED and serves nothing it sent', async (_name, md, reason) => {
    const before = await counter(registry, 'iot_peer_streams_refused_total', { reason });
    const { status: s, replies } = await rawExchange(port, md(), HOSTILE);
    expect(s.code).toBe(status.UNAUTHENTICATED);
    expect(s.details).toContain(reason);
    expect(replies).toEqual([]);
    expect(seen).toEqual({ asks: [], tells: [], deliveries: [] });
    expect(await counter(registry, 'iot_peer_streams_refused_total', { reason })).toBe(before + 1);
  });

  it('refuses a captured proof replayed on a second stream', async () => {
    const md = proof();
    const first = await rawExchange(port, md, [], 50);
    expect(first.status.code).toBe(status.OK);
    const replayed = await rawExchange(port, md, HOSTILE);
    expect(replayed.status.code).toBe(status.UNAUTHENTICATED);
    expect(replayed.status.details).toContain('replayed_nonce');
    expect(seen).toEqual({ asks: [], tells: [], deliveries: [] });
  });

  it('serves a member: a PeerClient with the cluster secret', async () => {
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      expect(await client.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1)).toEqual(ok({ applied: true }));
      expect(seen.asks).toEqual([{ actorId: 'home:h1', msg: { type: 'home.get' } }]);
    } finally {
      seen.asks.length = 0;
      await client.close();
    }
  });

  it('fails the asks of a client with another secret unavailable, naming the refusal', async () => {
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-x',
      peerId: 'node-b',
      auth: { cluster: 'peer-auth', secret: 'not-the-cluster-secret-at-all-0000000000' },
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      const r = await client.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1);
      expect(r).toMatchObject({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('bad_mac') } });
      expect(seen.asks).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('signs every stream it opens anew: a client whose clock was off is served once it is right', async () => {
    let now = Date.now() - 10 * PEER_AUTH_SKEW_MS;
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
      breaker: { failureThreshold: 100, openMs: 1 },
      clock: () => now,
    });
    try {
      expect(await client.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1)).toMatchObject({
        ok: false,
        error: { message: expect.stringContaining('stale_time') },
      });
      now = Date.now();
      expect(await client.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1)).toEqual(ok({ applied: true }));
    } finally {
      seen.asks.length = 0;
      await client.close();
    }
  });

  it('refuses, from a member, messages no actor kind accepts and replies sent to a server; serves the rest', async () => {
    const before = (reason: string, kind: string) => counter(registry, 'iot_peer_items_refused_total', { kind, reason });
    const counts = async () => ({
      unknownType: await before('unknown_type', 'ask'),
      unknownActor: await before('unknown_actor', 'ask'),
      notMessage: await before('not_a_message', 'tell'),
      reply: await before('reply_to_server', 'reply'),
    });
    const start = await counts();
    const request = (id: number, actorId: string, msg: unknown): WirePeerMessage => ({
      request: { id, actor_id: actorId, payload: payload(msg), timeout_ms: 1_000, hops: 0, epoch: 1 },
    });
    const tell = (actorId: string, msg: unknown): WirePeerMessage => ({
      tell: { actor_id: actorId, payload: payload(msg), durable: false, hops: 0, epoch: 1 },
    });
    const { status: s, replies } = await rawExchange(
      port,
      proof(),
      [
        request(1, 'home:h1', { type: 'home.steal' }),
        request(2, 'vault:h1', { type: 'home.get' }),
        request(3, 'home:h1', { type: 'home.get' }),
        tell('device:h1:lock', [1, 2]),
        tell('device:h1:lock', { type: 'shadow.get' }),
        { reply: { id: 9, payload: payload({ ok: true, value: 1 }) } },
      ],
      200,
    );
    expect(s.code).toBe(status.OK);
    const byId = new Map(replies.map((r) => [String(r.id), JSON.parse(Buffer.from(r.payload).toString()) as unknown]));
    expect(byId.get('1')).toMatchObject({
      ok: false,
      error: { code: 'invalid_argument', message: expect.stringContaining('unknown_type') },
    });
    expect(byId.get('2')).toMatchObject({
      ok: false,
      error: { code: 'invalid_argument', message: expect.stringContaining('unknown_actor') },
    });
    expect(byId.get('3')).toEqual(ok({ applied: true }));
    expect(seen.asks).toEqual([{ actorId: 'home:h1', msg: { type: 'home.get' } }]);
    expect(seen.tells).toEqual([{ actorId: 'device:h1:lock', msg: { type: 'shadow.get' } }]);
    expect(await counts()).toEqual({
      unknownType: start.unknownType + 1,
      unknownActor: start.unknownActor + 1,
      notMessage: start.notMessage + 1,
      reply: start.reply + 1,
    });
    seen.asks.length = 0;
    seen.tells.length = 0;
  });
});

/**
 * A peer port that accepts every stream and records what arrives, answering as `answerAs` with the
 * server proof `answer` makes (none: no proof at all).
 */
async function impostor(answerAs: string, answer?: (md: Metadata, clientNonce: string) => void) {
  const received: WirePeerBatch[] = [];
  const server = new Server();
  server.addService(peerService(), {
    Exchange: (call: ServerDuplexStream<WirePeerBatch, WirePeerBatch>) => {
      const md = new Metadata();
      md.set(PEER_NODE_HEADER, answerAs);
      const [nonce] = call.metadata.get(PEER_NONCE_HEADER);
      answer?.(md, String(nonce));
      call.sendMetadata(md);
      call.on('data', (batch: WirePeerBatch) => received.push(batch));
      call.on('error', () => {});
      call.on('end', () => call.end());
    },
  });
  const port = await bindServer(server, HOST, 0);
  return { port, received, close: () => shutdownServer(server, 100) };
}

describe('PeerClient, before it writes anything, checks that the server is the node it dialed and a member', () => {
  it.each([
    ['a server without the cluster secret (no proof)', 'node-b', undefined],
    ['a server with a guessed proof', 'node-b', (md: Metadata) => md.set('x-peer-server-mac', 'ab'.repeat(32))],
    [
      'a server whose proof belongs to another stream',
      'node-b',
      (md: Metadata) => signPeerAnswer(md, SECRET, 'peer-auth', 'node-b', '0'.repeat(32)),
    ],
    [
      'a member answering as another node (a stale address, or a node dialing itself)',
      'node-c',
      (md: Metadata, nonce: string) => signPeerAnswer(md, SECRET, 'peer-auth', 'node-c', nonce),
    ],
  ])('%s gets no message, and the asks fail unavailable as a breaker failure', async (_name, answerAs, answer) => {
    const fake = await impostor(answerAs, answer);
    const registry = new Registry();
    const client = new PeerClient(`${HOST}:${fake.port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: AUTH,
      logger: silentLogger,
      registry,
      breaker: { failureThreshold: 2, openMs: 60_000 },
    });
    try {
      const asked = await client.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1);
      expect(asked).toMatchObject({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('node-b') } });
      expect(client.tell('device:h1:lock', { type: 'shadow.get' }, true, 0, 1).ok).toBe(true);
      expect(client.deliver('hub.command', { command: 'unlock' }).ok).toBe(true);
      // The second ask reopens a stream, which fails the same way: the breaker opens after two.
      expect(await client.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      expect(client.breakerState).toBe('open');
      expect(await counter(registry, 'iot_peer_stream_opens_total', { peer: 'node-b' })).toBe(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(fake.received).toEqual([]);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  it('writes once a member proved itself, including what close flushed before the answer', async () => {
    const fake = await impostor('node-b', (md, nonce) => signPeerAnswer(md, SECRET, 'peer-auth', 'node-b', nonce));
    const client = new PeerClient(`${HOST}:${fake.port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      expect(client.tell('device:h1:lock', { type: 'shadow.get' }, true, 0, 1).ok).toBe(true);
      await client.close();
      const items = fake.received.flatMap((b) => b.items);
      expect(items.map((i) => i.tell?.actor_id)).toEqual(['device:h1:lock']);
    } finally {
      await client.close();
      await fake.close();
    }
  });
});
