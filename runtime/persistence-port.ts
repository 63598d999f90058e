/** The persistence port: where actors keep their journal and snapshots (memory now, Redis next). */

/** One journaled message: the host replays `msg` through the reducer with `now = at`. */
export interface JournalEntry {
  /** Per-actor sequence number, 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** Epoch ms the message was first handled at. */
  readonly at: number;
  readonly msg: unknown;
}

/** The actor's whole state as of journal sequence `seq`. */
export interface Snapshot {
  readonly seq: number;
  readonly state: unknown;
}

/** What recovery needs: the latest snapshot (if any) and every journal entry after it, in order. */
export interface Recovered {
  readonly snapshot?: Snapshot;
  readonly events: readonly JournalEntry[];
}

/**
 * One write for one actor. Entries are consecutive and follow the last written one. A snapshot,
 * when present, covers every entry up to its `seq` (including those in this write); the store may
 * then trim the journal up to it.
 */
export interface WriteBatch {
  readonly events: readonly JournalEntry[];
  readonly snapshot?: Snapshot;
}

/**
 * A store for actor state. Implementations must keep each actor's writes in the order they
 * are issued, and resolve `write` only once the batch is durable (as durable as the store is).
 * The host issues at most one `write` per actor at a time, so a failed write never leaves a gap.
 */
export interface PersistencePort {
  /** True when acknowledged writes survive a crash of this process. */
  readonly durable: boolean;
  recover(actorId: string): Promise<Recovered>;
  write(actorId: string, batch: WriteBatch): Promise<void>;
  close(): Promise<void>;
}
