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
}

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
   * its state has unsnapshotted steps; not while a wake-up is armed). A later message activates
   * it again. Without this, every read of a random id would keep an actor until passivateAfterMs.
   */
  readonly passivate?: boolean;
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
  receive(state: S, msg: M, ctx: ActorContext): Step<S, R, E>;
  /**
   * Epoch ms at which the actor wants `wakeMessage` delivered (the earliest command expiry, a
   * rule's timer), or undefined for none. Asked after every step and after recovery; an actor
   * with a pending wake-up is not passivated.
   */
  nextWakeAt?(state: S): number | undefined;
  /** The message delivered at `nextWakeAt`; the reducer reads the time from `ctx.now`. */
  readonly wakeMessage?: M;
}
