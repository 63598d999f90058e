/** Forwarding to other nodes: one PeerClient per remote node over one long-lived, batched peer stream, and the pool of them. */
import { Client, credentials, Metadata, status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { CommandDelivery } from '../actors/types.ts';
import type { Logger } from '../runtime/logger.ts';
import { runtimeError, type Result, type RuntimeErrorCode } from '../runtime/result.ts';
import { BatchWriter } from './batch-writer.ts';
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

/** closed: everything goes; open: everything fails fast; half-open: one attempt decides. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerConfig {
  /** Consecutive failures (a stream that ended with an error, an ask past its deadline) that open the breaker. */
  readonly failureThreshold: number;
  /** Milliseconds the breaker stays open before it lets one attempt through. */
  readonly openMs: number;
}

export const DEFAULT_BREAKER: BreakerConfig = { failureThreshold: 5, openMs: 2_000 };

export interface PeerClientOptions {
  /** This node's id, sent to the peer when the stream opens. */
  readonly nodeId: string;
  /** The remote node's id: metric label, logs, error messages (default: the address). */
  readonly peerId?: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly breaker?: BreakerConfig;
  readonly limits?: Partial<PeerLimits>;
  /** Epoch ms, for the breaker; injectable for tests. */
  readonly clock?: () => number;
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

const resolved = (r: Result<never>): Promise<Result<never>> => Promise.resolve(r);

/**
 * Forwards asks, tells and hub commands to one remote node. Everything sent in one tick goes out
 * as one PeerBatch (or a few, past the size limits). The stream opens on first use and again on
 * the first use after it ended; when it ends, every pending ask fails with `unavailable` (it may
 * or may not have been applied). One-way messages are at most once.
 *
 * Asks correlate by a monotonic id per client and have their own deadline: past it the ask
 * resolves `timeout` and a late reply is ignored. A circuit breaker per peer fails fast with
 * `unavailable` after `failureThreshold` consecutive failures, for `openMs`; then one attempt
 * (an ask, or opening the stream) decides between closing and opening again.
 */
export class PeerClient {
  readonly peerId: string;
  private readonly client: Client | undefined;
  private readonly log: Logger;
  private readonly breakerConfig: BreakerConfig;
  private readonly limits: PeerLimits;
  private readonly clock: () => number;
  private readonly writer: BatchWriter;
  private readonly pending = new Map<number, PendingAsk>();
  private readonly m: BoundMetrics;
  private nextId = 1;
  private stream: PeerStream | undefined;
  /** The peer accepted the current stream (its metadata arrived). */
  private connected = false;
  private state: BreakerState = 'closed';
  private failures = 0;
  private openUntil = 0;
  /** Half-open: the one attempt is under way. */
  private probing = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  /** @param address host:port of the peer's server; undefined = unknown node: everything fails `unavailable`. */
  constructor(
    readonly address: string | undefined,
    private readonly options: PeerClientOptions,
  ) {
    this.peerId = options.peerId ?? address ?? '?';
    this.log = options.logger.child({ component: 'peer-client', peer: this.peerId });
    this.breakerConfig = options.breaker ?? DEFAULT_BREAKER;
    this.limits = { ...DEFAULT_PEER_LIMITS, ...options.limits };
    this.clock = options.clock ?? Date.now;
    this.m = bindMetrics(PeerMetrics.of(options.registry), this.peerId);
    this.writer = new BatchWriter({
      limits: this.limits,
      target: () => this.open(),
      // An ask that timed out while queued is not sent at all.
      keep: (item) => item.request === undefined || this.pending.has(item.request.id as number),
      written: (n) => this.m.sentBatch.observe(n),
    });
    if (address !== undefined) {
      this.client = new Client(address, credentials.createInsecure(), {
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
    return this.state;
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
    if (!this.admit(false)) {
      this.m.asks.rejected.inc();
      return resolved(this.openError());
    }
    const id = this.nextId++;
    const ms = Math.min(Math.max(1, Math.ceil(timeoutMs)), MAX_TIMEOUT_MS);
    return new Promise<Result<unknown>>((resolve) => {
      this.pending.set(id, { resolve, timer: setTimeout(this.expire, ms, id), started: performance.now() });
      this.writer.push({ request: { id, actor_id: actorId, payload: payload.value, timeout_ms: ms, hops, epoch } });
    }) as Promise<Result<R>>;
  }

  /** Sends a one-way message; durable: a consequence of a durable step (`deliver`). ok = queued for the stream. */
  tell(actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): Result<void> {
    const counters = durable ? this.m.deliver : this.m.tell;
    const refused = this.refuse();
    if (refused) return refused;
    const payload = this.encode(msg, actorId);
    if (!payload.ok) return payload;
    if (!this.admit(true)) {
      counters.rejected.inc();
      return this.openError();
    }
    counters.sent.inc();
    this.writer.push({ tell: { actor_id: actorId, payload: payload.value, durable, hops, epoch } });
    return OK;
  }

  /** Sends a command to the hub's stream on the peer. ok = queued for the stream (not: the hub got it). */
  sendToHub(homeId: string, hubId: string, command: CommandDelivery): Result<void> {
    const refused = this.refuse();
    if (refused) return refused;
    const payload = this.encode(command, `hub ${homeId}/${hubId}`);
    if (!payload.ok) return payload;
    if (!this.admit(true)) {
      this.m.hub.rejected.inc();
      return this.openError();
    }
    this.m.hub.sent.inc();
    this.writer.push({ hub_command: { home_id: homeId, hub_id: hubId, command: payload.value } });
    return OK;
  }

  /**
   * Sends what is queued, half-closes the stream and waits (at most `graceMs`) for the peer to
   * answer what is in flight; then cancels. New calls fail with `stopping`.
   */
  close(graceMs = 2_000): Promise<void> {
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
      stream.end();
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
      return runtimeError('actor_crashed', `message for ${what} is ${payload.byteLength} bytes, over the peer message limit`);
    } catch (err) {
      return runtimeError('actor_crashed', `message for ${what} has no JSON form: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The current stream, opened if there is none. */
  private open(): PeerStream | undefined {
    if (this.stream) return this.stream;
    if (!this.client || this.closed) return undefined;
    const md = new Metadata();
    md.set(PEER_NODE_HEADER, this.options.nodeId);
    const method = exchangeMethod();
    const stream = this.client.makeBidiStreamRequest<WirePeerBatch, WirePeerBatch>(method.path, method.requestSerialize, method.responseDeserialize, md, {});
    this.stream = stream;
    this.connected = false;
    this.m.streamOpens.inc();
    stream.on('metadata', (headers: Metadata) => {
      if (this.stream !== stream) return;
      this.connected = true;
      const [remote] = headers.get(PEER_NODE_HEADER);
      if (this.options.peerId !== undefined && remote !== undefined && remote !== this.options.peerId) {
        this.log.warn({ address: this.address, remote }, 'the peer address answers with another node id');
      }
      this.succeeded();
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

  private ended(stream: PeerStream, s: StatusObject): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.connected = false;
    // What was queued for this stream goes nowhere: asks fail below, one-way messages are dropped.
    this.writer.clear();
    const failed = s.code !== status.OK && !this.closed;
    if (failed) this.log.warn({ code: s.code, details: s.details, pending: this.pending.size }, 'peer stream failed');
    else this.log.info({ pending: this.pending.size }, 'peer stream ended');
    this.failPending('unavailable', `stream to peer ${this.peerId} ended: ${s.details || status[s.code]}`);
    if (failed) this.failed();
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
    this.succeeded();
    p.resolve(result);
  }

  /** The deadline of ask `id` passed (a method bound once: no closure per ask). */
  private readonly expire = (id: number): void => {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.m.askSeconds.observe((performance.now() - p.started) / 1000);
    this.m.asks.timeout.inc();
    this.failed();
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

  // ---- circuit breaker ----

  /** Whether a message may go now; oneWay: a tell or hub command (never the half-open probe on a live stream). */
  private admit(oneWay: boolean): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (this.clock() < this.openUntil) return false;
      this.setState('half-open');
    }
    // Half-open. A one-way message on a stream the peer accepted proves nothing either way: let it go.
    if (oneWay && this.connected) return true;
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.state !== 'closed') this.setState('closed');
  }

  private failed(): void {
    this.failures++;
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.breakerConfig.failureThreshold)) {
      this.openUntil = this.clock() + this.breakerConfig.openMs;
      this.setState('open');
    }
  }

  private setState(next: BreakerState): void {
    const from = this.state;
    this.state = next;
    this.probing = false;
    this.m.breaker.set(BREAKER_GAUGE[next]);
    const fields = { from, to: next, failures: this.failures };
    if (next === 'open') this.log.warn({ ...fields, openMs: this.breakerConfig.openMs }, 'peer circuit breaker opened');
    else this.log.info(fields, 'peer circuit breaker state changed');
  }

  private openError(): Result<never> {
    return runtimeError('unavailable', `peer ${this.peerId} is unavailable: circuit breaker ${this.state} after ${this.failures} consecutive failures`);
  }
}

const OK: Result<void> = { ok: true, value: undefined };

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

interface Inc { inc(): void }

interface BoundMetrics {
  readonly asks: Record<'ok' | 'error' | 'timeout' | 'unavailable' | 'rejected' | 'stopping', Inc>;
  readonly tell: Record<'sent' | 'rejected', Inc>;
  readonly deliver: Record<'sent' | 'rejected', Inc>;
  readonly hub: Record<'sent' | 'rejected', Inc>;
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
    asks: { ok: ask('ok'), error: ask('error'), timeout: ask('timeout'), unavailable: ask('unavailable'), rejected: ask('rejected'), stopping: ask('stopping') },
    tell: sends('tell'),
    deliver: sends('deliver'),
    hub: sends('hub_command'),
    askSeconds: m.askSeconds.labels(peer),
    breaker: { set: (v) => m.breaker.set({ peer }, v), remove: () => m.breaker.remove(peer) },
    lateReplies: m.lateReplies.labels(peer),
    streamOpens: m.streamOpens.labels(peer),
    sentBatch: m.batchItems.labels('client', 'sent'),
    receivedBatch: m.batchItems.labels('client', 'received'),
  };
}

export interface PeerPoolOptions {
  /** This node's id. */
  readonly nodeId: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly breaker?: BreakerConfig;
  readonly limits?: Partial<PeerLimits>;
}

/**
 * One PeerClient per remote node, created on first use from `addressOf` (the peer address from
 * membership). A node whose address changed gets a new client (the old one is closed); an
 * unknown node gets a client whose every call fails `unavailable`.
 */
export class PeerPool {
  private readonly clients = new Map<string, PeerClient>();
  private closed = false;

  constructor(
    private readonly addressOf: (nodeId: string) => string | undefined,
    private readonly options: PeerPoolOptions,
  ) {}

  get(nodeId: string): PeerClient {
    const address = this.closed ? undefined : this.addressOf(nodeId);
    const current = this.clients.get(nodeId);
    if (current && current.address === address) return current;
    if (current) void current.close();
    const client = new PeerClient(address, { ...this.options, peerId: nodeId });
    if (this.closed) void client.close(); // every call answers `stopping`
    else this.clients.set(nodeId, client);
    return client;
  }

  /** Closes every client (each sends what it has queued and waits briefly for in-flight replies). */
  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
