/** The contract between the actor host and domain logic: a pure reducer per actor kind. */

/** What the host tells a reducer about the message it is handling. */
export interface ActorContext {
  /** The actor id, e.g. `device:h1:d1`. */
  readonly id: string;
  /**
   * Wall-clock time of the message in epoch milliseconds. The host stamps it once and journals it
   * with the message, so a replay during recovery sees the same `now` as the first run.
   */
  readonly now: number;
  /** True while the host is replaying the journal: the step's reply and effects are discarded. */
  readonly replaying: boolean;
  /**
   * The actor's pending reminders by name, as of this message (durable with the actor's journal,
   * so a replay sees what the first run saw). Names starting with `~` are the runtime's own. The
   * host always sets it; a test calling a reducer directly may leave it out (no reminders).
   */
  readonly reminders?: ReadonlyMap<string, PendingReminder>;
}

/** A reminder an actor has set and that has not fired or been cancelled yet. */
export interface PendingReminder {
  /** Epoch ms it is due. */
  readonly at: number;
  /** What the step that set it gave (plain JSON), or undefined. */
  readonly payload: unknown;
}

/**
 * A change to the actor's reminders, part of a step: written atomically with the step's journal
 * entry (the same fenced script call), so a reminder exists exactly when the step that set it is
 * durable. `set` replaces a pending reminder of the same name. Names: 1–200 characters of
 * `[A-Za-z0-9_.:-]` (the runtime's own start with `~`); payloads: plain JSON, small.
 */
export type ReminderOp =
  | { readonly op: 'set'; readonly name: string; readonly at: number; readonly payload?: unknown }
  | { readonly op: 'cancel'; readonly name: string };

/**
 * The message a due reminder delivers to its actor, once per `set`: the step that handles it
 * deletes the reminder atomically with its own journal entry (that step is always journaled; it
 * may set the same name again, e.g. for the next occurrence of a schedule). Never sent by anyone
 * but the runtime: a message of this type arriving from outside is refused.
 */
export interface ReminderFired {
  readonly type: typeof REMINDER_FIRED;
  readonly name: string;
  readonly payload: unknown;
  /** Epoch ms it was due. */
  readonly dueAt: number;
  /** ctx.now − dueAt, ≥ 0: how late it fires (a node down or a takeover makes it late). */
  readonly lateMs: number;
}

export const REMINDER_FIRED = 'reminder';

/** The pattern reminder names of behaviours follow (the runtime's own add a leading `~`). */
export const REMINDER_NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/** The outcome of one message. */
export interface Step<S, R = unknown, E = unknown> {
  /** The next state. Reducers never mutate the state they were given. */
  readonly state: S;
  /** The answer to an `ask` (ignored for `tell`). Released only once the step is durable. */
  readonly reply?: R;
  /** Side effects for the host's effect sink, run in order once the step is durable. */
  readonly effects?: readonly E[];
  /**
   * True when the message changed the state and must be journaled. A step that is not journaled
   * must leave the state as it was (or change only what can be recomputed).
   */
  readonly journal?: boolean;
  /**
   * True when the actor has nothing worth keeping in memory after this step (e.g. it answered a
   * read with `not_found` and was never written): it leaves as soon as it is idle and the window
   * this step depends on is written, as the idle sweep would make it leave (a final snapshot if
   * its state has unsnapshotted steps; its reminders stay pending in the store). A later message activates
   * it again. Without this, every read of a random id would keep an actor until passivateAfterMs.
   */
  readonly passivate?: boolean;
  /** Reminders this step sets or cancels, applied in order. A step with any is journaled. */
  readonly reminders?: readonly ReminderOp[];
}

/**
 * Behaviour of one kind of actor. `receive` must be pure and deterministic given
 * (state, msg, ctx.now): recovery replays journaled messages through it.
 */
export interface Behavior<S, M, R = unknown, E = unknown> {
  /** Actor kind, the prefix of its ids (`device`, `home`, `hub`); a label in metrics and logs. */
  readonly kind: string;
  /** The state of an actor that has never been written. */
  initial(id: string): S;
  /** Handles `msg`. A behaviour that sets reminders has `ReminderFired` among its messages `M`. */
  receive(state: S, msg: M, ctx: ActorContext): Step<S, R, E>;
  /**
   * Epoch ms at which the actor wants `wakeMessage` delivered (the earliest command expiry), or
   * undefined for none. Asked after every step that changed the state; the runtime keeps it as a
   * durable reminder named `~wake` (so it survives passivation, restarts and handoffs).
   */
  nextWakeAt?(state: S): number | undefined;
  /** The message delivered at `nextWakeAt`; the reducer reads the time from `ctx.now`. */
  readonly wakeMessage?: M;
}
