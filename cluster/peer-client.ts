/** Forwarding to one other node: asks, tells and deliveries over one long-lived, batched peer stream. */
import { Client, credentials, Metadata, status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import { runtimeError, type Result, type RuntimeErrorCode } from '../runtime/result.ts';
import { activeCarrier, tracingOn } from '../runtime/tracing.ts';
import { BatchWriter, type BatchTarget } from './batch-writer.ts';
import { CircuitBreaker, DEFAULT_BREAKER, type BreakerConfig, type BreakerState, type BreakerTransition } from './circuit-breaker.ts';
import { checkPeerAnswer, signPeerStream, type PeerAnswerRefusal, type PeerAuthConfig } from './peer-auth.ts';
import { PeerMetrics } from './peer-metrics.ts';
import {
  DEFAULT_PEER_LIMITS,
  exchangeMethod,
  fromJsonBytes,
  PEER_NODE_HEADER,
  toJsonBytes,
  type PeerLimits,
  type WirePeerBatch,
  type WireReply,
} from './peer-wire.ts';

export interface PeerClientOptions {
  /** This node's id, sent to the peer when the stream opens. */
  readonly nodeId: string;
  /** How this node proves membership: a new HMAC on every stream it opens, a client certificate, or both. */
  readonly auth: PeerAuthConfig;
  /**
   * The remote node's id: the target of this node's stream proofs, the id the server must answer
   * with (anything else ends the stream), metric label, logs, error messages.
   */
  readonly peerId: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly breaker?: BreakerConfig;
  readonly limits?: Partial<PeerLimits>;
  /** Epoch ms, for the breaker and the time in stream proofs; injectable for tests. */
  readonly clock?: () => number;
  /** The stream failed (the peer went away, reset or refused it; not a close by this node): the peer may be dead. */
  readonly onStreamBroken?: (peerId: string) => void;
}

interface PendingAsk {
  readonly resolve: (r: Result<unknown>) => void;
  readonly timer: NodeJS.Timeout;
  /** performance.now() at the ask. */
  readonly started: number;
}

type PeerStream = ClientDuplexStream<WirePeerBatch, WirePeerBatch>;

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
/** setTimeout's limit (and well inside uint32 timeout_ms). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** Milliseconds `close()` waits for the peer to answer what is in flight before it cancels the stream (its default `graceMs`). */
export const PEER_CLIENT_CLOSE_GRACE_MS = 2_000;

const resolved = (r: Result<never>): Promise<Result<never>> => Promise.resolve(r);

/**
 * Forwards asks, tells and deliveries (node-delivery.ts) to one remote node. Everything sent in one tick goes out
 * as one PeerBatch (or a few, past the size limits). The stream opens on first use and again on
 * the first use after it ended; when it ends, every pending ask fails with `unavailable` (it may
 * or may not have been applied). One-way messages are at most once.
 *
 * Asks correlate by a monotonic id per client and have their own deadline: past it the ask
 * resolves `timeout` and a late reply is ignored. A circuit breaker (circuit-breaker.ts) fails fast
 * with `unavailable` after `failureThreshold` consecutive failures, for `openMs`; then one attempt
 * (an ask, or opening the stream) decides between closing and opening again. A message whose JSON
 * is over the peer message limit answers `payload_too_large` and is not sent.
 *
 * Nothing is written on a stream before the server has answered as the node dialed (and, with a
 * cluster secret, proved it holds the secret): an answer from another node (a stale address, a
 * node dialing itself) or an impostor ends the stream, fails its asks `unavailable` and counts as
 * a breaker failure.
 */
export class PeerClient {
  readonly peerId: string;
  private readonly client: Client | undefined;
  private readonly log: Logger;
  private readonly breakerConfig: BreakerConfig;
  private readonly breaker: CircuitBreaker;
  private readonly limits: PeerLimits;
  private readonly writer: BatchWriter;
  private readonly pending = new Map<number, PendingAsk>();
  private readonly m: BoundMetrics;
  private readonly clock: () => number;
  private nextId = 1;
  private stream: PeerStream | undefined;
  /** The peer accepted the current stream and proved it is the node dialed (its metadata arrived and checked out). */
  private connected = false;
  /** Holds what is written on the current stream until the server's answer checked out. */
  private held: HeldWrites | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  /** @param address host:port of the peer's server; undefined = unknown node: everything fails `unavailable`. */
  constructor(
    readonly address: string | undefined,
    private readonly options: PeerClientOptions,
  ) {
    this.peerId = options.peerId;
    this.log = options.logger.child({ component: 'peer-client', peer: this.peerId });
    this.breakerConfig = options.breaker ?? DEFAULT_BREAKER;
    this.limits = { ...DEFAULT_PEER_LIMITS, ...options.limits };
    this.m = bindMetrics(PeerMetrics.of(options.registry), this.peerId);
    this.clock = options.clock ?? Date.now;
    this.breaker = new CircuitBreaker(this.breakerConfig, this.clock, (t) => this.breakerChanged(t));
    this.writer = new BatchWriter({
      limits: this.limits,
      target: () => this.target(),
      // An ask that timed out while queued is not sent at all.
      keep: (item) => item.request === undefined || this.pending.has(item.request.id as number),
      written: (n) => this.m.sentBatch.observe(n),
    });
    if (address !== undefined) {
      const tls = options.auth.tls;
      const channel = tls ? credentials.createSsl(tls.ca, tls.key, tls.cert) : credentials.createInsecure();
      this.client = new Client(address, channel, {
        'grpc.max_receive_message_length': this.limits.maxMessageBytes,
        'grpc.max_send_message_length': this.limits.maxMessageBytes,
        // Notice a silent peer (partition, paused process) within ~15 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // A restarted peer is found within a second, not after grpc-js' default backoff (up to 120 s).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      this.m.breaker.set(0);
    }
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** Asks waiting for a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Asks `actorId` on the peer. timeoutMs: milliseconds until the ask resolves `timeout`;
   * hops: forwards so far; epoch: the ring epoch this node routed with.
   */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs: number, hops: number, epoch: number): Promise<Result<R>> {
    const refused = this.refuse();
    if (refused) return resolved(refused);
    const payload = this.encode(msg, actorId);
    if (!payload.ok) return resolved(payload);
    if (!this.breaker.admit()) {
      this.m.asks.rejected.inc();
      return resolved(this.openError());
    }
    const id = this.nextId++;
    const ms = Math.min(Math.max(1, Math.ceil(timeoutMs)), MAX_TIMEOUT_MS);
    // The caller's trace travels with the item (tracing on only); the peer restores it.
    const trace = tracingOn ? activeCarrier() : undefined;
    return new Promise<Result<unknown>>((resolve) => {
      this.pending.set(id, { resolve, timer: setTimeout(this.expire, ms, id), started: performance.now() });
      this.writer.push({ request: { id, actor_id: actorId, payload: payload.value, timeout_ms: ms, hops, epoch, trace } });
    }) as Promise<Result<R>>;
  }

  /** Sends a one-way message; durable: a consequence of a durable step (`deliver`). ok = queued for the stream. */
  tell(actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): Result<void> {
    const counters = durable ? this.m.deliver : this.m.tell;
    const refused = this.refuse();
    if (refused) return refused;
    const payload = this.encode(msg, actorId);
    if (!payload.ok) return payload;
    // Half-open: a one-way message on a stream the peer accepted proves nothing either way: let it go.
    if (!this.breaker.admit(this.connected)) {
      counters.rejected.inc();
      return this.openError();
    }
    counters.sent.inc();
    const trace = tracingOn ? activeCarrier() : undefined;
    this.writer.push({ tell: { actor_id: actorId, payload: payload.value, durable, hops, epoch, trace } });
    return OK;
  }

  /**
   * Sends a payload on a delivery channel (node-delivery.ts) to the peer; no reply. ok = queued for
   * the stream (not: the peer's handler took it).
   */
  deliver(channel: string, payload: unknown): Result<void> {
    const refused = this.refuse();
    if (refused) return refused;
    const bytes = this.encode(payload, `channel ${channel}`);
    if (!bytes.ok) return bytes;
    if (!this.breaker.admit(this.connected)) {
      this.m.delivery.rejected.inc();
      return this.openError();
    }
    this.m.delivery.sent.inc();
    const trace = tracingOn ? activeCarrier() : undefined;
    this.writer.push({ delivery: { channel, payload: bytes.value, trace } });
    return OK;
  }

  /**
   * Sends what is queued, half-closes the stream and waits (at most `graceMs`) for the peer to
   * answer what is in flight; then cancels. New calls fail with `stopping`.
   */
  close(graceMs = PEER_CLIENT_CLOSE_GRACE_MS): Promise<void> {
    if (!this.closing) {
      // What callers queued before close goes out first (opening the stream if need be).
      if (this.writer.queued > 0) this.writer.flushAll();
      this.closed = true;
      this.closing = this.shutdown(this.stream, graceMs);
    }
    return this.closing;
  }

  private async shutdown(stream: PeerStream | undefined, graceMs: number): Promise<void> {
    if (stream) {
      // Not answered yet: what close flushed is held, and goes out (then the end) once the server has proven itself.
      if (this.held) this.held.endWhenReleased = true;
      else stream.end();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stream.cancel();
          resolve();
        }, graceMs);
        stream.once('status', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.writer.clear();
    this.failPending('stopping', `client of peer ${this.peerId} closed`);
    this.client?.close();
    if (this.client) this.m.breaker.remove();
  }

  private refuse(): Result<never> | undefined {
    if (this.closed) return runtimeError('stopping', `client of peer ${this.peerId} is closed`);
    if (!this.client) return runtimeError('unavailable', `no address known for node ${this.peerId}`);
    return undefined;
  }

  private encode(msg: unknown, what: string): Result<Buffer> {
    try {
      const payload = toJsonBytes(msg);
      if (payload.byteLength <= this.limits.maxMessageBytes - 1024) return { ok: true, value: payload };
      return runtimeError('payload_too_large', `message for ${what} is ${payload.byteLength} bytes, over the peer message limit`);
    } catch (err) {
      return runtimeError('actor_crashed', `message for ${what} has no JSON form: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Where the writer writes: the current stream (opened if there is none), or its held writes until the server has proven itself. */
  private target(): BatchTarget | undefined {
    const stream = this.open();
    return this.held ?? stream;
  }

  /** The current stream, opened if there is none. */
  private open(): PeerStream | undefined {
    if (this.stream) return this.stream;
    if (!this.client || this.closed) return undefined;
    const md = new Metadata();
    const { auth, nodeId } = this.options;
    // Signed at each open (a stream opens again after a failure): a proof is single-use and expires.
    const nonce = auth.secret !== undefined ? signPeerStream(md, auth.secret, auth.cluster, nodeId, this.peerId, this.clock()) : undefined;
    if (nonce === undefined) md.set(PEER_NODE_HEADER, nodeId);
    const proof = auth.secret !== undefined && nonce !== undefined ? { secret: auth.secret, cluster: auth.cluster, nonce } : undefined;
    const method = exchangeMethod();
    const stream = this.client.makeBidiStreamRequest<WirePeerBatch, WirePeerBatch>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      md,
      {},
    );
    this.stream = stream;
    this.connected = false;
    const held = new HeldWrites();
    this.held = held;
    this.m.streamOpens.inc();
    stream.on('metadata', (headers: Metadata) => {
      if (this.stream !== stream) return;
      // Under mutual TLS alone the server's certificate proved membership: only its node id is checked.
      const refusal = checkPeerAnswer(headers, this.peerId, proof);
      if (refusal !== undefined) return this.abandon(stream, refusal, headers);
      this.connected = true;
      this.held = undefined;
      this.breaker.succeeded();
      held.release(stream);
    });
    stream.on('data', (batch: WirePeerBatch) => this.receive(batch));
    // The status below says it all; without a listener an 'error' event would throw.
    stream.on('error', () => {});
    // 'end' comes after every reply already received was emitted; 'status' may come before.
    let ended: StatusObject | undefined;
    let readDone = false;
    stream.on('status', (s: StatusObject) => {
      ended = s;
      if (readDone) this.ended(stream, s);
    });
    stream.on('end', () => {
      readDone = true;
      if (ended) this.ended(stream, ended);
    });
    return stream;
  }

  /**
   * The server is not the node dialed, or did not prove it holds the cluster secret: nothing was
   * written to it. The stream is cancelled, its asks fail `unavailable`, and the breaker counts a
   * failure (a node advertising an address that reaches another node, or itself, fails fast).
   */
  private abandon(stream: PeerStream, refusal: PeerAnswerRefusal, headers: Metadata): void {
    this.stream = undefined;
    this.connected = false;
    this.held?.drop();
    this.held = undefined;
    this.writer.clear();
    const [remote] = headers.get(PEER_NODE_HEADER);
    const answered = typeof remote === 'string' ? remote.slice(0, 100) : undefined;
    this.log.error(
      { address: this.address, remote: answered, refusal },
      refusal === 'wrong_node'
        ? 'the peer address answers as another node: check PEER_HOST and PEER_PORT of that node (a loopback PEER_HOST is unreachable from other machines)'
        : 'the peer did not prove it holds the cluster secret: stream ended, nothing sent',
    );
    stream.cancel();
    const why = refusal === 'wrong_node' ? `answered as node ${answered ?? '(none)'}` : 'failed to prove cluster membership';
    this.failPending('unavailable', `peer ${this.peerId} at ${this.address ?? '?'} ${why}`);
    this.breaker.failed();
  }

  private ended(stream: PeerStream, s: StatusObject): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.connected = false;
    this.held?.drop();
    this.held = undefined;
    // What was queued for this stream goes nowhere: asks fail below, one-way messages are dropped.
    this.writer.clear();
    const failed = s.code !== status.OK && !this.closed;
    if (failed) this.log.warn({ code: s.code, details: s.details, pending: this.pending.size }, 'peer stream failed');
    else this.log.info({ pending: this.pending.size }, 'peer stream ended');
    this.failPending('unavailable', `stream to peer ${this.peerId} ended: ${s.details || status[s.code]}`);
    if (!failed) return;
    this.breaker.failed();
    try {
      this.options.onStreamBroken?.(this.peerId);
    } catch (err) {
      this.log.error({ err }, 'stream-broken hook failed');
    }
  }

  private receive(batch: WirePeerBatch): void {
    const items = batch.items ?? [];
    this.m.receivedBatch.observe(items.length);
    for (const item of items) {
      if (item.body === 'reply' && item.reply) this.reply(item.reply);
      else this.log.warn({ body: item.body }, 'peer sent something other than a reply: ignored');
    }
  }

  private reply(r: WireReply): void {
    const id = Number(r.id);
    const p = this.pending.get(id);
    if (!p) {
      this.m.lateReplies.inc();
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.m.askSeconds.observe((performance.now() - p.started) / 1000);
    const result = decodeResult(r.payload, this.peerId);
    (result.ok ? this.m.asks.ok : this.m.asks.error).inc();
    this.breaker.succeeded();
    p.resolve(result);
  }

  /** The deadline of ask `id` passed (a method bound once: no closure per ask). */
  private readonly expire = (id: number): void => {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.m.askSeconds.observe((performance.now() - p.started) / 1000);
    this.m.asks.timeout.inc();
    this.breaker.failed();
    p.resolve(runtimeError('timeout', `no reply from peer ${this.peerId} within the deadline`));
  };

  private failPending(code: RuntimeErrorCode, message: string): void {
    if (this.pending.size === 0) return;
    const error = runtimeError(code, message);
    const counter = code === 'unavailable' ? this.m.asks.unavailable : this.m.asks.stopping;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      counter.inc();
      p.resolve(error);
    }
  }

  private breakerChanged({ from, to, failures }: BreakerTransition): void {
    this.m.breaker.set(BREAKER_GAUGE[to]);
    if (to === 'open') this.log.warn({ from, to, failures, openMs: this.breakerConfig.openMs }, 'peer circuit breaker opened');
    else this.log.info({ from, to, failures }, 'peer circuit breaker state changed');
  }

  private openError(): Result<never> {
    return runtimeError(
      'unavailable',
      `peer ${this.peerId} is unavailable: circuit breaker ${this.breaker.state} after ${this.breaker.failures} consecutive failures`,
    );
  }
}

const OK: Result<void> = { ok: true, value: undefined };

/**
 * Stands in for a stream whose server has not answered yet: takes the first batch and reports a
 * full buffer, so the writer keeps the rest queued (bounded like any backpressure) until `release`
 * writes what it holds to the stream and emits `drain`.
 */
class HeldWrites implements BatchTarget {
  /** End the stream once what is held went out (the client closed before the answer). */
  endWhenReleased = false;
  private held: WirePeerBatch[] = [];
  private drained: (() => void)[] = [];

  write(batch: WirePeerBatch): boolean {
    this.held.push(batch);
    return false;
  }

  once(_event: 'drain', listener: () => void): this {
    this.drained.push(listener);
    return this;
  }

  release(stream: PeerStream): void {
    let more = true;
    for (const batch of this.held) more = stream.write(batch);
    this.held = [];
    if (this.endWhenReleased) stream.end();
    const drained = this.drained;
    this.drained = [];
    const drain = (): void => {
      for (const listener of drained) listener();
    };
    if (more) drain();
    else stream.once('drain', drain);
  }

  drop(): void {
    this.held = [];
    this.drained = [];
  }
}

/** A reply payload as a Result; an unreadable one is an error Result, never a throw. */
function decodeResult(payload: Uint8Array, peerId: string): Result<unknown> {
  let r: unknown;
  try {
    r = fromJsonBytes(payload);
  } catch {
    return runtimeError('actor_crashed', `peer ${peerId} sent a reply that is not JSON`);
  }
  if (typeof r === 'object' && r !== null) {
    const o = r as { ok?: unknown; error?: { code?: unknown } };
    if (o.ok === true) return r as Result<unknown>;
    if (o.ok === false && typeof o.error?.code === 'string') return r as Result<unknown>;
  }
  return runtimeError('actor_crashed', `peer ${peerId} sent a reply that is not a Result`);
}

interface Inc {
  inc(): void;
}

interface BoundMetrics {
  readonly asks: Record<'ok' | 'error' | 'timeout' | 'unavailable' | 'rejected' | 'stopping', Inc>;
  readonly tell: Record<'sent' | 'rejected', Inc>;
  readonly deliver: Record<'sent' | 'rejected', Inc>;
  readonly delivery: Record<'sent' | 'rejected', Inc>;
  readonly askSeconds: { observe(v: number): void };
  readonly breaker: { set(v: number): void; remove(): void };
  readonly lateReplies: Inc;
  readonly streamOpens: Inc;
  readonly sentBatch: { observe(v: number): void };
  readonly receivedBatch: { observe(v: number): void };
}

/** Label children for one peer, bound once per client. */
function bindMetrics(m: PeerMetrics, peer: string): BoundMetrics {
  const ask = (outcome: string): Inc => m.asks.labels(peer, outcome);
  const sends = (kind: string) => ({ sent: m.sends.labels(peer, kind, 'sent'), rejected: m.sends.labels(peer, kind, 'rejected') });
  return {
    asks: {
      ok: ask('ok'),
      error: ask('error'),
      timeout: ask('timeout'),
      unavailable: ask('unavailable'),
      rejected: ask('rejected'),
      stopping: ask('stopping'),
    },
    tell: sends('tell'),
    deliver: sends('deliver'),
    delivery: sends('delivery'),
    askSeconds: m.askSeconds.labels(peer),
    breaker: { set: (v) => m.breaker.set({ peer }, v), remove: () => m.breaker.remove(peer) },
    lateReplies: m.lateReplies.labels(peer),
    streamOpens: m.streamOpens.labels(peer),
    sentBatch: m.batchItems.labels('client', 'sent'),
    receivedBatch: m.batchItems.labels('client', 'received'),
  };
}
