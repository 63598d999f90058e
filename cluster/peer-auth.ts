/** Membership proof on peer streams: a per-stream HMAC of the cluster secret, and the mutual TLS material of the peer port. */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { ServerCredentials, type Metadata, type Server } from '@grpc/grpc-js';
import { PEER_NODE_HEADER } from './peer-wire.ts';

/** Metadata keys of the stream proof (with PEER_NODE_HEADER, the sender's node id). */
export const PEER_TIME_HEADER = 'x-peer-time';
export const PEER_NONCE_HEADER = 'x-peer-nonce';
export const PEER_MAC_HEADER = 'x-peer-mac';
/** Response metadata key of the server's proof (`signPeerAnswer`): the client checks it before it writes anything. */
export const PEER_SERVER_MAC_HEADER = 'x-peer-server-mac';

/**
 * Milliseconds a stream proof's time may differ from the receiver's clock. Nodes' clocks must agree
 * within it (NTP); a captured proof cannot be replayed once it is older, and within it the nonce
 * is remembered.
 */
export const PEER_AUTH_SKEW_MS = 30_000;

/** Nonces remembered at most; past it the oldest is forgotten (only holders of the secret can fill it). */
const MAX_REMEMBERED_NONCES = 100_000;

/**
 * TCP connections the mutual TLS listener holds at most, handshaking or established. Each node
 * dials every other node over one connection (one stream per ordered node pair), so this bounds
 * the cluster size a node serves at 256 while keeping a flood of idle handshakes (each held up to
 * PEER_TLS_HANDSHAKE_TIMEOUT_MS) from exhausting file descriptors. Past it, new connections are dropped.
 */
export const PEER_MAX_CONNECTIONS = 256;

/**
 * TCP connections the mutual TLS listener holds at most from one remote address. A member needs one
 * or two (its channel, and a second while it reconnects); without this bound one unauthenticated
 * host holding PEER_MAX_CONNECTIONS idle handshakes would lock every member out. Past it, a new
 * connection from that address is dropped before its handshake.
 */
export const PEER_MAX_CONNECTIONS_PER_ADDRESS = 32;

/**
 * Milliseconds a connection may take to complete its TLS handshake before it is dropped. A
 * handshake between nodes takes milliseconds; the bound is how long a client that never finishes
 * one holds a connection slot.
 */
export const PEER_TLS_HANDSHAKE_TIMEOUT_MS = 3_000;

const NONCE = /^[0-9a-f]{32}$/;
const MAC = /^[0-9a-f]{64}$/;
const TIME = /^[0-9]{1,16}$/;

/** PEM material of mutual TLS between nodes: this node's certificate and key, and the cluster CA both sides' certificates chain to. */
export interface PeerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/**
 * How nodes of one cluster prove membership to each other; at least one of the two is set, so a
 * peer port is never open:
 * - `secret`: every stream carries node id, time, nonce and HMAC-SHA256(secret, cluster, node id,
 *   target node id, time, nonce); the secret itself never travels. The server answers with
 *   HMAC-SHA256(secret, "server", cluster, its node id, the client's nonce) before the client
 *   writes anything, so both ends prove membership.
 * - `tls`: the peer port serves TLS and requires a client certificate signed by the cluster CA,
 *   and the client checks the server's certificate against the same CA. The certificates are not
 *   tied to a node id or a cluster: every certificate the CA signed is a member, so each cluster
 *   needs its own CA.
 * With both, a stream needs both.
 */
export type PeerAuthConfig = { readonly cluster: string } & (
  { readonly secret: string; readonly tls?: PeerTls | undefined } | { readonly secret?: undefined; readonly tls: PeerTls }
);

/** Why a stream was refused (the `reason` label of `iot_peer_streams_refused_total`). */
export type PeerAuthRefusal = 'unauthenticated' | 'bad_mac' | 'stale_time' | 'replayed_nonce' | 'tls';

export type PeerAuthVerdict =
  { readonly ok: true; readonly nodeId: string; readonly nonce: string } | { readonly ok: false; readonly reason: PeerAuthRefusal };

/** Clocks of the verifier, injectable for tests. */
export interface VerifierClocks {
  /** Epoch ms: compared with the time in a proof (skew check) only. */
  readonly wall?: () => number;
  /** Monotonic ms: when a remembered nonce may be forgotten; a step of the wall clock must not reopen a replay. */
  readonly monotonic?: () => number;
}

const text = (md: Metadata, key: string): string | undefined => {
  const values = md.get(key);
  return values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
};

/**
 * The target node is part of the MAC: a proof captured on a stream to one node is refused by every
 * other (each node remembers only its own nonces). Newlines separate the fields: none may contain
 * one (node ids and clusters are validated, time and nonce are digits).
 */
const macOf = (secret: string, cluster: string, nodeId: string, target: string, time: string, nonce: string): string =>
  createHmac('sha256', secret).update(`client\n${cluster}\n${nodeId}\n${target}\n${time}\n${nonce}`).digest('hex');

/** The server's answer: bound to the client's nonce, so it cannot be replayed to another stream. */
const answerMacOf = (secret: string, cluster: string, serverId: string, clientNonce: string): string =>
  createHmac('sha256', secret).update(`server\n${cluster}\n${serverId}\n${clientNonce}`).digest('hex');

/**
 * Sets this node's stream proof on `md` for a stream to node `target`: a new nonce and MAC for
 * every stream opened. Returns the nonce, which the server's answer must be bound to.
 */
export function signPeerStream(
  md: Metadata,
  secret: string,
  cluster: string,
  nodeId: string,
  target: string,
  now: number = Date.now(),
): string {
  const time = String(now);
  const nonce = randomBytes(16).toString('hex');
  md.set(PEER_NODE_HEADER, nodeId);
  md.set(PEER_TIME_HEADER, time);
  md.set(PEER_NONCE_HEADER, nonce);
  md.set(PEER_MAC_HEADER, macOf(secret, cluster, nodeId, target, time, nonce));
  return nonce;
}

/** Sets the server's answer on its response metadata `md`: its node id and its proof bound to the client's nonce. */
export function signPeerAnswer(md: Metadata, secret: string, cluster: string, serverId: string, clientNonce: string): void {
  md.set(PEER_NODE_HEADER, serverId);
  md.set(PEER_SERVER_MAC_HEADER, answerMacOf(secret, cluster, serverId, clientNonce));
}

/** Why a server's answer was not accepted: it is not the node dialed, or it does not hold the cluster secret. */
export type PeerAnswerRefusal = 'wrong_node' | 'bad_server_mac';

/**
 * Checks a server's answer (`signPeerAnswer`) on the client: the node id must be `expectedId` (the
 * node dialed) and, with a secret, the MAC must be bound to this stream's nonce. Without a secret
 * (mutual TLS alone) only the node id is checked: the server's certificate proved membership.
 */
export function checkPeerAnswer(
  md: Metadata,
  expectedId: string,
  proof: { readonly secret: string; readonly cluster: string; readonly nonce: string } | undefined,
): PeerAnswerRefusal | undefined {
  if (text(md, PEER_NODE_HEADER) !== expectedId) return 'wrong_node';
  if (proof === undefined) return undefined;
  const mac = text(md, PEER_SERVER_MAC_HEADER);
  if (mac === undefined || !MAC.test(mac)) return 'bad_server_mac';
  const expected = Buffer.from(answerMacOf(proof.secret, proof.cluster, expectedId, proof.nonce), 'hex');
  return timingSafeEqual(expected, Buffer.from(mac, 'hex')) ? undefined : 'bad_server_mac';
}

/**
 * Checks stream proofs (`signPeerStream`) addressed to node `selfId` against the cluster secret:
 * the MAC (constant time), the time within PEER_AUTH_SKEW_MS of the wall clock, and a nonce not
 * seen before. Nonces are remembered only for proofs whose MAC is valid, for 2 × skew of the
 * monotonic clock (enough for every time the check accepts, even if the wall clock steps).
 */
export class PeerStreamVerifier {
  /** nonce → monotonic ms when it may be forgotten; insertion order is expiry order. */
  private readonly seen = new Map<string, number>();
  private readonly wall: () => number;
  private readonly monotonic: () => number;

  constructor(
    private readonly secret: string,
    private readonly cluster: string,
    private readonly selfId: string,
    clocks: VerifierClocks = {},
    private readonly skewMs: number = PEER_AUTH_SKEW_MS,
  ) {
    this.wall = clocks.wall ?? Date.now;
    this.monotonic = clocks.monotonic ?? (() => performance.now());
  }

  /** Nonces currently remembered. */
  get remembered(): number {
    return this.seen.size;
  }

  verify(md: Metadata): PeerAuthVerdict {
    const nodeId = text(md, PEER_NODE_HEADER);
    const time = text(md, PEER_TIME_HEADER);
    const nonce = text(md, PEER_NONCE_HEADER);
    const mac = text(md, PEER_MAC_HEADER);
    if (nodeId === undefined || time === undefined || nonce === undefined || mac === undefined) return refuse('unauthenticated');
    if (!TIME.test(time) || !NONCE.test(nonce) || !MAC.test(mac) || nodeId.includes('\n')) return refuse('bad_mac');
    const expected = Buffer.from(macOf(this.secret, this.cluster, nodeId, this.selfId, time, nonce), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return refuse('bad_mac');
    if (Math.abs(Number(time) - this.wall()) > this.skewMs) return refuse('stale_time');
    const now = this.monotonic();
    this.forgetExpired(now);
    if (this.seen.has(nonce)) return refuse('replayed_nonce');
    if (this.seen.size >= MAX_REMEMBERED_NONCES) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(nonce, now + 2 * this.skewMs);
    return { ok: true, nodeId, nonce };
  }

  private forgetExpired(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until > now) return;
      this.seen.delete(nonce);
    }
  }
}

const refuse = (reason: PeerAuthRefusal): PeerAuthVerdict => ({ ok: false, reason });

/** A TLS listener whose connections a gRPC server serves. */
export interface MutualTlsListener {
  /** The port bound. */
  readonly port: number;
  /** Stops accepting connections and destroys those still open (call after the gRPC server has ended its sessions). */
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (port 0 = a free one) for TLS connections whose client certificate chains
 * to the cluster CA, and hands each to `server` (grpc-js connection injection). The handshake is
 * done here rather than by grpc-js' own TLS credentials so that a refused client is seen:
 * `refused` is called for each failed handshake (no certificate, another CA, not TLS at all) and
 * for each connection dropped because its address holds `maxPerAddress` connections already.
 * A plain TCP listener accepts the connections, so that a dropped one costs no TLS work; the
 * others are handed to the TLS server.
 */
export function listenMutualTls(
  server: Server,
  host: string,
  port: number,
  tls: PeerTls,
  refused: (err: Error, remote: string | undefined) => void,
  maxConnections: number = PEER_MAX_CONNECTIONS,
  maxPerAddress: number = PEER_MAX_CONNECTIONS_PER_ADDRESS,
): Promise<MutualTlsListener> {
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const handshaker = createTlsServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
    // A connection that never completes its handshake is not kept for the default two minutes.
    handshakeTimeout: PEER_TLS_HANDSHAKE_TIMEOUT_MS,
  });
  handshaker.on('secureConnection', (socket: TLSSocket) => {
    // A reset after the handshake must not become an uncaught 'error' (grpc-js does the same for its own TLS servers).
    socket.on('error', () => {});
    injector.injectConnection(socket);
  });
  handshaker.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    // With a 'tlsClientError' listener Node leaves the connection open, even past the handshake
    // timeout: without this, a connection that never finishes its handshake would hold its slot for good.
    const remote = socket.remoteAddress;
    socket.destroy();
    refused(err, remote);
  });
  const sockets = new Set<Socket>();
  /** Connections open per remote address; an address leaves the map with its last connection. */
  const perAddress = new Map<string, number>();
  const listener = createNetServer((socket: Socket) => {
    const address = socket.remoteAddress;
    // Undefined once the client has already gone: nothing to serve.
    if (address === undefined) return void socket.destroy();
    const open = perAddress.get(address) ?? 0;
    if (open >= maxPerAddress) {
      socket.destroy();
      refused(new Error(`connection dropped: ${open} connections from this address already`), address);
      return;
    }
    perAddress.set(address, open + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
    handshaker.emit('connection', socket);
  });
  // Node drops connections past it before any handshake work.
  listener.maxConnections = maxConnections;
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      const address = listener.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : port,
        close: () =>
          new Promise<void>((done) => {
            listener.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
