/** The actor host: virtual actors in shard-level nact actors, with passivation, deadlines and backpressure. */
import { start, stop } from 'nact';
import type { Registry } from 'prom-client';
import type { ActorCell, Envelope } from './actor-cell.ts';
import type { Behavior } from './behavior.ts';
import type { Logger } from './logger.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { PersistencePort } from './persistence-port.ts';
import { runtimeError, type Result } from './result.ts';
import { ShardActor, type ShardContext } from './shard-actor.ts';

export interface ActorHostConfig {
  /** Milliseconds without a message after which an actor is snapshotted and stopped. */
  readonly passivateAfterMs: number;
  /** Messages that may wait for one actor; past it `tell`/`ask` answer `overloaded`. */
  readonly mailboxBound: number;
  /** Journal entries between snapshots. */
  readonly snapshotEvery: number;
  /** Attempts at a message that crashes its actor before it is rejected with `actor_crashed`. */
  readonly maxAttempts: number;
  /** Default `ask` deadline, milliseconds. */
  readonly askTimeoutMs: number;
  /** Messages a shard handles in one nact turn before it yields to I/O and to other shards. */
  readonly turnBudget: number;
  /**
   * Actors one shard window holds at most: Redis runs a window's script without interruption, so
   * a shard that piled up steps behind a slow write sends them in bounded calls, in order.
   */
  readonly maxWindowActors: number;
}

export const defaultActorHostConfig: ActorHostConfig = {
  passivateAfterMs: 5 * 60_000,
  mailboxBound: 1_000,
  snapshotEvery: 100,
  maxAttempts: 3,
  askTimeoutMs: 5_000,
  turnBudget: 1_024,
  maxWindowActors: 2_000,
};

export interface ActorHostDeps {
  // Behaviours are heterogeneous; each actor only ever sees messages of its own kind.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Behavior is invariant in S and M: only `any` admits every kind.
  readonly behaviors: readonly Behavior<any, any, any, any>[];
  readonly store: PersistencePort;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Epoch ms; injectable for tests. */
  readonly clock?: () => number;
  /** Runs the effects of a durable step that leave its shard, in order. Exceptions are logged, never thrown back. */
  readonly onEffects?: (fromId: string, effects: readonly unknown[]) => void;
  /**
   * The shard of an actor (default: the store's, else one shard). Actors that affect each other
   * should share one; a store that keys by shard must agree with it.
   */
  readonly shardOf?: (actorId: string) => number;
  /**
   * The target of an effect that is a message to another actor, or undefined for other effects.
   * Messages to actors of the sender's shard are handled in the same turn and written in the same
   * window as the step that sent them; without this every effect goes to `onEffects`.
   */
  readonly tellOf?: (effect: unknown) => { readonly to: string; readonly msg: unknown } | undefined;
}

/**
 * Hosts virtual actors. A message to an id activates its actor if it is not resident (the actor
 * recovers its state from the store before its first message); idle actors are passivated and
 * come back on the next message. Each shard is one nact actor that schedules its actors' cells
 * (see shard-actor.ts); nact is used nowhere else.
 */
export class ActorHost {
  private readonly config: ActorHostConfig;
  private readonly behaviors = new Map<string, Behavior<unknown, unknown>>();
  private readonly shards = new Map<number, ShardActor>();
  private readonly system = start();
  private readonly metrics: RuntimeMetrics;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly shardOf: (actorId: string) => number;
  private readonly ctx: ShardContext;
  private readonly sweeper: NodeJS.Timeout;
  /** Callers waiting for a cell to passivate. */
  private readonly stopWaiters = new Map<ActorCell, (() => void)[]>();
  /** Actors being passivated for a caller: messages to them go the long way (through `onEffects`). */
  private readonly leaving: ((actorId: string) => boolean)[] = [];
  private closing = false;
  /** Shards whose turn left a window to send; sent together after the turns of this pass. */
  private readonly toFlush = new Set<ShardActor>();
  private readonly flushShards = (): void => {
    const shards = [...this.toFlush];
    this.toFlush.clear();
    for (const shard of shards) shard.flush();
  };

  constructor(
    private readonly deps: ActorHostDeps,
    config: Partial<ActorHostConfig> = {},
  ) {
    this.config = { ...defaultActorHostConfig, ...config };
    for (const b of deps.behaviors) this.behaviors.set(b.kind, b);
    this.log = deps.logger.child({ component: 'actor-host' });
    this.clock = deps.clock ?? Date.now;
    this.shardOf = deps.shardOf ?? deps.store.shardOf ?? (() => 0);
    this.metrics = new RuntimeMetrics(deps.registry, () => this.sample());
    const tellOf = deps.tellOf ?? (() => undefined);
    this.ctx = {
      store: deps.store,
      metrics: this.metrics,
      log: this.log,
      clock: this.clock,
      snapshotEvery: this.config.snapshotEvery,
      maxAttempts: this.config.maxAttempts,
      turnBudget: this.config.turnBudget,
      maxWindowActors: this.config.maxWindowActors,
      behaviorOf: (id) => this.behaviorOf(id),
      shardOf: this.shardOf,
      tellOf,
      acceptsLocal: (id) => !this.leaving.some((f) => f(id)),
      // While the host closes, an actor a step of its shard wakes leaves once it has handled it.
      passivateOnArrival: () => this.closing,
      runEffects: (id, effects) => this.runEffects(id, effects),
      wake: (cell) => {
        if (cell.behavior.wakeMessage !== undefined) this.deliver(cell.id, cell.behavior.wakeMessage);
      },
      passivated: (cell) => this.passivated(cell),
      requestFlush: (shard) => {
        this.toFlush.add(shard);
        if (this.toFlush.size === 1) setImmediate(this.flushShards);
      },
    };
    const sweepEvery = Math.max(10, Math.min(1_000, this.config.passivateAfterMs / 4));
    this.sweeper = setInterval(() => this.sweep(), sweepEvery);
    this.sweeper.unref();
  }

  /** Sends without waiting for an answer. Fails only with `overloaded` or `stopping`. */
  tell(actorId: string, msg: unknown): Result<void> {
    return this.send(actorId, { msg, reply: undefined, deadline: 0, attempts: 0, cause: 0, holds: undefined }, true);
  }

  /**
   * Sends a message that an actor's durable step produced (an effect). It is not subject to the
   * mailbox bound: backpressure belongs at the edges, and dropping a consequence of an
   * acknowledged step would lose it. Fails only with `stopping`.
   */
  deliver(actorId: string, msg: unknown): Result<void> {
    return this.send(actorId, { msg, reply: undefined, deadline: 0, attempts: 0, cause: 0, holds: undefined }, false);
  }

  /**
   * Sends and waits for the actor's reply, which is released only once the step is durable.
   * @param timeoutMs milliseconds until the answer is `timeout` (the message may still apply).
   */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs = this.config.askTimeoutMs): Promise<Result<R>> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.metrics.reject(kindOf(actorId), 'timeout');
        resolve(runtimeError('timeout', `no reply from ${actorId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const reply = (result: Result<unknown>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result as Result<R>);
      };
      const sent = this.send(actorId, { msg, reply, deadline: this.clock() + timeoutMs, attempts: 0, cause: 0, holds: undefined }, true);
      if (!sent.ok) reply(sent);
    });
  }

  /** True when the actor is in memory (tests and diagnostics). */
  isResident(actorId: string): boolean {
    return this.shards.get(this.shardOf(actorId))?.cells.has(actorId) ?? false;
  }

  get residentCount(): number {
    let n = 0;
    for (const shard of this.shards.values()) n += shard.cells.size;
    return n;
  }

  /**
   * Stops the matching actors at once, without writing anything (their shard was lost to another
   * owner, whose state must not be overwritten). Messages still queued for them are answered
   * `unavailable`; a later message activates the actor afresh from the store.
   * @returns how many actors were evicted.
   */
  evict(filter: (actorId: string) => boolean): number {
    let n = 0;
    for (const shard of this.shards.values()) {
      for (const cell of [...shard.cells.values()]) {
        if (!filter(cell.id)) continue;
        n++;
        shard.evict(cell);
        this.releaseWaiters(cell);
      }
    }
    if (n > 0) this.log.warn({ evicted: n }, 'actors evicted');
    return n;
  }

  /**
   * Passivates the matching actors (each after the messages already queued for it, with a final
   * snapshot) and resolves when all have stopped. The caller keeps new messages away from them
   * (a message sent meanwhile would activate the actor again); messages they send each other
   * meanwhile go the long way, through `onEffects`.
   */
  async passivateWhere(filter: (actorId: string) => boolean): Promise<void> {
    this.leaving.push(filter);
    try {
      await this.passivateMatching(filter);
    } finally {
      this.leaving.splice(this.leaving.indexOf(filter), 1);
    }
  }

  /** Passivates every actor (final snapshots) and stops the actor system. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweeper);
    // Messages between actors of one shard are still handled (they are consequences of steps
    // already taken); an actor they activate passivates after them, so repeat until none is left.
    while (this.residentCount > 0) await this.passivateMatching(() => true);
    for (const shard of this.shards.values()) shard.stop();
    stop(this.system);
  }

  /** Asks every matching actor to passivate (after what is queued for it); resolves when all have left. */
  private async passivateMatching(filter: (actorId: string) => boolean): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const shard of this.shards.values()) {
      for (const cell of [...shard.cells.values()]) {
        if (!filter(cell.id)) continue;
        waits.push(new Promise<void>((resolve) => this.waitFor(cell, resolve)));
        cell.passivateRequested = true;
        shard.passivate(cell, true);
      }
    }
    await Promise.all(waits);
  }

  private send(actorId: string, env: Envelope, bounded: boolean): Result<void> {
    if (this.closing) {
      this.metrics.reject(kindOf(actorId), 'stopping');
      return runtimeError('stopping', 'the actor host is shutting down');
    }
    const shard = this.shardFor(this.shardOf(actorId));
    const cell = shard.cell(actorId);
    if (bounded && cell.queued >= this.config.mailboxBound) {
      this.metrics.reject(cell.behavior.kind, 'overloaded');
      return runtimeError('overloaded', `mailbox of ${actorId} is full (${this.config.mailboxBound} messages)`);
    }
    shard.enqueue(cell, env);
    return { ok: true, value: undefined };
  }

  private shardFor(no: number): ShardActor {
    let shard = this.shards.get(no);
    if (!shard) {
      shard = new ShardActor(no, this.system, `shard-${no}`, this.ctx);
      this.shards.set(no, shard);
    }
    return shard;
  }

  private behaviorOf(actorId: string): Behavior<unknown, unknown> {
    const kind = kindOf(actorId);
    const behavior = this.behaviors.get(kind);
    if (!behavior) throw new TypeError(`no behaviour for actor kind "${kind}" (actor id ${actorId})`);
    return behavior;
  }

  private sweep(): void {
    const idleBefore = this.clock() - this.config.passivateAfterMs;
    for (const shard of this.shards.values()) {
      for (const cell of shard.cells.values()) {
        if (cell.lastActive <= idleBefore) shard.passivate(cell, false);
      }
    }
  }

  private waitFor(cell: ActorCell, resolve: () => void): void {
    const list = this.stopWaiters.get(cell);
    if (list) list.push(resolve);
    else this.stopWaiters.set(cell, [resolve]);
  }

  private passivated(cell: ActorCell): void {
    this.metrics.kind(cell.behavior.kind).passivations.inc();
    this.releaseWaiters(cell);
  }

  private releaseWaiters(cell: ActorCell): void {
    const waiters = this.stopWaiters.get(cell);
    if (!waiters) return;
    this.stopWaiters.delete(cell);
    for (const w of waiters) w();
  }

  private runEffects(fromId: string, effects: readonly unknown[]): void {
    if (!this.deps.onEffects) return;
    try {
      this.deps.onEffects(fromId, effects);
    } catch (err) {
      this.log.error({ err, actor: fromId }, 'effect handler threw');
    }
  }

  private sample(): { resident: Map<string, number>; queued: number; deepest: number } {
    const resident = new Map<string, number>();
    let queued = 0;
    let deepest = 0;
    for (const shard of this.shards.values()) {
      for (const cell of shard.cells.values()) {
        const kind = cell.behavior.kind;
        resident.set(kind, (resident.get(kind) ?? 0) + 1);
        queued += cell.queued;
        if (cell.queued > deepest) deepest = cell.queued;
      }
    }
    return { resident, queued, deepest };
  }
}

/** The kind is the id's prefix up to the first `:` (`device:h1:d1` → `device`). */
export function kindOf(actorId: string): string {
  const i = actorId.indexOf(':');
  return i < 0 ? actorId : actorId.slice(0, i);
}
