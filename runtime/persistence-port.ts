/** The persistence port: where actors keep their journal and snapshots (memory or Redis). */

/**
 * A reminder change as journaled: `['+', name, at, payload?]` sets (or replaces), `['-', name]`
 * deletes (cancelled, fired, or an outbox entry delivered).
 */
export type StoredReminderOp = readonly ['+', string, number, unknown?] | readonly ['-', string];

/** A pending reminder as snapshotted: `[name, at, payload?]`. */
export type StoredReminder = readonly [string, number, unknown?];

/** One journaled message: the host replays `msg` through the reducer with `now = at`. */
export interface JournalEntry {
  /** Per-actor sequence number, 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** Epoch ms the message was first handled at. */
  readonly at: number;
  readonly msg: unknown;
  /** Reminder changes of the step, in order (absent: none). The store mirrors them in its per-shard index. */
  readonly rem?: readonly StoredReminderOp[] | undefined;
  /** Set on the runtime's own entries (an outbox entry delivered): replay applies `rem` without the reducer. */
  readonly sys?: 1 | undefined;
  /** The outbox key (`<sender>#<seq>.<k>`) of the message this step applied, for the receiver's duplicate check. */
  readonly from?: string | undefined;
}

/** The actor's whole state as of journal sequence `seq`. */
export interface Snapshot {
  readonly seq: number;
  readonly state: unknown;
  /** Pending reminders as of `seq` (absent: none). */
  readonly rem?: readonly StoredReminder[];
  /** The latest outbox key applied per sender, least recently heard first (absent: none). */
  readonly inbox?: readonly string[];
}

/** A pending reminder in a shard's index: due `at` (epoch ms) for `actorId`'s reminder `name`. */
export interface IndexedReminder {
  readonly actorId: string;
  readonly name: string;
  readonly at: number;
}

/** What recovery needs: the latest snapshot (if any) and every journal entry after it, in order. */
export interface Recovered {
  readonly snapshot?: Snapshot;
  readonly events: readonly JournalEntry[];
}

/**
 * The part of one window that belongs to one actor. Entries are consecutive and follow the last
 * written one. A snapshot, when present, covers every entry up to its `seq` (including those in
 * this write); the store may then trim the journal up to it.
 */
export interface WriteBatch {
  readonly events: readonly JournalEntry[];
  readonly snapshot?: Snapshot;
}

/**
 * An entry a step appends to a capped log (apps' event history), written with the step's window:
 * a window that is not written appends nothing. `log` names the log (the store keys it under the
 * window's shard); `at` is the step's time (epoch ms); `entry` is JSON-encodable.
 */
export interface LogAppend {
  readonly log: string;
  readonly at: number;
  readonly entry: unknown;
}

/** One actor's share of a shard window. */
export interface ActorWrite {
  readonly actorId: string;
  readonly batch: WriteBatch;
}

/**
 * A store for actor state. The host writes a shard's steps in windows: `commit` writes one
 * window of one shard **atomically** — every actor's write lands, or none does (a causal chain
 * report → rule → command shares a window, so a crash never keeps half of it). The host issues at
 * most one `commit` per shard at a time, so a failed window never leaves a gap; windows of
 * different shards may be in flight together. `commit` resolves only once the window is durable
 * (as durable as the store is).
 */
export interface PersistencePort {
  /** True when acknowledged writes survive a crash of this process. */
  readonly durable: boolean;
  /**
   * The shard of an actor, for a store that keys state by shard (Redis: one hash tag and one fence
   * per shard). The host's shards must be the store's: it uses this one unless given its own.
   */
  readonly shardOf?: (actorId: string) => number;
  recover(actorId: string): Promise<Recovered>;
  /**
   * Recovers many actors with one read (one round trip to a remote store). An actor whose own
   * state could not be read maps to its error; the promise rejects only when nothing was read.
   */
  recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered | Error>>;
  /**
   * Writes the window. The reminder changes of its entries (`JournalEntry.rem`) are applied to the
   * shard's reminder index in the same atomic call: per actor and name the last change wins.
   * `appends` go to their logs in the same atomic call, in order (absent: none).
   */
  commit(shard: number, writes: readonly ActorWrite[], appends?: readonly LogAppend[]): Promise<void>;
  /**
   * Every pending reminder of a shard, from its index (called by the shard's new owner once it
   * holds the lease, before its reminders can fire there). A store without it keeps reminders
   * only in the journals: they fire when their actor is next activated (test stores).
   */
  loadReminders?(shard: number): Promise<readonly IndexedReminder[]>;
  close(): Promise<void>;
}
