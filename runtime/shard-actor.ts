/** One nact actor per shard: it schedules the shard's entity cells and writes their steps in windows. */
import { dispatch, spawn, stop } from 'nact';
import { ActorCell, envelope, type Envelope, type WindowHold } from './actor-cell.ts';
import { REMINDER_FIRED, REMINDER_NAME, type Behavior, type ReminderFired, type ReminderOp } from './behavior.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';
import type { JournalEntry, LogAppend, PersistencePort, Recovered, StoredReminderOp } from './persistence-port.ts';
import type { ReminderMetrics } from './reminder-metrics.ts';
import { runtimeError } from './result.ts';
import { isOutboxMessage, OUTBOX_PREFIX, outboxName, OutboxDelivered, ReminderDue, WAKE_REMINDER } from './runtime-messages.ts';
import { ShardWindow } from './shard-window.ts';
import { carrierOf, endSpan, startStepSpan, type TraceCarrier } from './tracing.ts';

/** What every shard of a host shares. */
export interface ShardContext {
  readonly store: PersistencePort;
  readonly metrics: RuntimeMetrics;
  readonly log: Logger;
  readonly clock: () => number;
  readonly snapshotEvery: number;
  readonly maxAttempts: number;
  /** Messages one nact turn handles before the shard yields to I/O and other shards. */
  readonly turnBudget: number;
  /** Actors one window (one script call) holds at most; the next steps open the next window. */
  readonly maxWindowActors: number;
  behaviorOf(actorId: string): Behavior<unknown, unknown>;
  shardOf(actorId: string): number;
  /** The target of an effect that is a message to an actor, or undefined for any other effect. */
  tellOf(effect: unknown): { readonly to: string; readonly msg: unknown } | undefined;
  /** The log entry an effect that leaves the shard appends (written with its step's window), or undefined. */
  logOf(effect: unknown): { readonly log: string; readonly entry: unknown } | undefined;
  /** False when messages to this actor must go the long way (its shard is being handed off). */
  acceptsLocal(actorId: string): boolean;
  /** True when an actor activated now must passivate as soon as it is idle (the host is closing). */
  passivateOnArrival(actorId: string): boolean;
  /** Runs effects that leave the shard (after their window is durable); `trace`: the traced step's context they continue. */
  runEffects(fromId: string, effects: readonly unknown[], trace?: TraceCarrier): void;
  readonly reminderMetrics: ReminderMetrics;
  /** A window is durable: the reminder changes of `events` (one cell's) now hold in the store. */
  remindersWritten(shard: number, actorId: string, events: readonly JournalEntry[]): void;
  /** A cell's state was (re)read from the store: its pending reminders must be scheduled. */
  recovered(shard: number, cell: ActorCell): void;
  /** Delivers one of the runtime's own messages to an actor again a little later (its recovery failed). */
  retryLater(actorId: string, msg: ReminderDue | OutboxDelivered): void;
  /**
   * Delivers the oldest outbox entry of `cell` (a message to an actor elsewhere) unless one of its
   * entries is on its way already: a sender's entries go one at a time, in order. On success the
   * cell is told `OutboxDelivered`.
   */
  sendOutbox(shard: number, cell: ActorCell): void;
  /** Schedules a reminder of the cell at `at` (its table says so; the schedule had another time). */
  reschedule(shard: number, actorId: string, name: string, at: number): void;
  /** A window of the shard failed: reminders it fired or changed are as the store has them, which the host reads again. */
  windowFailed(shard: number): void;
  /** A cell left memory (passivated). */
  passivated(cell: ActorCell): void;
  /**
   * Asks for `shard.flush()` once the shard turns scheduled so far have run, so the windows of
   * every shard that ran in this pass go to the store in one write (one pipeline, one fsync).
   */
  requestFlush(shard: ShardActor): void;
}

type NactParent = Parameters<typeof spawn>[0];
type NactRef = ReturnType<typeof spawn>;

const DRAIN = 'drain';
/** "The wake-up time was not re-read" (undefined means "no wake-up"). */
const UNCHANGED = Symbol('unchanged');

/** A step's reminder changes as journaled, checked: a bad one is a bug of the reducer (a crash of the message). */
function storedOps(ops: readonly ReminderOp[]): StoredReminderOp[] {
  const out: StoredReminderOp[] = [];
  for (const op of ops) {
    if (typeof op.name !== 'string' || !REMINDER_NAME.test(op.name)) throw new TypeError(`bad reminder name ${JSON.stringify(op.name)}`);
    if (op.op === 'cancel') out.push(['-', op.name]);
    else if (op.op === 'set' && Number.isSafeInteger(op.at))
      out.push(op.payload === undefined ? ['+', op.name, op.at] : ['+', op.name, op.at, op.payload]);
    else throw new TypeError(`bad reminder change ${JSON.stringify(op)}`);
  }
  return out;
}

/**
 * The shard's cells run here, one message at a time each, in rounds: each ready cell handles one
 * message per round, so a hot actor with a long queue never keeps its idle neighbours waiting. A
 * nact turn runs rounds until nothing is ready (or the turn budget is spent), then writes what
 * the turn journaled as one window — at once when no window of the shard is in flight, else right
 * after the one in flight, so the shard's writes stay in order. A message one cell sends to
 * another of the same shard is handled in the same turn (or, when that actor must first be
 * recovered, before the window goes) and written in the same window as the step that sent it: a
 * report → rule → command chain is one write, and the hub's ack and its command are released
 * together when it is durable. Activations of a turn are recovered with
 * one read; a cell recovering never blocks the rest of the shard.
 */
export class ShardActor {
  readonly cells = new Map<string, ActorCell>();
  private ready: ActorCell[] = [];
  private toRecover: ActorCell[] = [];
  private open: ShardWindow | undefined;
  /** Full windows closed while one was in flight, oldest first: they go out one by one, in order. */
  private closed: ShardWindow[] = [];
  private inFlight: ShardWindow | undefined;
  private nextNo = 1;
  /** Every window up to this number is settled (written or failed). */
  private settledNo = 0;
  private scheduled = false;
  private draining = false;
  private readonly ref: NactRef;

  constructor(
    readonly shard: number,
    parent: NactParent,
    name: string,
    private readonly ctx: ShardContext,
  ) {
    this.ref = spawn(
      parent,
      () => {
        this.drain();
      },
      name,
      {
        onCrash: (_msg: unknown, err: unknown, crash: { resume: symbol }) => {
          // Reducer errors are caught per message; reaching here is a bug in the shard itself.
          ctx.log.error({ err, shard }, 'shard turn failed outside the reducers');
          return crash.resume;
        },
      } as never,
    );
  }

  /** The cell of `actorId`, activated (to be recovered before its first message) when not resident. */
  cell(actorId: string): ActorCell {
    let cell = this.cells.get(actorId);
    if (!cell) {
      const behavior = this.ctx.behaviorOf(actorId);
      cell = new ActorCell(actorId, behavior, this.ctx.metrics.kind(behavior.kind), this.ctx.clock());
      this.cells.set(actorId, cell);
      cell.km.activations.inc();
      if (this.ctx.passivateOnArrival(actorId)) cell.passivateRequested = true;
    }
    return cell;
  }

  enqueue(cell: ActorCell, env: Envelope): void {
    cell.enqueue(env);
    cell.lastActive = this.ctx.clock();
    this.offer(cell);
  }

  /**
   * Passivates the cell once it is idle (now, or when its queue and writes are done): a final
   * snapshot goes into the next window and the cell leaves when that is written. Its reminders
   * stay scheduled: one coming due activates it again. `requested`: a caller asked (handoff,
   * shutdown) rather than the cell idling out; it only names the reason in the lifecycle log.
   * @returns false when the cell stays for now (busy).
   */
  passivate(cell: ActorCell, requested: boolean): boolean {
    if (cell.status !== 'active' || !cell.idle) return false;
    if (cell.needsRecovery || cell.seq === cell.snapshotSeq) {
      this.remove(cell); // nothing in memory that the store lacks
      return true;
    }
    cell.setStatus('stopping', this.ctx.log, requested ? 'requested' : 'idle');
    const w = this.openWindow();
    w.add(cell, undefined, cell.finalSnapshot());
    cell.pendingWindow = w.no;
    this.ctx.requestFlush(this); // with the other windows of this pass, never in the middle of a turn
    return true;
  }

  /** Stops serving the cell at once, writing nothing: what waits for it is answered `unavailable`. */
  evict(cell: ActorCell): void {
    cell.setStatus('evicted', this.ctx.log, 'shard lost');
    this.cells.delete(cell.id);
    const queue = cell.queue ?? [];
    cell.queue = undefined;
    for (const env of queue) {
      this.handled(env);
      env.reply?.(runtimeError('unavailable', `actor ${cell.id} is no longer served by this node`));
    }
  }

  stop(): void {
    stop(this.ref);
  }

  private offer(cell: ActorCell): void {
    if (cell.ready || !cell.wantsTurn) return;
    cell.ready = true;
    this.ready.push(cell);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.draining) return;
    this.scheduled = true;
    dispatch(this.ref, DRAIN);
  }

  /** One nact turn: rounds over the ready cells, then the turn's window and recoveries go out. */
  private drain(): void {
    this.scheduled = false;
    this.draining = true;
    let budget = this.ctx.turnBudget;
    try {
      while (this.ready.length > 0 && budget > 0) {
        const round = this.ready;
        this.ready = [];
        let i = 0;
        for (; i < round.length && budget > 0; i++) {
          const cell = round[i]!;
          cell.ready = false;
          if (this.guardedTurn(cell)) budget--;
          if (cell.wantsTurn) this.offer(cell);
          else if (cell.passivateRequested) this.passivate(cell, true);
          else if (cell.passivateWhenIdle) this.passivate(cell, false);
        }
        if (i < round.length) this.ready = round.slice(i).concat(this.ready);
      }
    } finally {
      this.draining = false;
      if (this.closed.length > 0 || (this.open && !this.open.empty)) this.ctx.requestFlush(this);
      this.recoverWaiting();
      if (this.ready.length > 0) this.schedule();
    }
  }

  /**
   * A turn that cannot take the shard down: a throw that escapes `turn` is a bug outside the
   * reducer (everything that may throw runs before the step is committed), so the cell re-reads
   * its state and the rest of the round goes on.
   */
  private guardedTurn(cell: ActorCell): boolean {
    try {
      return this.turn(cell);
    } catch (err) {
      this.ctx.log.error({ err, actor: cell.id }, 'shard turn failed outside the reducer; the actor re-reads its state');
      this.mustRecover(cell);
      return true;
    }
  }

  /**
   * The cell re-reads its state once its unsettled windows are written. Windows waiting for its
   * queued messages stop waiting (they would wait for each other): those messages are handled
   * after the recovery, in a later window.
   */
  private mustRecover(cell: ActorCell): void {
    cell.needsRecovery = true;
    if (!cell.queue) return;
    // A message whose sender's window waits for it goes into the sender's outbox (written with the
    // sender's step): released here, it would be handled only after that window, and a crash in
    // between would lose it.
    const kept = cell.queue.filter((env) => !this.divertToOutbox(cell, env));
    for (const env of cell.queue) this.handled(env);
    cell.queue = kept.length > 0 ? kept : undefined;
  }

  /** The message is handled (or dropped): the window that waited for it may go. */
  private handled(env: Envelope): void {
    const hold = env.holds;
    if (!hold) return;
    env.holds = undefined;
    if (--hold.caused === 0) this.ctx.requestFlush(this);
  }

  /** Gives the cell one message. @returns true when a message was taken. */
  private turn(cell: ActorCell): boolean {
    if (cell.status === 'evicted' || cell.queued === 0) return false;
    if (cell.needsRecovery) {
      if (!cell.recovering && cell.pendingWindow === 0) {
        cell.recovering = true;
        this.toRecover.push(cell);
      }
      return false;
    }
    const queue = cell.queue!;
    const env = queue.shift()!;
    if (queue.length === 0) cell.queue = undefined; // an idle actor keeps no array
    // The window of the step that sent it (if it waits for it) is not sent before this turn ends.
    const heldBy = env.holds;
    this.handled(env);
    const { metrics } = this.ctx;
    const kind = cell.behavior.kind;
    if (env.attempts >= this.ctx.maxAttempts) {
      metrics.reject(kind, 'actor_crashed');
      env.reply?.(runtimeError('actor_crashed', `message crashed actor ${cell.id} ${env.attempts} times and was rejected`));
      // A reminder whose handling crashes every time is deleted, or it would come due again for ever.
      if (env.msg instanceof ReminderDue && cell.reminders.has(env.msg.name)) {
        this.ctx.log.error({ actor: cell.id, reminder: env.msg.name }, 'a reminder crashed its actor on every attempt; deleted');
        this.ctx.reminderMetrics.crashed.inc();
        this.runtimeStep(cell, this.ctx.clock(), [['-', env.msg.name]]);
      }
      return true;
    }
    const now = this.ctx.clock();
    if (env.deadline !== 0 && now > env.deadline) {
      metrics.reject(kind, 'expired');
      return true;
    }
    cell.km.messages.inc();
    if (cell.status === 'stopping') cell.setStatus('active', this.ctx.log, 'a message arrived');
    // The runtime's own messages: a reminder come due, an outbox entry delivered, a message from
    // another actor's outbox. What reaches the reducer is `msg`.
    let msg = env.msg;
    let fired: string | undefined;
    let from: string | undefined;
    if (msg instanceof ReminderDue) {
      // Any outbox entry coming due (or due again) sends the sender's oldest one, if none is on its way.
      if (msg.name.startsWith(OUTBOX_PREFIX)) {
        this.ctx.sendOutbox(this.shard, cell);
        return true;
      }
      const pending = cell.reminders.get(msg.name);
      // Cancelled, or set again for another time since it was scheduled: not this one's to fire.
      if (pending === undefined || pending.at !== msg.at) {
        this.ctx.reminderMetrics.stale.inc();
        // Set again for another time that the schedule may not know (a window reported failed that landed).
        if (pending !== undefined) this.ctx.reschedule(this.shard, cell.id, msg.name, pending.at);
        return true;
      }
      fired = msg.name;
      const lateMs = Math.max(0, now - pending.at);
      this.ctx.reminderMetrics.fired.labels(kind).inc();
      this.ctx.reminderMetrics.lateness.labels(kind).observe(lateMs / 1000);
      if (fired === WAKE_REMINDER) msg = cell.behavior.wakeMessage;
      else {
        const reminder: ReminderFired = {
          type: REMINDER_FIRED,
          name: fired,
          payload: pending.payload,
          dueAt: pending.at,
          lateMs,
        };
        msg = reminder;
      }
      // A behaviour without a wake message (changed since it set one) only deletes the reminder.
      if (msg === undefined) {
        this.runtimeStep(cell, now, [['-', fired]]);
        return true;
      }
    } else if (msg instanceof OutboxDelivered) {
      if (cell.reminders.has(msg.name)) this.runtimeStep(cell, now, [['-', msg.name]]);
      this.ctx.sendOutbox(this.shard, cell); // the next entry, if any
      return true;
    } else if (isOutboxMessage(msg)) {
      from = msg.from;
      if (cell.applied(from)) {
        // Delivered again (the sender did not hear that it was applied): answered, not applied.
        this.ctx.reminderMetrics.outbox.labels('duplicate').inc();
        this.answerAfterPending(cell, env);
        return true;
      }
      msg = msg.msg;
    }
    // A traced message (its carrier is set only while tracing is on) gets a span for its step; what
    // the step sends carries the span's context. It ends when the step's window settles.
    const span = env.trace === undefined ? undefined : startStepSpan(env.trace, cell.id, kind, msg);
    const stepTrace = span === undefined ? undefined : carrierOf(span);
    // Everything that may throw (the reducer, the wake-up time, where effects go) runs before the
    // step is committed: a throw is a crash of this message, and nothing of it is applied.
    let step;
    let wakeAt: number | undefined | typeof UNCHANGED = UNCHANGED;
    let local: { to: ActorCell; msg: unknown }[] | undefined;
    let away: unknown[] | undefined;
    /** The effects of `away` with a log entry, and their entries. */
    let logged: unknown[] | undefined;
    let logs: LogAppend[] | undefined;
    let ops: StoredReminderOp[] | undefined = fired === undefined ? undefined : [['-', fired]];
    try {
      step = cell.behavior.receive(cell.state, msg, { id: cell.id, now, replaying: false, reminders: cell.reminders });
      if (step.reminders !== undefined && step.reminders.length > 0) (ops ??= []).push(...storedOps(step.reminders));
      // The wake-up is re-read when the state changed, and after the wake message itself (a wake
      // that changed nothing, e.g. one that came early, must be set again).
      if (cell.behavior.nextWakeAt && (step.state !== cell.state || msg === cell.behavior.wakeMessage)) {
        wakeAt = cell.behavior.nextWakeAt(step.state);
      }
      if (wakeAt !== UNCHANGED) {
        const held = fired === WAKE_REMINDER ? undefined : cell.reminders.get(WAKE_REMINDER)?.at;
        if (wakeAt !== held) (ops ??= []).push(wakeAt === undefined ? ['-', WAKE_REMINDER] : ['+', WAKE_REMINDER, wakeAt]);
      }
      const effects = step.effects;
      if (effects !== undefined && effects.length > 0) {
        let k = 0;
        for (const effect of effects) {
          const tell = this.ctx.tellOf(effect);
          if (tell && this.ctx.shardOf(tell.to) === this.shard && this.ctx.acceptsLocal(tell.to) && !cell.hasOutboxTo(tell.to)) {
            (local ??= []).push({ to: this.cell(tell.to), msg: tell.msg });
          } else if (tell) {
            // A message to an actor elsewhere goes into the outbox, written with this step, and is
            // delivered (at least once) when the window is durable: a crash in between loses nothing.
            const entry = stepTrace === undefined ? { to: tell.to, msg: tell.msg } : { to: tell.to, msg: tell.msg, trace: stepTrace };
            (ops ??= []).push(['+', outboxName(cell.seq + 1, k++), now, entry]);
          } else {
            (away ??= []).push(effect);
            const log = this.ctx.logOf(effect);
            if (log !== undefined) {
              // Encoded here (and again by the store): an entry that cannot be is a crash of this
              // message, not a window that fails, and with it every window that retries it.
              if (JSON.stringify(log.entry) === undefined) throw new Error(`the log entry of an effect of ${cell.id} is not JSON`);
              (logged ??= []).push(effect);
              (logs ??= []).push({ log: log.log, at: now, entry: log.entry });
            }
          }
        }
      }
    } catch (err) {
      if (span) endSpan(span, `actor crashed: ${err instanceof Error ? err.message : String(err)}`);
      cell.km.crashes.inc();
      env.attempts++;
      this.ctx.log.error({ err, actor: cell.id, attempt: env.attempts }, 'actor crashed; restarting from its last durable state');
      // A message a step of the shard sent goes into that step's outbox (delivered, and retried,
      // once the window is written); any other is retried here after the actor re-read its state.
      if (!(heldBy && this.divertToOutbox(cell, env, heldBy))) (cell.queue ??= []).unshift(env);
      this.mustRecover(cell);
      return true;
    }
    // What follows commits the step; a throw here is a bug outside the reducer (guardedTurn
    // recovers the cell), and the step's span must still end, with an error, not stay open.
    let window: ShardWindow | undefined;
    let spanHandled = span === undefined;
    try {
      cell.state = step.state;
      // Each step decides again: a read that asked to leave, followed by a write, stays.
      cell.passivateWhenIdle = step.passivate === true;
      // The window this step belongs to: its own if it journaled (a step that changed reminders, or
      // applied a message from an outbox, always does), else the latest one its state (or the
      // message it handled) depends on, if that is not written yet.
      if (step.journal || ops !== undefined || from !== undefined) {
        window = this.openWindow();
        const { entry, snapshot } = cell.journal(msg, now, this.ctx.snapshotEvery, ops, from);
        window.add(cell, entry, snapshot);
        cell.pendingWindow = window.no;
      } else {
        window = this.dependency(cell, env);
      }
      // Messages to actors of this shard are handled now (this turn, this window); everything else
      // waits for the window.
      if (local !== undefined) {
        const cause = window?.no ?? 0;
        // The window waits for these messages unless it is already on its way.
        const holds = window !== undefined && window !== this.inFlight ? window : undefined;
        for (const { to, msg: sent } of local) {
          if (holds) {
            holds.caused++;
            this.enqueue(to, envelope(sent, undefined, 0, cause, holds, cell, cell.seq, stepTrace));
          } else this.enqueue(to, envelope(sent, undefined, 0, cause, undefined, undefined, undefined, stepTrace));
        }
      }
      // Log entries go into a window not yet sent: the step's own, else the open one (their effects
      // then wait for that window, which is written after the one the step depends on). The step's
      // other effects wait for the window it depends on, as without logs: a later window that
      // fails must not drop an effect of a step that is already durable (a hub command).
      if (logs !== undefined) {
        const holder = window === undefined || window === this.inFlight ? this.openWindow() : window;
        holder.append(logs);
        if (holder !== window) {
          holder.hold(cell.id, logged!, stepTrace);
          const rest = away!.filter((e) => !logged!.includes(e));
          away = rest.length > 0 ? rest : undefined;
        }
      }
      if (away !== undefined) {
        if (window) window.hold(cell.id, away, stepTrace);
        else this.ctx.runEffects(cell.id, away, stepTrace);
      }
      if (span) {
        if (window) window.traced(span);
        else endSpan(span);
        spanHandled = true;
      }
    } finally {
      if (!spanHandled) endSpan(span!, 'step failed outside the reducer');
    }
    if (env.reply) {
      if (window) window.reply(env.reply, step.reply);
      else env.reply({ ok: true, value: step.reply });
    }
    return true;
  }

  /** The unwritten window a step that journals nothing depends on (its cell's, or its message's cause), if any. */
  private dependency(cell: ActorCell, env: Envelope): ShardWindow | undefined {
    const dependsOn = Math.max(cell.pendingWindow, env.cause > this.settledNo ? env.cause : 0);
    if (dependsOn === 0) return undefined;
    const window = this.windowNo(dependsOn);
    window.depend(cell);
    cell.pendingWindow = dependsOn;
    return window;
  }

  /** Answers a message that changes nothing once what the cell's state depends on is written. */
  private answerAfterPending(cell: ActorCell, env: Envelope): void {
    if (!env.reply) return;
    const window = this.dependency(cell, env);
    if (window) window.reply(env.reply, undefined);
    else env.reply({ ok: true, value: undefined });
  }

  /** A step of the runtime's own (no reducer): reminder changes, journaled so they replay. */
  private runtimeStep(cell: ActorCell, now: number, ops: StoredReminderOp[]): void {
    const window = this.openWindow();
    const { entry, snapshot } = cell.journal(null, now, this.ctx.snapshotEvery, ops, undefined, true);
    window.add(cell, entry, snapshot);
    cell.pendingWindow = window.no;
  }

  /**
   * The window steps go into now. One that holds `maxWindowActors` actors is closed and the next
   * one opened, so a single script call (which Redis runs without interruption) stays bounded
   * however long the window before it took.
   */
  private openWindow(): ShardWindow {
    if (this.open && this.open.cells.size >= this.ctx.maxWindowActors) {
      this.closed.push(this.open);
      this.open = undefined;
    }
    return (this.open ??= new ShardWindow(this.nextNo++));
  }

  private windowNo(no: number): ShardWindow {
    if (this.open?.no === no) return this.open;
    if (this.inFlight?.no === no) return this.inFlight;
    const closed = this.closed.find((w) => w.no === no);
    if (closed) return closed;
    throw new Error(`shard ${this.shard}: window ${no} is neither open nor waiting nor in flight`);
  }

  /**
   * Sends the next window unless one is in flight (it goes when that one settles) or it still
   * waits for messages its steps sent within the shard (it goes once they are handled).
   */
  flush(): void {
    if (this.inFlight) return;
    if ((this.closed[0] ?? this.open)?.caused) return;
    let window = this.closed.shift();
    if (!window) {
      window = this.open;
      if (!window || window.empty) return;
      this.open = undefined;
    }
    this.inFlight = window;
    let written: Promise<void>;
    try {
      const appends = window.appends();
      written = window.poison
        ? Promise.reject(window.poison)
        : appends === undefined
          ? this.ctx.store.commit(this.shard, window.actorWrites())
          : this.ctx.store.commit(this.shard, window.actorWrites(), appends);
    } catch (err) {
      written = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    written.then(
      () => this.settled(window, undefined),
      (err: unknown) => this.settled(window, err instanceof Error ? err : new Error(String(err))),
    );
  }

  private settled(window: ShardWindow, error: Error | undefined): void {
    this.inFlight = undefined;
    if (error === undefined) {
      this.settledNo = window.no;
      // Reminders set here are due from now on (outbox entries at once): schedule them first.
      for (const cell of window.cells.keys()) cell.durableSeq = Math.max(cell.durableSeq, window.lastSeqOf(cell));
      window.reminderChanges((actorId, events) => this.ctx.remindersWritten(this.shard, actorId, events));
      window.release((from, effects, trace) => this.ctx.runEffects(from, effects, trace));
      for (const cell of window.cells.keys()) {
        if (cell.pendingWindow !== window.no) continue;
        cell.pendingWindow = 0;
        if (cell.status === 'stopping') {
          if (cell.idle) this.remove(cell);
          else cell.setStatus('active', this.ctx.log, 'a message arrived');
        } else if (cell.passivateRequested) this.passivate(cell, true);
        else if (cell.passivateWhenIdle) this.passivate(cell, false);
        this.offer(cell);
      }
    } else {
      this.failed(window, error);
    }
    this.flush();
  }

  /**
   * A window was not written: it and every one behind it (whose steps may build on it) fail
   * together. Their replies are `unavailable`, their effects are dropped, messages their steps
   * sent within the shard are withdrawn, and every cell whose state depended on them re-reads
   * its state from the store before its next message.
   */
  private failed(window: ShardWindow, error: Error): void {
    this.ctx.windowFailed(this.shard);
    const windows = [window, ...this.closed];
    if (this.open) windows.push(this.open);
    this.closed = [];
    this.open = undefined;
    this.settledNo = windows[windows.length - 1]!.no;
    const replies = windows.reduce((n, w) => n + w.replies, 0);
    this.ctx.log.error({ err: error, shard: this.shard, replies }, 'shard window failed; its actors re-read their state');
    const answer = runtimeError('unavailable', `store write failed: ${error.message}`);
    const touched = new Set<ActorCell>();
    for (const w of windows) {
      for (const cell of w.cells.keys()) touched.add(cell);
      w.fail(answer);
    }
    for (const cell of this.cells.values()) {
      if (cell.queue && cell.queue.some((env) => env.cause >= window.no)) {
        cell.queue = cell.queue.filter((env) => env.cause < window.no);
        if (cell.queue.length === 0) cell.queue = undefined;
      }
    }
    for (const cell of touched) {
      this.ctx.metrics.reject(cell.behavior.kind, 'unavailable');
      cell.needsRecovery = true;
      cell.pendingWindow = 0;
      if (cell.status === 'stopping') cell.setStatus('active', this.ctx.log, 'final snapshot failed');
      if (cell.passivateRequested) this.passivate(cell, true);
      // It holds nothing the store lacks (it must re-read its state): an idle one leaves now
      // rather than at the idle sweep, so a store outage does not pile up resident actors.
      else this.passivate(cell, false);
      this.offer(cell);
    }
  }

  /** Recovers the cells that asked for it this turn, with one read for all of them. */
  private recoverWaiting(): void {
    if (this.toRecover.length === 0) return;
    const cells = this.toRecover;
    this.toRecover = [];
    const started = performance.now();
    this.ctx.store.recoverMany(cells.map((c) => c.id)).then(
      (recovered) => this.recovered(cells, recovered, started),
      (err: unknown) => {
        for (const cell of cells) this.recoveryFailed(cell, err);
      },
    );
  }

  private recovered(cells: readonly ActorCell[], recovered: ReadonlyMap<string, Recovered | Error>, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    for (const cell of cells) {
      if (cell.status === 'evicted') continue;
      const read = recovered.get(cell.id);
      let wakeAt;
      try {
        if (read === undefined) throw new Error(`the store did not answer for ${cell.id}`);
        if (read instanceof Error) throw read;
        cell.restore(read);
        wakeAt = this.wakeAtAfterRecovery(cell);
      } catch (err) {
        cell.needsRecovery = true;
        this.recoveryFailed(cell, err);
        continue;
      }
      cell.recovering = false;
      cell.km.activationSeconds.observe(seconds);
      this.ctx.recovered(this.shard, cell);
      // A state written before wake-ups were reminders (or a wake-up lost with a failed window):
      // the wake message sets the reminder (a wake that comes early changes nothing else).
      if (wakeAt !== undefined && !cell.reminders.has(WAKE_REMINDER) && cell.behavior.wakeMessage !== undefined) {
        cell.enqueue(envelope(cell.behavior.wakeMessage, undefined, 0, 0, undefined, undefined, undefined, undefined));
      }
      if (cell.wantsTurn) this.offer(cell);
      else if (cell.passivateRequested) this.passivate(cell, true);
    }
  }

  /** The wake-up the recovered state asks for; one that cannot be computed is none (logged), not a failed recovery. */
  private wakeAtAfterRecovery(cell: ActorCell): number | undefined {
    try {
      return cell.behavior.nextWakeAt?.(cell.state);
    } catch (err) {
      this.ctx.log.error({ err, actor: cell.id }, 'the wake-up time of a recovered actor could not be computed; none is set');
      return undefined;
    }
  }

  /** Makes a message within the shard that cannot be handled now an outbox entry of the step that sent it. */
  private divertToOutbox(to: ActorCell, env: Envelope, holds: WindowHold | undefined = env.holds): boolean {
    const { sender, senderSeq } = env;
    if (!sender || senderSeq === undefined || !(holds instanceof ShardWindow)) return false;
    let k = 0;
    while (sender.reminders.has(outboxName(senderSeq, k))) k++;
    const entry = env.trace === undefined ? { to: to.id, msg: env.msg } : { to: to.id, msg: env.msg, trace: env.trace };
    const op = ['+', outboxName(senderSeq, k), this.ctx.clock(), entry] as const;
    if (!holds.amend(sender, senderSeq, op)) return false;
    // A later unsent window may hold a snapshot of the sender taken after the entry: it must list it too.
    for (const w of [...this.closed, this.open]) if (w && w !== holds && w.no > holds.no) w.amendSnapshot(sender, senderSeq, op);
    sender.applyReminders([op]);
    return true;
  }

  /** The store could not be read: the first waiting message is answered `unavailable`; the next one tries again. */
  private recoveryFailed(cell: ActorCell, err: unknown): void {
    cell.recovering = false;
    if (cell.status === 'evicted') return;
    this.ctx.log.error({ err, actor: cell.id }, 'actor recovery failed');
    const env = cell.queue?.shift();
    if (cell.queue?.length === 0) cell.queue = undefined;
    if (env) {
      // A message a step of this shard sent, whose window waits for it: that window must not be
      // written without its consequence (the sender would be acked, the consequence lost). The
      // message becomes an outbox entry of the step that sent it, delivered once the actor can be
      // read; failing that, the window fails.
      if (env.holds && !this.divertToOutbox(cell, env)) {
        env.holds.poison ??= new Error(`could not recover ${cell.id}, which a step of the window sent a message to`);
      } else if (env.sender && cell.queue) {
        // What the same sender sent after it follows it through the outbox, in order.
        const sender = env.sender;
        const rest = cell.queue.filter((e) => !(e.sender === sender && this.divertToOutbox(cell, e) && (this.handled(e), true)));
        cell.queue = rest.length > 0 ? rest : undefined;
      }
      this.handled(env);
      this.ctx.metrics.reject(cell.behavior.kind, 'unavailable');
      env.reply?.(runtimeError('unavailable', `could not recover actor ${cell.id}: ${(err as Error).message}`));
      // The runtime's own messages are not lost with the read: they come back a little later.
      if (env.msg instanceof ReminderDue || env.msg instanceof OutboxDelivered) this.ctx.retryLater(cell.id, env.msg);
    }
    if (cell.wantsTurn) this.offer(cell);
    else if (cell.passivateRequested) this.passivate(cell, true);
    // Nothing of it is in memory: with no message waiting it leaves now (a read of a random id
    // during a store outage must not stay until the idle sweep); the next message activates it.
    else this.passivate(cell, false);
  }

  private remove(cell: ActorCell): void {
    if (this.cells.get(cell.id) === cell) this.cells.delete(cell.id);
    cell.passivateRequested = false;
    this.ctx.passivated(cell);
  }
}
