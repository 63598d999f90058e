/** The peer gRPC server: serves other nodes' forwarded asks, tells and deliveries. */
import { Server, Metadata, status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import { fail, runtimeError, type Result } from '../runtime/result.ts';
import { BatchWriter } from './batch-writer.ts';
import { bindServer, shutdownServer } from './grpc-server.ts';
import type { DeliveryOutcome } from './node-delivery.ts';
import {
  listenMutualTls,
  PEER_MAX_CONNECTIONS,
  PeerStreamVerifier,
  signPeerAnswer,
  type MutualTlsListener,
  type PeerAuthConfig,
  type PeerAuthRefusal,
} from './peer-auth.ts';
import { LogThrottle } from '../runtime/log-throttle.ts';
import { runWithCarrier, tracingOn } from '../runtime/tracing.ts';
import { PeerMessageGuard, type AcceptsMessage } from './peer-message-guard.ts';
import { PeerMetrics } from './peer-metrics.ts';
import {
  DEFAULT_PEER_LIMITS,
  fromJsonBytes,
  PEER_NODE_HEADER,
  peerService,
  toJsonBytes,
  type PeerLimits,
  type WireDelivery,
  type WirePeerBatch,
  type WirePeerMessage,
  type WireRequest,
  type WireTell,
} from './peer-wire.ts';

/** What this node does with forwarded items; the node wires it to its cluster router and node delivery. */
export interface PeerHandler {
  /** An ask forwarded by another node. timeoutMs: milliseconds the caller waits; hops: forwards so far; epoch: the sender's ring epoch. */
  ask(actorId: string, msg: unknown, timeoutMs: number, hops: number, epoch: number): Promise<Result<unknown>>;
  /** A one-way message; durable: a consequence of a durable step (`deliver`), else a plain `tell`. */
  tell(actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): void;
  /** A payload on a delivery channel (node-delivery.ts); from: the sending node's id. */
  deliver(channel: string, payload: unknown, from: string): DeliveryOutcome;
}

export interface PeerServerDeps {
  readonly nodeId: string;
  readonly handler: PeerHandler;
  /** How peers prove membership (a cluster secret, mutual TLS or both): checked on every stream before any message is read. */
  readonly auth: PeerAuthConfig;
  /** Whether a request's or tell's message may reach its actor (peer-message-guard.ts); refused ones never reach the handler. */
  readonly acceptsMessage: AcceptsMessage;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly limits?: Partial<PeerLimits>;
  /** Milliseconds `close()` waits for in-flight asks to be answered before it forces streams down; default PEER_SERVER_SHUTDOWN_GRACE_MS. */
  readonly shutdownGraceMs?: number;
  /** TCP connections the mutual TLS listener holds at most; default PEER_MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /** An inbound stream was cancelled (the peer went away without ending it): that node may be dead. Not called while this server closes. */
  readonly onStreamBroken?: (peer: string) => void;
}

/** Milliseconds `close()` lets in-flight asks be answered before it forces the peer streams down (the default of `shutdownGraceMs`). */
export const PEER_SERVER_SHUTDOWN_GRACE_MS = 5_000;

/**
 * Connection hygiene of the peer port (grpc-js server options). A peer holds one long-lived stream
 * per ordered node pair, pinging every 10 s (peer-client.ts); anything else is not a peer.
 */
export const PEER_SERVER_OPTIONS = {
  // A connection without a stream for 5 minutes is closed (a client reconnects in 100 ms when it needs one).
  'grpc.max_connection_idle_ms': 300_000,
  // Ping clients that go quiet; one that does not answer within 10 s is gone.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  // One stream per connection in steady state; a few more while a stream is replaced.
  'grpc.max_concurrent_streams': 8,
} as const;

type PeerCall = ServerDuplexStream<WirePeerBatch, WirePeerBatch>;

/** A rejected item's error: `actor_crashed` because retrying the same bytes cannot succeed. */
const rejected = (message: string): Result<never> => runtimeError('actor_crashed', message);

/** A reply: the handler's Result, or a refusal with a domain code (`invalid_argument`). */
type PeerReply = Result<unknown, { readonly code: string; readonly message: string }>;

/**
 * Accepts peer streams. Each request is answered on the stream it came on, once, by id; replies
 * finishing in the same tick share a batch. A malformed item or a throwing handler is logged and
 * answered with an error Result: it never ends the stream.
 */
export class PeerServer {
  private readonly server: Server;
  private readonly streams = new Set<InboundStream>();
  private readonly log: Logger;
  private readonly metrics: PeerMetrics;
  private readonly context: ServerContext;
  /** Checks the per-stream HMAC; undefined when certificates alone authenticate (mutual TLS, no secret). */
  private readonly verifier: PeerStreamVerifier | undefined;
  private readonly refusalLog = new LogThrottle();
  private tlsListener: MutualTlsListener | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: PeerServerDeps) {
    this.log = deps.logger.child({ component: 'peer-server' });
    this.metrics = PeerMetrics.of(deps.registry);
    const limits = { ...DEFAULT_PEER_LIMITS, ...deps.limits };
    this.verifier = deps.auth.secret === undefined ? undefined : new PeerStreamVerifier(deps.auth.secret, deps.auth.cluster, deps.nodeId);
    this.context = {
      handler: deps.handler,
      guard: new PeerMessageGuard(deps.acceptsMessage, this.metrics, this.log),
      served: bindServed(this.metrics),
      limits,
      log: this.log,
      closing: () => this.closing !== undefined,
      broken: (peer) => {
        if (this.closing !== undefined) return;
        try {
          deps.onStreamBroken?.(peer);
        } catch (err) {
          this.log.error({ err }, 'stream-broken hook failed');
        }
      },
      forget: (s) => {
        if (this.streams.delete(s)) this.metrics.inboundStreams.dec();
      },
    };
    this.server = new Server({
      ...PEER_SERVER_OPTIONS,
      'grpc.max_receive_message_length': limits.maxMessageBytes,
      'grpc.max_send_message_length': limits.maxMessageBytes,
    });
    this.server.addService(peerService(), { Exchange: (call: PeerCall) => this.accept(call) });
  }

  /**
   * Binds `host:port` (port 0 = a free port) and resolves the port actually bound. With mutual
   * TLS the port serves TLS only and the handshake refuses a client without a certificate signed
   * by the cluster CA (counted as reason `tls`).
   */
  async listen(host: string, port: number): Promise<number> {
    const tls = this.deps.auth.tls;
    let bound: number;
    if (tls) {
      this.tlsListener = await listenMutualTls(
        this.server,
        host,
        port,
        tls,
        (err, remote) => this.refused('tls', remote ?? 'unknown', err.message),
        this.deps.maxConnections ?? PEER_MAX_CONNECTIONS,
      );
      bound = this.tlsListener.port;
    } else {
      bound = await bindServer(this.server, host, port);
    }
    const auth = [tls ? 'mutual TLS' : undefined, this.verifier ? 'cluster secret' : undefined].filter(Boolean).join(' + ');
    this.log.info({ host, port: bound, auth }, 'peer server listening');
    return bound;
  }

  /**
   * Stops taking streams, answers new requests with `stopping`, lets in-flight asks reply, then
   * ends every stream; forced after `shutdownGraceMs`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const s of this.streams) s.endWhenIdle();
    const graceMs = this.deps.shutdownGraceMs ?? PEER_SERVER_SHUTDOWN_GRACE_MS;
    if (!(await shutdownServer(this.server, graceMs)))
      this.log.warn({ graceMs, streams: this.streams.size }, 'peer streams still open after the grace period: forcing shutdown');
    await this.tlsListener?.close();
    this.log.info('peer server closed');
  }

  /** Authenticates the stream before anything listens to it: a refused stream ends UNAUTHENTICATED with no message read. */
  private accept(call: PeerCall): void {
    const refusal = this.verifier?.verify(call.metadata);
    if (refusal && !refusal.ok) {
      this.refused(refusal.reason, call.getPeer());
      call.emit('error', { code: status.UNAUTHENTICATED, details: `peer stream refused: ${refusal.reason}` });
      return;
    }
    // With a secret the node id is the one the MAC vouches for; with certificates alone, the one the peer says.
    const [from] = call.metadata.get(PEER_NODE_HEADER);
    const peer = refusal?.ok ? refusal.nodeId : typeof from === 'string' ? from : call.getPeer();
    if (this.closing) {
      call.emit('error', { code: status.UNAVAILABLE, details: `node ${this.deps.nodeId} is shutting down` });
      return;
    }
    const md = new Metadata();
    // The client writes nothing before it has checked this answer: with a secret, this node proves membership too.
    const { secret, cluster } = this.deps.auth;
    if (secret !== undefined && refusal?.ok) signPeerAnswer(md, secret, cluster, this.deps.nodeId, refusal.nonce);
    else md.set(PEER_NODE_HEADER, this.deps.nodeId);
    call.sendMetadata(md);
    const stream = new InboundStream(call, peer, this.context);
    this.streams.add(stream);
    this.metrics.inboundStreams.inc();
    this.log.info({ peer }, 'peer stream opened');
  }

  /** Counts a refused stream or connection and logs it, throttled (a scan must not flood the logs). */
  private refused(reason: PeerAuthRefusal, from: string, detail?: string): void {
    this.metrics.streamsRefused.labels(reason).inc();
    const suppressed = this.refusalLog.admit();
    if (suppressed !== undefined) this.log.warn({ from, reason, detail, suppressed }, 'peer stream refused');
  }
}

interface Inc {
  inc(): void;
}

/** The server's metric children, bound once. */
interface ServedMetrics {
  readonly askOk: Inc;
  readonly askError: Inc;
  readonly askMalformed: Inc;
  readonly askThrew: Inc;
  readonly tell: Inc;
  readonly tellMalformed: Inc;
  readonly tellThrew: Inc;
  readonly delivery: Record<DeliveryOutcome | 'malformed' | 'threw', Inc>;
  readonly unknown: Inc;
  readonly receivedBatch: { observe(items: number): void };
  readonly sentBatch: { observe(items: number): void };
}

function bindServed(m: PeerMetrics): ServedMetrics {
  const s = m.served;
  return {
    askOk: s.labels('ask', 'ok'),
    askError: s.labels('ask', 'error'),
    askMalformed: s.labels('ask', 'malformed'),
    askThrew: s.labels('ask', 'threw'),
    tell: s.labels('tell', 'ok'),
    tellMalformed: s.labels('tell', 'malformed'),
    tellThrew: s.labels('tell', 'threw'),
    delivery: {
      ok: s.labels('delivery', 'ok'),
      refused: s.labels('delivery', 'refused'),
      no_handler: s.labels('delivery', 'no_handler'),
      malformed: s.labels('delivery', 'malformed'),
      threw: s.labels('delivery', 'threw'),
    },
    unknown: s.labels('unknown', 'malformed'),
    receivedBatch: m.batchItems.labels('server', 'received'),
    sentBatch: m.batchItems.labels('server', 'sent'),
  };
}

/** What every inbound stream of one server shares. */
interface ServerContext {
  readonly handler: PeerHandler;
  readonly guard: PeerMessageGuard;
  readonly served: ServedMetrics;
  readonly limits: PeerLimits;
  readonly log: Logger;
  closing(): boolean;
  /** The stream from `peer` was cancelled under it (onStreamBroken). */
  broken(peer: string): void;
  forget(stream: InboundStream): void;
}

/** One inbound stream: dispatches items to the handler and batches the replies. */
class InboundStream {
  private inFlight = 0;
  private ending = false;
  private finished = false;
  private readonly writer: BatchWriter;
  private readonly log: Logger;

  constructor(
    private readonly call: PeerCall,
    private readonly peer: string,
    private readonly ctx: ServerContext,
  ) {
    this.log = ctx.log;
    this.writer = new BatchWriter({
      limits: ctx.limits,
      target: () => (this.open ? call : undefined),
      written: (n) => ctx.served.sentBatch.observe(n),
      flushed: () => this.maybeEnd(),
    });
    call.on('data', (batch: WirePeerBatch) => this.receive(batch));
    // The client half-closed: answer what is in flight, then end.
    call.on('end', () => this.endWhenIdle());
    call.on('cancelled', () => {
      this.writer.clear();
      this.done('cancelled');
      // A client that goes away (killed, cut off) cancels the stream, sometimes after its end was
      // read: either way the peer may be dead (cancelled is emitted once per call).
      ctx.broken(peer);
    });
    call.on('error', (err: unknown) => this.log.debug({ err, peer }, 'peer stream error'));
    call.on('finish', () => this.done('ended'));
  }

  private get open(): boolean {
    return !this.call.cancelled && !this.call.destroyed && !this.call.writableEnded;
  }

  endWhenIdle(): void {
    this.ending = true;
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (this.ending && this.inFlight === 0 && this.writer.queued === 0 && this.open) this.call.end();
  }

  private done(how: string): void {
    if (this.finished) return;
    this.finished = true;
    this.ctx.forget(this);
    this.log.info({ peer: this.peer, how }, 'peer stream closed');
  }

  private receive(batch: WirePeerBatch): void {
    const items = batch.items ?? [];
    this.ctx.served.receivedBatch.observe(items.length);
    for (const item of items) {
      try {
        this.handle(item);
      } catch (err) {
        // A bug in dispatch, not in the handler: keep the stream for the other items.
        this.log.error({ err, peer: this.peer, body: item.body }, 'peer item failed');
      }
    }
  }

  private handle(item: WirePeerMessage): void {
    switch (item.body) {
      case 'request':
        return this.request(item.request!);
      case 'tell':
        return this.tell(item.tell!);
      case 'delivery':
        return this.delivery(item.delivery!);
      case 'reply':
        // Replies travel from a server to its client only: one arriving here answers nothing.
        return this.ctx.guard.refused('reply', 'reply_to_server', this.peer);
      default:
        this.ctx.served.unknown.inc();
        this.log.warn({ peer: this.peer, body: item.body }, 'peer item without a request, tell or delivery: ignored');
    }
  }

  private request(r: WireRequest): void {
    const id = r.id;
    if (this.ctx.closing()) return this.reply(id, runtimeError('stopping', 'node shutting down'));
    let msg: unknown;
    try {
      msg = fromJsonBytes(r.payload);
    } catch (err) {
      this.ctx.served.askMalformed.inc();
      this.log.warn({ err, peer: this.peer, id, actorId: r.actor_id }, 'peer request payload is not JSON');
      return this.reply(id, rejected(`request ${id} for ${r.actor_id}: payload is not JSON`));
    }
    const refusal = this.ctx.guard.check('ask', this.peer, r.actor_id, msg);
    if (refusal !== undefined)
      return this.reply(id, fail({ code: 'invalid_argument', message: `request ${id}: not a message for ${r.actor_id} (${refusal})` }));
    this.inFlight++;
    let answer: Promise<Result<unknown>>;
    try {
      const ask = (): Promise<Result<unknown>> => this.ctx.handler.ask(r.actor_id, msg, r.timeout_ms, r.hops, Number(r.epoch));
      // With tracing on, the sender's trace (if any) is restored: the ask continues it here.
      answer = tracingOn ? runWithCarrier(r.trace || undefined, ask) : ask();
    } catch (err) {
      answer = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    answer.then(
      (result) => {
        this.inFlight--;
        (result.ok ? this.ctx.served.askOk : this.ctx.served.askError).inc();
        this.reply(id, result);
      },
      (err: unknown) => {
        this.inFlight--;
        this.ctx.served.askThrew.inc();
        this.log.error({ err, peer: this.peer, actorId: r.actor_id }, 'peer ask handler failed');
        this.reply(id, rejected(`ask of ${r.actor_id} failed on the owner node: ${err instanceof Error ? err.message : String(err)}`));
      },
    );
  }

  private reply(id: string | number, result: PeerReply): void {
    if (!this.open) return;
    let payload: Buffer;
    try {
      payload = toJsonBytes(result);
      if (payload.byteLength > this.ctx.limits.maxMessageBytes - 1024) {
        payload = toJsonBytes(runtimeError('payload_too_large', `reply of ${payload.byteLength} bytes exceeds the peer message limit`));
      }
    } catch (err) {
      this.log.error({ err, peer: this.peer, id }, 'peer reply has no JSON form');
      payload = toJsonBytes(rejected('the reply has no JSON form'));
    }
    this.writer.push({ reply: { id, payload } });
  }

  private tell(t: WireTell): void {
    let msg: unknown;
    try {
      msg = fromJsonBytes(t.payload);
    } catch (err) {
      this.ctx.served.tellMalformed.inc();
      this.log.warn({ err, peer: this.peer, actorId: t.actor_id }, 'peer tell payload is not JSON: dropped');
      return;
    }
    if (this.ctx.guard.check('tell', this.peer, t.actor_id, msg) !== undefined) return;
    try {
      if (tracingOn) runWithCarrier(t.trace || undefined, () => this.ctx.handler.tell(t.actor_id, msg, t.durable, t.hops, Number(t.epoch)));
      else this.ctx.handler.tell(t.actor_id, msg, t.durable, t.hops, Number(t.epoch));
      this.ctx.served.tell.inc();
    } catch (err) {
      this.ctx.served.tellThrew.inc();
      this.log.error({ err, peer: this.peer, actorId: t.actor_id }, 'peer tell handler failed');
    }
  }

  private delivery(d: WireDelivery): void {
    const served = this.ctx.served.delivery;
    let payload: unknown;
    try {
      payload = fromJsonBytes(d.payload);
    } catch (err) {
      served.malformed.inc();
      this.log.warn({ err, peer: this.peer, channel: d.channel }, 'peer delivery payload is not JSON: dropped');
      return;
    }
    try {
      const outcome = tracingOn
        ? runWithCarrier(d.trace || undefined, () => this.ctx.handler.deliver(d.channel, payload, this.peer))
        : this.ctx.handler.deliver(d.channel, payload, this.peer);
      served[outcome].inc();
    } catch (err) {
      served.threw.inc();
      this.log.error({ err, peer: this.peer, channel: d.channel }, 'peer delivery handler failed');
    }
  }
}
