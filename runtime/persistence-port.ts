/** The persistence port: where actors keep their journal and snapshots (memory or Redis). */

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
 * The part of one window that belongs to one actor. Entries are consecutive and follow the last
 * written one. A snapshot, when present, covers every entry up to its `seq` (including those in
 * this write); the store may then trim the journal up to it.
 */
export interface WriteBatch {
  readonly events: readonly JournalEntry[];
  readonly snapshot?: Snapshot;
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
  commit(shard: number, writes: readonly ActorWrite[]): Promise<void>;
  close(): Promise<void>;
}
