/**
 * The hub port's TCP listener, in front of grpc-js: caps the connections one node holds, counts
 * them, and closes a connection that opens no gRPC call in time. Accepted sockets are injected into
 * the gRPC server (`Server.createConnectionInjector`), which then owns them as if it had accepted them.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Counter, Gauge } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';

export interface ConnectionGateOptions {
  /** Connections held at most; past it new ones are closed at once (before any byte is read). */
  readonly maxConnections: number;
  /**
   * Milliseconds a connection has to open its first gRPC call; then it is closed. A gRPC client
   * opens its call right after the HTTP/2 preface (and TLS), so this bounds a connection that never
   * speaks HTTP/2 (or never finishes TLS); an HTTP/2 connection idle after its calls is grpc-js's
   * `grpc.max_connection_idle_ms`.
   */
  readonly firstCallMs: number;
  /** Hands an accepted socket to the gRPC server. */
  readonly inject: (socket: Socket) => void;
  readonly connections: Gauge;
  readonly refused: Counter<'reason'>;
  readonly log: Logger;
}

/** `remoteAddress:remotePort`, as grpc-js's `call.getPeer()` spells a TCP peer. */
const peerOf = (socket: Socket): string => `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;

export class ConnectionGate {
  private readonly server: NetServer;
  /** Connections that have not opened a gRPC call yet, by peer, with the timer that closes them. */
  private readonly silent = new Map<string, { readonly socket: Socket; readonly timer: NodeJS.Timeout }>();
  private readonly refusedAtCap: { inc(): void };
  private readonly refusedSilent: { inc(): void };
  private count = 0;

  constructor(private readonly options: ConnectionGateOptions) {
    requirePositiveInt('maxConnections', options.maxConnections);
    this.refusedAtCap = options.refused.labels('cap');
    this.refusedSilent = options.refused.labels('silent');
    // Socket defaults as grpc-js's own listener has them: `noDelay: true` cost ~10 % more CPU per
    // report on the in-process ingest run (every small ack its own packet).
    this.server = createServer();
    // Node closes a connection past maxConnections before it makes a socket of it, and says so with 'drop'.
    this.server.maxConnections = options.maxConnections;
    this.server.on('drop', () => this.refusedAtCap.inc());
    this.server.on('connection', (socket) => this.accept(socket));
  }

  /** Binds `host:port` (0 = a free port) and resolves the port bound. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Connections open now. */
  get open(): number {
    return this.count;
  }

  /** A gRPC call arrived from `peer` (grpc-js `getPeer()`): its connection speaks gRPC and may stay. */
  called(peer: string): void {
    const entry = this.silent.get(peer);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.silent.delete(peer);
  }

  /** Stops accepting; connections not yet speaking gRPC are closed (the gRPC server ends the others). */
  close(): Promise<void> {
    for (const { socket } of this.silent.values()) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.count++;
    this.options.connections.inc();
    const peer = peerOf(socket);
    const timer = setTimeout(() => {
      if (this.silent.get(peer)?.socket !== socket) return;
      this.silent.delete(peer);
      this.refusedSilent.inc();
      socket.destroy();
    }, this.options.firstCallMs);
    this.silent.set(peer, { socket, timer });
    socket.once('close', () => {
      this.count--;
      this.options.connections.dec();
      const entry = this.silent.get(peer);
      if (entry?.socket === socket) {
        clearTimeout(entry.timer);
        this.silent.delete(peer);
      }
    });
    // The HTTP/2 session (or TLS) handles the socket's errors once injected; a reset before that
    // must not become an uncaught 'error'.
    socket.on('error', (err) => this.options.log.debug({ err, peer }, 'hub connection error'));
    this.options.inject(socket);
  }
}
