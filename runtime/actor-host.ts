/** The actor host: virtual actors in shard-level nact actors, with passivation, deadlines and backpressure. */
import { start, stop } from 'nact';
import type { Registry } from 'prom-client';
import { envelope, type ActorCell, type Envelope } from './actor-cell.ts';
import type { Behavior } from './behavior.ts';
import type { Logger } from './logger.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { JournalEntry, PersistencePort } from './persistence-port.ts';
import { ReminderMetrics } from './reminder-metrics.ts';
import { reminderMember } from './reminder-changes.ts';
import { ReminderScheduler } from './reminder-scheduler.ts';
import { runtimeError, type Result } from './result.ts';
import { outboxKey, OUTBOX_TYPE, OutboxDelivered, parseOutboxName, ReminderDue, type OutboxMessage } from './runtime-messages.ts';
import { ShardActor, type ShardContext } from './shard-actor.ts';
import { activeCarrier, runWithCarrier, tracingOn, type TraceCarrier } from './tracing.ts';

/** Milliseconds before an outbox entry that could not be delivered is tried again: doubling up to the cap. */
const OUTBOX_RETRY = { firstMs: 200, maxMs: 30_000 } as const;
/** Milliseconds before a runtime message whose actor could not be read (or a shard's reminders) is read again: doubling up to the cap. */
const READ_RETRY = { firstMs: 500, maxMs: 30_000 } as const;
/** An outbox entry older than this (ms) that still cannot be delivered is given up (logged, counted). */
const OUTBOX_MAX_AGE_MS = 24 * 3_600_000;
/** Codes of a send that will never succeed: the entry is deleted rather than retried. */
const REFUSED_FOR_GOOD: ReadonlySet<string> = new Set(['actor_crashed', 'payload_too_large', 'invalid_argument']);

const backoff = (attempts: number, r: { readonly firstMs: number; readonly maxMs: number }): number =>
  Math.min(r.maxMs, r.firstMs * 2 ** Math.min(Math.max(0, attempts - 1), 20));

/** The outbox entry of `reminders` to deliver first: the lowest `<seq>.<k>`. */
function oldestOutboxEntry(reminders: ReadonlyMap<string, { readonly at: number; readonly payload: unknown }>) {
  let best: { name: string; seq: number; k: number; at: number; payload: unknown } | undefined;
  for (const [name, r] of reminders) {
    const parsed = parseOutboxName(name);
    if (!parsed) continue;
    const { seq, k } = parsed;
    if (!best || seq < best.seq || (seq === best.seq && k < best.k)) best = { name, seq, k, at: r.at, payload: r.payload };
  }
  return best;
}

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
   * window as the step that sent them; any other goes into the sender's outbox (written with the
   * step, then sent with `sendDurably`). Without this every effect goes to `onEffects`.
   */
  readonly tellOf?: (effect: unknown) => { readonly to: string; readonly msg: unknown } | undefined;
  /**
   * The capped log an effect that leaves its shard appends an entry to (apps' event history), or
   * undefined. The entry is written by the same store call as the step's window (so a window that
   * is not written appends nothing); the effect still runs once the window is durable.
   */
  readonly logOf?: (effect: unknown) => { readonly log: string; readonly entry: unknown } | undefined;
  /**
   * Sends an outbox entry to its target wherever it lives and resolves once the target's step that
   * applied it is durable (the router's `ask`). Default: this host's own `ask`.
   */
  readonly sendDurably?: (actorId: string, msg: unknown) => Promise<Result<unknown>>;
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
  private readonly reminderMetrics: ReminderMetrics;
  /** When each pending reminder of the shards served here is due. */
  private readonly scheduler: ReminderScheduler;
  /** Shards given up (handed off, lost): their reminders no longer fire here. */
  private readonly released = new Set<number>();
  /** Senders with an outbox entry on its way, or waiting to be tried again. */
  private readonly outboxBusy = new Set<string>();
  /** Failed sends of each sender's oldest outbox entry, for the retry backoff. */
  private readonly outboxAttempts = new Map<string, number>();
  /** Failed reads per actor (its runtime messages wait) and per shard (its reminder index), for the retry backoff. */
  private readonly readAttempts = new Map<string, number>();
  /** Shards whose reminder index is being read again after a failed window. */
  private readonly reloading = new Set<number>();
  /** Callers waiting for a cell to passivate. */
  private readonly stopWaiters = new Map<ActorCell, (() => void)[]>();
  /** Actors being passivated for a caller: messages to them go the long way (through the sender's outbox). */
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
    this.scheduler = new ReminderScheduler(
      (_shard, actorId, name, at) => this.deliverInternal(actorId, new ReminderDue(name, at)),
      this.clock,
    );
    this.reminderMetrics = new ReminderMetrics(deps.registry, () => this.scheduler.size);
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
      logOf: deps.logOf ?? (() => undefined),
      acceptsLocal: (id) => !this.leaving.some((f) => f(id)),
      // While the host closes, an actor a step of its shard wakes leaves once it has handled it.
      passivateOnArrival: () => this.closing,
      runEffects: (id, effects, trace) => this.runEffects(id, effects, trace),
      reminderMetrics: this.reminderMetrics,
      remindersWritten: (shard, actorId, events) => this.remindersWritten(shard, actorId, events),
      recovered: (shard, cell) => {
        this.readAttempts.delete(cell.id);
        if (this.released.has(shard)) return;
        // The state was just read from the store (after its pending windows): its times are the truth.
        for (const [name, r] of cell.reminders) this.scheduler.set(shard, reminderMember(cell.id, name), r.at);
      },
      reschedule: (shard, actorId, name, at) => {
        if (!this.released.has(shard)) this.scheduler.set(shard, reminderMember(actorId, name), at);
      },
      retryLater: (actorId, msg) => {
        const attempts = (this.readAttempts.get(actorId) ?? 0) + 1;
        this.readAttempts.set(actorId, attempts);
        setTimeout(() => this.deliverInternal(actorId, msg), backoff(attempts, READ_RETRY)).unref();
      },
      sendOutbox: (shard, cell) => this.sendOutbox(shard, cell),
      windowFailed: (shard) => this.reloadReminders(shard),
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

  /**
   * Sends without waiting for an answer. Fails only with `overloaded` or `stopping`. With tracing
   * on, the message carries the caller's active trace (as `ask` and `deliver` do): its step gets a span.
   */
  tell(actorId: string, msg: unknown): Result<void> {
    return this.send(
      actorId,
      envelope(msg, undefined, 0, 0, undefined, undefined, undefined, tracingOn ? activeCarrier() : undefined),
      true,
    );
  }

  /**
   * Sends a message that an actor's durable step produced (an effect). It is not subject to the
   * mailbox bound: backpressure belongs at the edges, and dropping a consequence of an
   * acknowledged step would lose it. Fails only with `stopping`.
   */
  deliver(actorId: string, msg: unknown): Result<void> {
    return this.send(
      actorId,
      envelope(msg, undefined, 0, 0, undefined, undefined, undefined, tracingOn ? activeCarrier() : undefined),
      false,
    );
  }

  /**
   * Sends and waits for the actor's reply, which is released only once the step is durable.
   * @param timeoutMs milliseconds until the answer is `timeout` (the message may still apply).
   */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs = this.config.askTimeoutMs): Promise<Result<R>> {
    const trace = tracingOn ? activeCarrier() : undefined;
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
      const sent = this.send(actorId, envelope(msg, reply, this.clock() + timeoutMs, 0, undefined, undefined, undefined, trace), true);
      if (!sent.ok) reply(sent);
    });
  }

  /**
   * This node now serves `shard` (it holds its lease): its pending reminders are loaded from the
   * store and fire here, late ones at once. Reminders its new steps set are scheduled as they are
   * written, so the load may finish after serving starts.
   */
  async takeShard(shard: number): Promise<void> {
    this.released.delete(shard);
    await this.loadReminders(shard);
  }

  /**
   * Reads a shard's reminder index into the schedule (adding what is missing), again with backoff
   * until it succeeds or the shard is no longer served here. Nothing to read in a store without one.
   */
  private async loadReminders(shard: number): Promise<void> {
    const store = this.deps.store;
    if (!store.loadReminders) return;
    const key = `shard:${shard}`;
    let reminders;
    try {
      reminders = await store.loadReminders(shard);
    } catch (err) {
      const attempts = (this.readAttempts.get(key) ?? 0) + 1;
      this.readAttempts.set(key, attempts);
      if (attempts === 1 || attempts % 10 === 0) this.log.error({ err, shard, attempts }, "reading a shard's reminders failed; retrying");
      setTimeout(
        () => {
          if (!this.released.has(shard) && !this.closing) void this.loadReminders(shard);
        },
        backoff(attempts, READ_RETRY),
      ).unref();
      return;
    }
    this.readAttempts.delete(key);
    if (this.released.has(shard) || this.closing) return;
    for (const r of reminders) this.scheduler.ensure(shard, reminderMember(r.actorId, r.name), r.at);
  }

  /**
   * A window of the shard failed: a reminder its steps fired (or an outbox entry they deleted) is
   * still pending in the store but no longer scheduled, and a window reported failed may have
   * landed with new ones. The index is read again, once the store answers.
   */
  private reloadReminders(shard: number): void {
    if (!this.deps.store.loadReminders || this.reloading.has(shard) || this.released.has(shard) || this.closing) return;
    this.reloading.add(shard);
    // After the failed window's cells re-read their state (their own reminders are rescheduled then too).
    setTimeout(() => {
      void this.loadReminders(shard).finally(() => this.reloading.delete(shard));
    }, READ_RETRY.firstMs).unref();
  }

  /** This node no longer serves `shard`: none of its reminders fires here (its next owner loads them). */
  dropShard(shard: number): void {
    this.released.add(shard);
    this.scheduler.dropShard(shard);
  }

  /** Reminders scheduled on this node (tests, diagnostics). */
  get pendingReminders(): number {
    return this.scheduler.size;
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
   * meanwhile go the long way, through the senders' outboxes.
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
    this.scheduler.stop();
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

  /** One of the runtime's own messages; dropped when the actor's shard is no longer served here. */
  private deliverInternal(actorId: string, msg: ReminderDue | OutboxDelivered): void {
    if (this.closing || this.released.has(this.shardOf(actorId))) return;
    // Untraced: a reminder or an outbox acknowledgement continues no caller's trace.
    this.send(actorId, envelope(msg, undefined, 0, 0, undefined, undefined, undefined, undefined), false);
  }

  private remindersWritten(shard: number, actorId: string, events: readonly JournalEntry[]): void {
    if (this.released.has(shard)) return;
    for (const e of events) {
      if (e.rem === undefined) continue;
      for (const op of e.rem) {
        const member = reminderMember(actorId, op[1]);
        if (op[0] === '+') this.scheduler.set(shard, member, op[2]);
        else this.scheduler.delete(shard, member);
      }
    }
  }

  /**
   * Delivers the sender's oldest outbox entry (at least once), unless one is on its way: a
   * sender's entries go one at a time and in order, so a receiver keeps only the latest key per
   * sender to drop a re-delivery. Once the target's step is durable the sender deletes the entry
   * with a step of its own (and sends the next). A failed send is tried again with a doubling
   * delay; one refused for good, or older than a day, is deleted and logged.
   */
  private sendOutbox(shard: number, cell: ActorCell): void {
    const actorId = cell.id;
    if (this.outboxBusy.has(actorId) || this.closing || this.released.has(shard)) return;
    const entry = oldestOutboxEntry(cell.reminders);
    // Not before the step that wrote it is durable (its window may still fail): it is scheduled
    // when written, and comes due then.
    if (!entry || entry.seq > cell.durableSeq) return;
    const { name, payload } = entry;
    const target = payload as { to?: unknown; msg?: unknown; trace?: unknown } | null;
    const giveUp = (why: string, fields: object): void => {
      this.log.error({ actor: actorId, name, ...fields }, why);
      this.reminderMetrics.outbox.labels('dropped').inc();
      this.deliverInternal(actorId, new OutboxDelivered(name));
    };
    if (typeof target?.to !== 'string') return giveUp('outbox entry without a target; deleted', {});
    const to = target.to;
    this.outboxBusy.add(actorId);
    const envelope: OutboxMessage = { type: OUTBOX_TYPE, from: outboxKey(actorId, name), msg: target.msg };
    const send = this.deps.sendDurably ?? ((dest: string, msg: unknown) => this.ask(dest, msg));
    let sent: Promise<Result<unknown>>;
    try {
      // With tracing on, sent in the context of the step that wrote the entry (or none): this runs
      // inside some shard turn, whose leftover context is not the entry's.
      sent = tracingOn
        ? runWithCarrier(typeof target.trace === 'string' ? target.trace : undefined, () => send(to, envelope))
        : send(to, envelope);
    } catch (err) {
      sent = Promise.resolve(runtimeError('unavailable', (err as Error).message));
    }
    const settle = (result: Result<unknown>): void => {
      const attempts = (this.outboxAttempts.get(actorId) ?? 0) + 1;
      if (this.closing || this.released.has(shard)) {
        this.outboxBusy.delete(actorId);
        this.outboxAttempts.delete(actorId);
        return; // the shard's next owner delivers it
      }
      if (result.ok) {
        this.outboxBusy.delete(actorId);
        this.outboxAttempts.delete(actorId);
        this.reminderMetrics.outbox.labels('delivered').inc();
        this.deliverInternal(actorId, new OutboxDelivered(name));
        return;
      }
      const code = result.error.code;
      if (REFUSED_FOR_GOOD.has(code) || this.clock() - entry.at > OUTBOX_MAX_AGE_MS) {
        this.outboxBusy.delete(actorId);
        this.outboxAttempts.delete(actorId);
        return giveUp('outbox message refused for good (or too old); deleted', { to, code, attempts });
      }
      this.reminderMetrics.outbox.labels('retried').inc();
      this.outboxAttempts.set(actorId, attempts);
      if (attempts === 1 || attempts % 10 === 0)
        this.log.warn({ actor: actorId, to, code, attempts }, 'outbox message not delivered; retrying');
      setTimeout(
        () => {
          // Free again (its attempts kept for the backoff): the next delivery picks the oldest entry.
          this.outboxBusy.delete(actorId);
          this.deliverInternal(actorId, new ReminderDue(name, 0));
        },
        backoff(attempts, OUTBOX_RETRY),
      ).unref();
    };
    sent.then(settle, (err: unknown) => settle(runtimeError('unavailable', err instanceof Error ? err.message : String(err))));
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

  private runEffects(fromId: string, effects: readonly unknown[], trace: TraceCarrier | undefined): void {
    const onEffects = this.deps.onEffects;
    if (!onEffects) return;
    try {
      // With tracing on, they run in the traced step's context (or none, never a leftover one): what
      // they send (a message, a hub command) continues the step's trace.
      if (tracingOn) runWithCarrier(trace, () => onEffects(fromId, effects));
      else onEffects(fromId, effects);
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
