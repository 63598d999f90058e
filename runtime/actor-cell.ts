/** One resident actor (an entity cell of its shard): state, journal position, queue and lifecycle. */
import type { Behavior, PendingReminder } from './behavior.ts';
import type { Logger } from './logger.ts';
import type { KindMetrics } from './metrics.ts';
import type { JournalEntry, Recovered, Snapshot, StoredReminderOp } from './persistence-port.ts';
import type { Result } from './result.ts';
import { OUTBOX_PREFIX, parseOutboxKey } from './runtime-messages.ts';
import type { TraceCarrier } from './tracing.ts';

/**
 * Senders whose latest applied outbox key a cell remembers (the least recently heard forgotten
 * first). A sender delivers its entries one at a time in order, so its latest key is all the
 * duplicate check needs.
 */
export const INBOX_SENDERS = 1_024;

const NO_REMINDERS: ReadonlyMap<string, PendingReminder> = new Map();

/** A message on its way to an actor, with the caller's reply callback and deadline. */
export interface Envelope {
  readonly msg: unknown;
  /** Called exactly once for an `ask`; undefined for a `tell`. */
  readonly reply: ((result: Result<unknown>) => void) | undefined;
  /** Epoch ms after which the caller has given up (0 = never): the message is skipped. */
  readonly deadline: number;
  /** Times this message crashed the actor. */
  attempts: number;
  /**
   * The shard window holding the step that sent this message, when that step was not yet durable
   * (0: none). If that window fails, the message is withdrawn with the step that sent it.
   */
  readonly cause: number;
  /**
   * The unsent window that waits for this message to be handled (set when a step of the shard
   * sent it): the step it causes joins that window, so the sender's reply and the consequence are
   * written, and released, together.
   */
  holds: WindowHold | undefined;
  /**
   * The cell whose step sent this message within the shard, and that step's journal seq (set with
   * `holds`): if the message cannot be handled now, it becomes an outbox entry of that step.
   */
  readonly sender: ActorCell | undefined;
  readonly senderSeq: number | undefined;
  /** The trace the message belongs to (runtime/tracing.ts): set only while tracing is on, and then its step gets a span. */
  readonly trace: TraceCarrier | undefined;
}

/**
 * The one way an envelope is made: every envelope has the same keys, set in the same order, so
 * the mailbox sees a single object shape (one hidden class: property reads on the hot path stay
 * monomorphic, whether a message came from a caller, a step of the shard or the runtime itself).
 */
export function envelope(
  msg: unknown,
  reply: Envelope['reply'],
  deadline: number,
  cause: number,
  holds: WindowHold | undefined,
  sender: ActorCell | undefined,
  senderSeq: number | undefined,
  trace: TraceCarrier | undefined,
): Envelope {
  return { msg, reply, deadline, attempts: 0, cause, holds, sender, senderSeq, trace };
}

/** What a window counts of the messages it waits for. */
export interface WindowHold {
  caused: number;
  /** Set when one of those messages could not be handled (its actor could not be read): the window fails instead of being written. */
  poison?: Error;
}

/**
 * `active` handles messages; `stopping` has a final snapshot on its way and leaves the shard when
 * it is written, unless a message arrives first (then it is `active` again); `evicted` lost its
 * shard and answers nothing more.
 */
export type CellStatus = 'active' | 'stopping' | 'evicted';

/**
 * An actor of the shard: its own state and queue, one message at a time. The shard schedules it
 * and writes its steps; the cell keeps what is its own. Kept lean: one object per resident actor
 * plus its state (the queue array exists only while messages wait).
 */
export class ActorCell {
  private status_: CellStatus = 'active';
  /** Messages waiting for this actor, oldest first; undefined when none ever waited. */
  queue: Envelope[] | undefined;
  state: unknown;
  /** Highest journal seq handed to the shard (durable or on its way). */
  seq = 0;
  /** Highest journal seq known to be in the store (written by a window, or read at recovery). */
  durableSeq = 0;
  /** Pending outbox entries (`~out.` reminders) among `reminders`. */
  outboxPending = 0;
  /** Seq of the latest snapshot handed to the shard. */
  snapshotSeq = 0;
  sinceSnapshot = 0;
  /** Set at birth, after a crash and after a failed window: the state must be re-read before the next message. */
  needsRecovery = true;
  /** A recovery read is on its way. */
  recovering = false;
  /** In the shard's ready list. */
  ready = false;
  /** The latest shard window this actor's state depends on that is not settled yet (0: none). */
  pendingWindow = 0;
  /** A caller waits for this actor to passivate (handoff, shutdown): it does once it is idle. */
  passivateRequested = false;
  /** Its latest step asked to leave memory once idle (`Step.passivate`). */
  passivateWhenIdle = false;
  lastActive: number;
  /** Pending reminders by name, as durable as its journal; undefined when none. */
  private reminders_: Map<string, PendingReminder> | undefined;
  /** Per sender, the latest outbox key it applied (least recently heard first); undefined when none. */
  private inbox: Map<string, string> | undefined;

  constructor(
    readonly id: string,
    readonly behavior: Behavior<unknown, unknown>,
    readonly km: KindMetrics,
    now: number,
  ) {
    this.lastActive = now;
  }

  get status(): CellStatus {
    return this.status_;
  }

  /** The one place the lifecycle changes, so every transition is logged the same way. */
  setStatus(next: CellStatus, log: Logger, why: string): void {
    if (next === this.status_) return;
    log.debug({ actor: this.id, from: this.status_, to: next, why }, 'actor lifecycle');
    this.status_ = next;
  }

  get queued(): number {
    return this.queue?.length ?? 0;
  }

  enqueue(env: Envelope): void {
    (this.queue ??= []).push(env);
  }

  /** True when the shard should give it a turn: messages wait and nothing holds it back. */
  get wantsTurn(): boolean {
    return this.queued > 0 && !this.recovering && this.status_ !== 'evicted' && !(this.needsRecovery && this.pendingWindow !== 0);
  }

  /** True when it may leave memory losing nothing: no message waiting, nothing unwritten, not recovering. */
  get idle(): boolean {
    return this.queued === 0 && this.pendingWindow === 0 && !this.recovering;
  }

  /** Pending reminders by name (what reducers see as `ctx.reminders`). */
  get reminders(): ReadonlyMap<string, PendingReminder> {
    return this.reminders_ ?? NO_REMINDERS;
  }

  /** Applies a step's reminder changes, in order. */
  applyReminders(ops: readonly StoredReminderOp[]): void {
    for (const op of ops) {
      const outbox = op[1].startsWith(OUTBOX_PREFIX);
      if (op[0] === '+') {
        const map = (this.reminders_ ??= new Map());
        if (outbox && !map.has(op[1])) this.outboxPending++;
        map.set(op[1], { at: op[2], payload: op[3] });
      } else if (this.reminders_?.delete(op[1])) {
        if (outbox) this.outboxPending--;
        if (this.reminders_.size === 0) this.reminders_ = undefined;
      }
    }
  }

  /** True when an outbox entry of this actor to `actorId` waits: later messages to it must follow it through the outbox (in order). */
  hasOutboxTo(actorId: string): boolean {
    if (this.outboxPending === 0) return false;
    for (const [name, r] of this.reminders_!) {
      if (name.startsWith(OUTBOX_PREFIX) && (r.payload as { to?: unknown } | undefined)?.to === actorId) return true;
    }
    return false;
  }

  /** True when the message with outbox key `key` (or a later one of its sender) was applied already. */
  applied(key: string): boolean {
    const k = parseOutboxKey(key);
    const latest = k && this.inbox?.get(k.sender);
    const l = latest === undefined ? undefined : parseOutboxKey(latest);
    return k !== undefined && l !== undefined && (l.seq > k.seq || (l.seq === k.seq && l.k >= k.k));
  }

  /** Remembers that the message with outbox key `key` was applied. */
  received(key: string): void {
    const k = parseOutboxKey(key);
    if (!k) return;
    const inbox = (this.inbox ??= new Map());
    inbox.delete(k.sender);
    inbox.set(k.sender, key);
    if (inbox.size > INBOX_SENDERS) {
      const oldest = inbox.keys().next();
      if (!oldest.done) inbox.delete(oldest.value);
    }
  }

  /**
   * Journals a step: the entry (and, every `snapshotEvery` entries, a snapshot) for the shard's
   * window. `rem` (the step's reminder changes) are applied here; `from` is the outbox key of the
   * message the step applied; `sys` marks a runtime entry replay skips the reducer for.
   */
  journal(
    msg: unknown,
    at: number,
    snapshotEvery: number,
    rem?: readonly StoredReminderOp[],
    from?: string,
    sys?: boolean,
  ): { entry: JournalEntry; snapshot: Snapshot | undefined } {
    this.seq++;
    this.sinceSnapshot++;
    if (rem) this.applyReminders(rem);
    if (from !== undefined) this.received(from);
    // The common entry stays `{seq, at, msg}` (the ingest path writes millions of them).
    const entry: JournalEntry =
      (rem && rem.length > 0) || sys || from !== undefined
        ? { seq: this.seq, at, msg, rem: rem && rem.length > 0 ? rem : undefined, sys: sys ? 1 : undefined, from }
        : { seq: this.seq, at, msg };
    if (this.sinceSnapshot < snapshotEvery) return { entry, snapshot: undefined };
    return { entry, snapshot: this.finalSnapshot() };
  }

  /** A snapshot of the current state (with its reminders and inbox) for passivation. */
  finalSnapshot(): Snapshot {
    this.sinceSnapshot = 0;
    this.snapshotSeq = this.seq;
    const rem = this.reminders_ ? [...this.reminders_].map(([name, r]) => storedReminder(name, r)) : undefined;
    return {
      seq: this.seq,
      state: this.state,
      ...(rem ? { rem } : {}),
      ...(this.inbox ? { inbox: [...this.inbox.values()] } : {}),
    };
  }

  /**
   * State = snapshot + the journal after it, replayed through the reducer (each entry's reminder
   * changes applied after it, as on its first run). Throws if a replay throws.
   */
  restore(recovered: Recovered): void {
    const snap = recovered.snapshot;
    let state = snap ? snap.state : this.behavior.initial(this.id);
    let seq = snap?.seq ?? 0;
    this.reminders_ = undefined;
    this.outboxPending = 0;
    this.inbox = undefined;
    for (const key of snap?.inbox ?? []) this.received(key);
    if (snap?.rem) this.applyReminders(snap.rem.map(([name, at, payload]): StoredReminderOp => ['+', name, at, payload]));
    for (const e of recovered.events) {
      if (e.sys !== 1)
        state = this.behavior.receive(state, e.msg, { id: this.id, now: e.at, replaying: true, reminders: this.reminders }).state;
      if (e.rem) this.applyReminders(e.rem);
      if (e.from !== undefined) this.received(e.from);
      seq = e.seq;
    }
    this.state = state;
    this.seq = seq;
    this.durableSeq = seq;
    this.snapshotSeq = snap?.seq ?? 0;
    this.sinceSnapshot = recovered.events.length;
    this.needsRecovery = false;
  }
}

const storedReminder = (name: string, r: PendingReminder): readonly [string, number, unknown?] =>
  r.payload === undefined ? [name, r.at] : [name, r.at, r.payload];
