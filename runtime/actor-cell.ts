/** One resident actor (an entity cell of its shard): state, journal position, queue and lifecycle. */
import type { Behavior } from './behavior.ts';
import type { Logger } from './logger.ts';
import type { KindMetrics } from './metrics.ts';
import type { JournalEntry, Recovered, Snapshot } from './persistence-port.ts';
import type { Result } from './result.ts';

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
}

/** What a window counts of the messages it waits for. */
export interface WindowHold {
  caused: number;
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
  /** Epoch ms of the armed wake-up, if any. */
  wakeAt: number | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;

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

  /** Journals a step: the entry (and, every `snapshotEvery` entries, a snapshot) for the shard's window. */
  journal(msg: unknown, at: number, snapshotEvery: number): { entry: JournalEntry; snapshot: Snapshot | undefined } {
    this.seq++;
    this.sinceSnapshot++;
    const entry = { seq: this.seq, at, msg };
    if (this.sinceSnapshot < snapshotEvery) return { entry, snapshot: undefined };
    this.sinceSnapshot = 0;
    this.snapshotSeq = this.seq;
    return { entry, snapshot: { seq: this.seq, state: this.state } };
  }

  /** A snapshot of the current state for passivation. */
  finalSnapshot(): Snapshot {
    this.sinceSnapshot = 0;
    this.snapshotSeq = this.seq;
    return { seq: this.seq, state: this.state };
  }

  /** State = snapshot + the journal after it, replayed through the reducer. Throws if a replay throws. */
  restore(recovered: Recovered): void {
    let state = recovered.snapshot ? recovered.snapshot.state : this.behavior.initial(this.id);
    let seq = recovered.snapshot?.seq ?? 0;
    for (const e of recovered.events) {
      state = this.behavior.receive(state, e.msg, { id: this.id, now: e.at, replaying: true }).state;
      seq = e.seq;
    }
    this.state = state;
    this.seq = seq;
    this.snapshotSeq = recovered.snapshot?.seq ?? 0;
    this.sinceSnapshot = recovered.events.length;
    this.needsRecovery = false;
  }

  /** Arms the wake-up timer for `at` (undefined: none); one timer per actor, replaced only on change. */
  arm(at: number | undefined, now: number, wake: (cell: ActorCell) => void): void {
    if (at === this.wakeAt) return;
    this.disarm();
    if (at === undefined) return;
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAt = undefined;
        wake(this);
      },
      Math.max(0, Math.min(at - now, 2_147_483_647)),
    );
    this.wakeTimer.unref();
  }

  disarm(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = undefined;
  }
}
