/** Routes actor messages by shard: served here, buffered while this node takes a shard over, or forwarded to its owner. */
import type { Registry } from 'prom-client';
import type { ActorHost } from '../runtime/actor-host.ts';
import { LogThrottle } from '../runtime/log-throttle.ts';
import type { Logger } from '../runtime/logger.ts';
import { counterOf } from '../runtime/metrics.ts';
import { runtimeError, type Result } from '../runtime/result.ts';
import { bindActive, tracingOn } from '../runtime/tracing.ts';
import type { ActorRouter } from './actor-router.ts';
import type { ShardManager } from './shard-manager.ts';

/** What the router needs of the peer transport (cluster/peer-client.ts). */
export interface PeerPort {
  ask(nodeId: string, actorId: string, msg: unknown, timeoutMs: number, hops: number, epoch: number): Promise<Result<unknown>>;
  tell(nodeId: string, actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): void;
}

/** Why a held message was dropped (`iot_cluster_held_messages_dropped_total{reason}`). */
export type HeldDropReason = 'overflow' | 'stopping' | 'unroutable';

export interface ClusterRouterDeps {
  readonly nodeId: string;
  readonly host: ActorHost;
  readonly shards: ShardManager;
  readonly shardOf: (actorId: string) => number;
  readonly peers: PeerPort;
  readonly logger: Logger;
  readonly registry: Registry;
  /**
   * Brings this node's ring up to at least `epoch` (reads the ring document and adopts it); called
   * before routing a forwarded message whose sender had a newer epoch. Absent: route as is.
   */
  readonly catchUp?: (epoch: number) => Promise<void>;
}

interface Waiting {
  readonly run: () => void;
  readonly fail: (result: Result<never>) => void;
}

export interface ClusterRouterConfig {
  /** Messages held per shard while this node acquires it; past it callers get `overloaded`. */
  readonly bufferPerShard: number;
  /** Forwarding hops before a message is refused (a ring that disagrees with itself). */
  readonly maxHops: number;
  /** Default ask deadline, milliseconds. */
  readonly askTimeoutMs: number;
}

export const defaultClusterRouterConfig: ClusterRouterConfig = { bufferPerShard: 10_000, maxHops: 3, askTimeoutMs: 5_000 };

/** Longest a forwarded message waits for the ring catch-up before it is routed by the current table, milliseconds. */
const CATCH_UP_WAIT_MS = 200;
/** A catch-up to an epoch already tried is not tried again for this long (a stored ring older than a peer's), milliseconds. */
const CATCH_UP_RETRY_MS = 1_000;

/**
 * The ActorRouter of a cluster node, and the handler of messages peers forward to it. A message
 * for a shard this node owns goes to the local host; for a shard it is acquiring, it waits
 * (bounded) until the lease is taken; otherwise it goes to the owner by this node's table — the
 * owner re-routes it if its newer table says otherwise. A node that receives a message routed
 * with a newer epoch than its own catches its ring up before routing it (`askFromPeer`).
 */
export class ClusterRouter implements ActorRouter {
  private readonly config: ClusterRouterConfig;
  private readonly buffers = new Map<number, Waiting[]>();
  /** Shards whose full buffer was logged (once per acquisition: overflow comes in floods). */
  private readonly overflowLogged = new Set<number>();
  /** The ring catch-up forwarded messages wait for, while one is under way. */
  private catchingUp: Promise<void> | undefined;
  /** The last catch-up started: its target epoch and when (so a ring that stays behind is not re-read per message). */
  private lastCatchUp = { epoch: 0, at: 0 };
  private closed = false;
  private readonly nodeId: string;
  private readonly host: ActorHost;
  private readonly shards: ShardManager;
  private readonly shardOf: (actorId: string) => number;
  private readonly peers: PeerPort;
  private readonly logger: Logger;
  private readonly dropped: Record<HeldDropReason, { inc(n?: number): void }>;
  /** Tells without a reachable owner come in floods (every tell while self-fenced): a few lines per 10 s. */
  private readonly noOwnerLogs = new LogThrottle(5, 10_000);

  constructor(
    private readonly deps: ClusterRouterDeps,
    config: Partial<ClusterRouterConfig> = {},
  ) {
    this.config = { ...defaultClusterRouterConfig, ...config };
    this.nodeId = deps.nodeId;
    this.host = deps.host;
    this.shards = deps.shards;
    this.shardOf = deps.shardOf;
    this.peers = deps.peers;
    this.logger = deps.logger.child({ component: 'cluster-router' });
    const counter = counterOf(
      deps.registry,
      'iot_cluster_held_messages_dropped_total',
      'Messages held for a shard being taken over that were dropped: overflow (buffer full, caller told overloaded), stopping (node shut down), unroutable (refused when finally run)',
      ['reason'],
    );
    this.dropped = { overflow: counter.labels('overflow'), stopping: counter.labels('stopping'), unroutable: counter.labels('unroutable') };
  }

  /**
   * An ask another node forwarded. epoch: the ring epoch it routed with; when it is newer than
   * this node's, the ring is caught up first, so this node does not bounce the message back by
   * an older table.
   */
  async askFromPeer(actorId: string, msg: unknown, timeoutMs: number, hops: number, epoch: number): Promise<Result<unknown>> {
    const behind = this.catchUp(epoch);
    if (!behind) return this.ask(actorId, msg, timeoutMs, hops);
    const started = Date.now();
    await behind;
    // The caller's deadline ran while it waited.
    return this.ask(actorId, msg, Math.max(1, timeoutMs - (Date.now() - started)), hops);
  }

  /** A one-way message another node forwarded (see `askFromPeer`); messages of one sender stay in order. */
  tellFromPeer(actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): void {
    const behind = this.catchUp(epoch);
    // Routed now, a throw reaches the peer server, which counts it; routed after a catch-up it has
    // no caller left to throw to: it is logged, never an unhandled rejection.
    if (!behind) return this.routeForwarded(actorId, msg, durable, hops);
    void behind.then(() => {
      try {
        this.routeForwarded(actorId, msg, durable, hops);
      } catch (err) {
        this.logger.error({ err, actorId }, 'routing a forwarded message failed');
      }
    });
  }

  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs = this.config.askTimeoutMs, hops = 0): Promise<Result<R>> {
    const shard = this.shardOf(actorId);
    switch (this.shards.state(shard)) {
      case 'owned':
        return this.servedHere(shard, this.host.ask<R>(actorId, msg, timeoutMs));
      case 'acquiring':
        return new Promise((resolve) => {
          // The deadline runs while it waits too; whichever settles first wins.
          const waitStarted = Date.now();
          const settle = (r: Result<R>): void => {
            clearTimeout(timer);
            resolve(r);
          };
          const run = (): void => {
            try {
              this.ask<R>(actorId, msg, Math.max(1, timeoutMs - (Date.now() - waitStarted)), hops).then(settle, (err: unknown) =>
                settle(crashed(actorId, err)),
              );
            } catch (err) {
              settle(crashed(actorId, err));
            }
          };
          // Run later from the shard's acquisition: with tracing on, in the caller's trace.
          const waiting: Waiting = { run: tracingOn ? bindActive(run) : run, fail: settle };
          const timer = setTimeout(() => {
            this.unhold(shard, waiting); // a caller that gave up neither counts against the bound nor runs later
            resolve(runtimeError('timeout', `shard ${shard} was still being taken over after ${timeoutMs} ms`));
          }, timeoutMs);
          const held = this.hold(shard, waiting);
          if (!held.ok) settle(held);
        });
      default: {
        const owner = this.shards.ownerOf(shard);
        if (owner === undefined || owner === this.nodeId || hops >= this.config.maxHops) {
          return Promise.resolve(runtimeError('unavailable', `shard ${shard} of ${actorId} has no reachable owner yet`));
        }
        return this.peers.ask(owner, actorId, msg, timeoutMs, hops + 1, this.shards.epoch) as Promise<Result<R>>;
      }
    }
  }

  tell(actorId: string, msg: unknown, hops = 0): Result<void> {
    return this.send(actorId, msg, false, hops);
  }

  deliver(actorId: string, msg: unknown, hops = 0): Result<void> {
    return this.send(actorId, msg, true, hops);
  }

  /**
   * A local ask's reply, unless this node self-fenced (or passed its serving deadline) while the
   * ask ran — a pause: another node may own the shard by now, so the reply (a read of the state
   * before, an ack) is not given; the caller gets `unavailable` as for a shard this node does not
   * own (a hub re-sends the report, which its new owner applies at most once).
   */
  private servedHere<R>(shard: number, reply: Promise<Result<R>>): Promise<Result<R>> {
    const mark = this.shards.fenceMark;
    return reply.then((r) =>
      this.shards.servedSince(mark)
        ? r
        : runtimeError('unavailable', `shard ${shard}: this node stopped serving (self-fence) while it answered`),
    );
  }

  /** Runs what waited for a shard this node now owns. */
  onOwned(shard: number): void {
    const waiting = this.buffers.get(shard);
    if (!waiting) return;
    this.buffers.delete(shard);
    for (const w of waiting) w.run();
  }

  /** Sends what waited for shards this node no longer acquires to their new owners. */
  reroute(): void {
    for (const [shard, waiting] of this.buffers) {
      if (this.shards.state(shard) === 'acquiring') continue;
      this.buffers.delete(shard);
      for (const w of waiting) w.run();
    }
  }

  /** Fails everything still waiting (shutdown): asks answer `stopping`, held tells are dropped, counted and logged. */
  close(): void {
    this.closed = true;
    let n = 0;
    for (const waiting of this.buffers.values()) {
      for (const w of waiting) w.fail(runtimeError('stopping', 'the node is shutting down'));
      n += waiting.length;
    }
    this.buffers.clear();
    if (n === 0) return;
    this.dropped.stopping.inc(n);
    this.logger.warn({ dropped: n }, 'shutdown dropped messages held for shards being taken over');
  }

  private send(actorId: string, msg: unknown, durable: boolean, hops: number): Result<void> {
    const shard = this.shardOf(actorId);
    switch (this.shards.state(shard)) {
      case 'owned':
        return durable ? this.host.deliver(actorId, msg) : this.host.tell(actorId, msg);
      case 'acquiring': {
        // A held tell has no caller left to answer: whatever becomes of it later is counted and logged here.
        const run = (): void => this.runHeld(actorId, msg, durable, hops);
        // Run later from the shard's acquisition: with tracing on, in the caller's trace.
        return this.hold(shard, { run: tracingOn ? bindActive(run) : run, fail: () => {} });
      }
      default: {
        const owner = this.shards.ownerOf(shard);
        if (owner === undefined || owner === this.nodeId || hops >= this.config.maxHops) {
          const suppressed = this.noOwnerLogs.admit();
          if (suppressed !== undefined) this.logger.warn({ actorId, shard, hops, suppressed }, 'message without a reachable owner dropped');
          return runtimeError('unavailable', `shard ${shard} of ${actorId} has no reachable owner yet`);
        }
        this.peers.tell(owner, actorId, msg, durable, hops + 1, this.shards.epoch);
        return { ok: true, value: undefined };
      }
    }
  }

  private routeForwarded(actorId: string, msg: unknown, durable: boolean, hops: number): void {
    const sent = durable ? this.deliver(actorId, msg, hops) : this.tell(actorId, msg, hops);
    if (!sent.ok) this.logger.debug({ actorId, code: sent.error.code }, 'forwarded message not accepted');
  }

  /** A tell that waited for its shard, sent now: a refusal (the host full, no owner after a reroute) is counted. */
  private runHeld(actorId: string, msg: unknown, durable: boolean, hops: number): void {
    let code: string;
    try {
      const sent = this.send(actorId, msg, durable, hops);
      if (sent.ok) return;
      code = sent.error.code;
    } catch (err) {
      this.logger.error({ err, actorId }, 'a held message failed when it was run');
      code = 'threw';
    }
    this.dropped.unroutable.inc();
    this.logger.warn({ actorId, code }, 'a message held for a shard being taken over was refused when it was run: dropped');
  }

  private unhold(shard: number, w: Waiting): void {
    const waiting = this.buffers.get(shard);
    const i = waiting?.indexOf(w) ?? -1;
    if (i >= 0) waiting!.splice(i, 1);
  }

  private hold(shard: number, w: Waiting): Result<void> {
    if (this.closed) {
      this.dropped.stopping.inc();
      return runtimeError('stopping', 'the node is shutting down');
    }
    let waiting = this.buffers.get(shard);
    if (!waiting) {
      this.buffers.set(shard, (waiting = []));
      this.overflowLogged.delete(shard);
    }
    if (waiting.length >= this.config.bufferPerShard) {
      this.dropped.overflow.inc();
      if (!this.overflowLogged.has(shard)) {
        this.overflowLogged.add(shard);
        this.logger.warn({ shard, held: waiting.length }, 'buffer of a shard being taken over is full: refusing messages (overloaded)');
      }
      return runtimeError('overloaded', `shard ${shard} is being taken over and ${waiting.length} messages already wait for it`);
    }
    waiting.push(w);
    return { ok: true, value: undefined };
  }

  /**
   * A promise when this node's epoch is behind `epoch` and the ring can be caught up, or while an
   * earlier forwarded message still waits for a catch-up (everything forwarded waits for the same
   * one, so messages stay in order); else undefined: route now. The wait is bounded
   * (`CATCH_UP_WAIT_MS`): a slow store delays forwarded traffic, never stalls it; and an epoch the
   * store could not bring is not re-read for every message (`CATCH_UP_RETRY_MS`).
   */
  private catchUp(epoch: number): Promise<void> | undefined {
    if (this.catchingUp) return this.catchingUp;
    if (!this.deps.catchUp || !(epoch > this.shards.epoch)) return undefined;
    const now = Date.now();
    if (epoch <= this.lastCatchUp.epoch && now - this.lastCatchUp.at < CATCH_UP_RETRY_MS) return undefined;
    this.lastCatchUp = { epoch, at: now };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn({ epoch, waitedMs: CATCH_UP_WAIT_MS }, 'ring catch-up is slow: routing by the current ring');
        resolve();
      }, CATCH_UP_WAIT_MS);
    });
    const read = this.deps
      .catchUp(epoch)
      .catch((err: unknown) => this.logger.warn({ err, epoch }, 'could not catch up with a newer ring: routing by the current one'));
    const caughtUp = Promise.race([read, deadline]).finally(() => {
      clearTimeout(timer);
      // Before the messages waiting on it run (they were chained after this): a message that
      // arrives later (a new macrotask) routes at once.
      this.catchingUp = undefined;
    });
    this.catchingUp = caughtUp;
    return caughtUp;
  }
}

/** A held ask whose later run threw (a bug, or an actor kind this node does not host). */
function crashed(actorId: string, err: unknown): Result<never> {
  return runtimeError('actor_crashed', `routing to ${actorId} failed: ${err instanceof Error ? err.message : String(err)}`);
}
