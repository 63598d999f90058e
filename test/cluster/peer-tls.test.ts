/** Peer authentication by mutual TLS: certificates of the cluster CA are served, any other client is refused at the handshake. */
import { Client, credentials, Metadata, status, type ChannelCredentials, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { messageRefusal } from '../../actors/message-kinds.ts';
import { PEER_MAX_CONNECTIONS_PER_ADDRESS, signPeerStream, type PeerAuthConfig, type PeerTls } from '../../cluster/peer-auth.ts';
import { PeerClient } from '../../cluster/peer-client.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { exchangeMethod, type WirePeerBatch, type WirePeerMessage } from '../../cluster/peer-wire.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok } from '../../runtime/result.ts';
import { makeTestPki, type CertFiles, type TestPki } from '../support/test-certificates.ts';

const HOST = '127.0.0.1';
const SECRET = 'peer-tls-test-cluster-secret-0123456789abcdef';

function recordingHandler() {
  const seen: unknown[] = [];
  const handler: PeerHandler = {
    ask: (actorId, msg) => {
      seen.push({ actorId, msg });
      return Promise.resolve(ok({ served: true }));
    },
    tell: (actorId, msg) => void seen.push({ actorId, msg }),
    deliver: (channel, payload) => {
      seen.push({ channel, payload });
      return 'ok';
    },
  };
  return { handler, seen };
}

async function refusedTls(registry: Registry): Promise<number> {
  const values = (await registry.getSingleMetric('iot_peer_streams_refused_total')?.get())?.values ?? [];
  return values.filter((v) => v.labels['reason'] === 'tls').reduce((s, v) => s + v.value, 0);
}

const FORGED: WirePeerMessage = {
  tell: {
    actor_id: 'device:h1:lock',
    payload: Buffer.from(JSON.stringify({ type: 'report', seq: 1, values: { locked: false } })),
    durable: true,
    hops: 0,
    epoch: 1,
  },
};

/** A raw Exchange stream over `channel`: sends a forged report and resolves with the status it ends with. */
function rawExchange(port: number, channel: ChannelCredentials, md = new Metadata()): Promise<StatusObject> {
  const raw = new Client(`${HOST}:${port}`, channel);
  const m = exchangeMethod();
  const call: ClientDuplexStream<WirePeerBatch, WirePeerBatch> = raw.makeBidiStreamRequest(
    m.path,
    m.requestSerialize,
    m.responseDeserialize,
    md,
  );
  call.on('error', () => {});
  call.on('data', () => {});
  call.write({ items: [FORGED] });
  const timer = setTimeout(() => call.end(), 500);
  return new Promise((resolve) =>
    call.on('status', (s: StatusObject) => {
      clearTimeout(timer);
      raw.close();
      resolve(s);
    }),
  );
}

describe('PeerServer with mutual TLS', () => {
  let pki: TestPki;
  /** The peer server's certificate (serverAuth), the member's (clientAuth), one of another CA, and the cluster CA. */
  let nodeB: CertFiles;
  let nodeA: CertFiles;
  let rogue: CertFiles;
  let ca: Buffer;
  const tlsOf = (node: CertFiles): PeerTls => ({ cert: pki.read(node.cert), key: pki.read(node.key), ca });

  beforeAll(() => {
    pki = makeTestPki();
    ca = pki.read(pki.ca);
    nodeB = pki.server;
    nodeA = pki.client;
    rogue = pki.strangerClient;
  });
  afterAll(() => pki.remove());

  async function start(auth: PeerAuthConfig, maxConnections?: number) {
    const registry = new Registry();
    const { handler, seen } = recordingHandler();
    const server = new PeerServer({
      nodeId: 'node-b',
      handler,
      auth,
      acceptsMessage: messageRefusal,
      logger: silentLogger,
      registry,
      maxConnections,
    });
    const port = await server.listen(HOST, 0);
    return { server, port, registry, seen };
  }

  it('serves a node whose certificate the cluster CA signed, and refuses every other client at the handshake', async () => {
    const { server, port, registry, seen } = await start({ cluster: 'peer-tls', tls: tlsOf(nodeB) });
    const member = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: { cluster: 'peer-tls', tls: tlsOf(nodeA) },
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      expect(await member.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1)).toEqual(ok({ served: true }));
      seen.length = 0;

      // A certificate of another CA, no certificate at all, plaintext: none gets a stream.
      const outcomes = [
        await rawExchange(port, credentials.createSsl(ca, pki.read(rogue.key), pki.read(rogue.cert))),
        await rawExchange(port, credentials.createSsl(ca)),
        await rawExchange(port, credentials.createInsecure()),
      ];
      for (const s of outcomes) expect(s.code).toBe(status.UNAVAILABLE);
      expect(seen).toEqual([]);
      await vi.waitFor(async () => expect(await refusedTls(registry)).toBeGreaterThanOrEqual(3), { timeout: 5_000 });

      const intruder = new PeerClient(`${HOST}:${port}`, {
        nodeId: 'node-a',
        peerId: 'node-b',
        auth: { cluster: 'peer-tls', tls: tlsOf(rogue) },
        logger: silentLogger,
        registry: new Registry(),
      });
      expect(await intruder.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      await intruder.close();
      expect(seen).toEqual([]);
    } finally {
      await member.close();
      await server.close();
    }
  });

  it('with a secret as well, refuses a valid certificate without the stream proof', async () => {
    const auth: PeerAuthConfig = { cluster: 'peer-tls', secret: SECRET, tls: tlsOf(nodeB) };
    const { server, port, seen } = await start(auth);
    try {
      const channel = () => credentials.createSsl(ca, pki.read(nodeA.key), pki.read(nodeA.cert));
      const s = await rawExchange(port, channel());
      expect(s.code).toBe(status.UNAUTHENTICATED);
      expect(seen).toEqual([]);
      const md = new Metadata();
      signPeerStream(md, SECRET, 'peer-tls', 'node-a', 'node-b');
      expect((await rawExchange(port, channel(), md)).code).toBe(status.OK);
      expect(seen).toEqual([{ actorId: 'device:h1:lock', msg: { type: 'report', seq: 1, values: { locked: false } } }]);
    } finally {
      await server.close();
    }
  });

  it('holds at most maxConnections connections: one more is dropped before its handshake; a member gets in once one is free', async () => {
    const { server, port } = await start({ cluster: 'peer-tls', tls: tlsOf(nodeB) }, 3);
    const sockets: Socket[] = [];
    const opened = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, HOST, () => resolve(socket));
        socket.on('error', reject);
        sockets.push(socket);
      });
    const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      // Connections that never start their handshake (each would otherwise be held for the handshake timeout).
      const idle = await Promise.all([opened(), opened(), opened()]);
      const extra = await opened();
      await closed(extra);
      for (const socket of idle) expect(socket.destroyed).toBe(false);
      for (const socket of idle) socket.destroy();
      const member = new PeerClient(`${HOST}:${port}`, {
        nodeId: 'node-a',
        peerId: 'node-b',
        auth: { cluster: 'peer-tls', tls: tlsOf(nodeA) },
        logger: silentLogger,
        registry: new Registry(),
      });
      try {
        await vi.waitFor(async () => expect(await member.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1)).toEqual(ok({ served: true })), {
          timeout: 10_000,
          interval: 50,
        });
      } finally {
        await member.close();
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('holds at most PEER_MAX_CONNECTIONS_PER_ADDRESS connections from one address: a member still gets in, the next one is dropped', async () => {
    const { server, port, registry } = await start({ cluster: 'peer-tls', tls: tlsOf(nodeB) });
    const sockets: Socket[] = [];
    const opened = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, HOST, () => resolve(socket));
        socket.on('error', reject);
        sockets.push(socket);
      });
    const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const member = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-b',
      auth: { cluster: 'peer-tls', tls: tlsOf(nodeA) },
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      // An attacker on the member's address holds every slot but one with handshakes it never finishes.
      const idle: Socket[] = [];
      for (let i = 0; i < PEER_MAX_CONNECTIONS_PER_ADDRESS - 1; i++) idle.push(await opened());
      expect(await member.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1)).toEqual(ok({ served: true }));
      const before = await refusedTls(registry);

      // The address is at its cap: the next connection is dropped at once, while the earlier ones
      // (which a handshake timeout would have closed first) are still held.
      const extra = await opened();
      await closed(extra);
      for (const socket of idle) expect(socket.destroyed).toBe(false);
      await vi.waitFor(async () => expect(await refusedTls(registry)).toBeGreaterThan(before), { timeout: 5_000 });
      expect(await member.ask('home:h1', { type: 'home.get' }, 5_000, 0, 1)).toEqual(ok({ served: true }));

      // A closed connection frees its slot: one more is held, and the one after it is dropped again.
      // Ending it (rather than a reset) waits for the server to close its side, so the slot is free.
      const leaving = idle.pop();
      leaving?.end();
      if (leaving) await closed(leaving);
      const again = await opened();
      const probe = await opened();
      await closed(probe);
      expect(again.destroyed).toBe(false);
    } finally {
      await member.close();
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('closes a connection that does not finish its handshake within PEER_TLS_HANDSHAKE_TIMEOUT_MS, and counts it', async () => {
    const { server, port, registry } = await start({ cluster: 'peer-tls', tls: tlsOf(nodeB) });
    // The first bytes of a ClientHello, and nothing more.
    const socket = connect(port, HOST, () => socket.write(Buffer.from([0x16, 0x03, 0x01])));
    socket.on('error', () => {});
    try {
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await vi.waitFor(async () => expect(await refusedTls(registry)).toBe(1), { timeout: 5_000 });
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  it('refuses to talk to a member certificate answering as another node than the one dialed', async () => {
    const { server, port, seen } = await start({ cluster: 'peer-tls', tls: tlsOf(nodeB) });
    const client = new PeerClient(`${HOST}:${port}`, {
      nodeId: 'node-a',
      peerId: 'node-z',
      auth: { cluster: 'peer-tls', tls: tlsOf(nodeA) },
      logger: silentLogger,
      registry: new Registry(),
    });
    try {
      expect(await client.ask('home:h1', { type: 'home.get' }, 2_000, 0, 1)).toMatchObject({
        ok: false,
        error: { code: 'unavailable', message: expect.stringContaining('answered as node node-b') },
      });
      expect(seen).toEqual([]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
