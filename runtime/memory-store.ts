/** The embedded default store: actor journals, snapshots and reminder indexes in process memory (not durable). */
import type {
  ActorWrite,
  IndexedReminder,
  JournalEntry,
  LogAppend,
  PersistencePort,
  Recovered,
  Snapshot,
  WriteBatch,
} from './persistence-port.ts';
import { indexedReminders, ReminderChanges } from './reminder-changes.ts';

interface StoredActor {
  /** The whole snapshot as JSON `{seq, state, rem?, inbox?}`. */
  snapshot?: { seq: number; json: string };
  /** Whole journal entries as JSON `{seq, at, msg, rem?, sys?, from?}`, oldest first. */
  events: { seq: number; json: string }[];
}

/**
 * Keeps state as JSON text, as a real store would, so that state that does not survive
 * serialisation fails here too. Each shard's reminder index (member `name@actorId` → due time)
 * follows the journal entries' reminder ops as the Redis store's does: applied with the window,
 * only when the whole window is written, the last op per member winning. The index is keyed by the
 * `shard` that `commit` is given (`write` uses shard 0). `failWith` lets tests simulate a store that is down.
 * Log appends are kept per log, the latest `maxLogLength` of each (as JSON, with the window).
 */
export class MemoryStore implements PersistencePort {
  readonly durable = false;
  private readonly actors = new Map<string, StoredActor>();
  /** Per shard: index member → due time (epoch ms). */
  private readonly reminderIndex = new Map<number, Map<string, number>>();
  /** When set, every `commit`, `recover` and `loadReminders` rejects with this error (tests: a store that is down). */
  failWith: Error | undefined;
  /** Count of `commit` calls, for tests that check batching. */
  writes = 0;
  /** Per log: its latest entries as JSON `{at, entry}`, oldest first. */
  private readonly logs = new Map<string, string[]>();

  /** @param maxLogLength entries kept per log (the latest). */
  constructor(private readonly maxLogLength = 200) {}

  async recover(actorId: string): Promise<Recovered> {
    if (this.failWith) throw this.failWith;
    return this.read(actorId);
  }

  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered>> {
    if (this.failWith) throw this.failWith;
    return new Map(actorIds.map((id) => [id, this.read(id)]));
  }

  /** One actor's write, as a window of its own in shard 0 (tests and tools). */
  write(actorId: string, batch: WriteBatch): Promise<void> {
    return this.commit(0, [{ actorId, batch }]);
  }

  async commit(shard: number, writes: readonly ActorWrite[], appends: readonly LogAppend[] = []): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.writes++;
    // All or nothing, as the Redis script: check every actor's position, encode, then apply.
    const expected = new Map<string, number>(); // an actor named twice continues its own earlier part
    const reminders = new ReminderChanges();
    const encoded = writes.map(({ actorId, batch }) => {
      const stored = this.actors.get(actorId);
      const last = expected.get(actorId) ?? stored?.events.at(-1)?.seq ?? stored?.snapshot?.seq ?? 0;
      const first = batch.events[0];
      if (first && first.seq !== last + 1) throw new Error(`journal gap for ${actorId}: expected seq ${last + 1}, got ${first.seq}`);
      const end = batch.events.at(-1);
      if (end) expected.set(actorId, end.seq);
      try {
        reminders.add(actorId, batch.events);
        return {
          actorId,
          events: batch.events.map((e) => ({ seq: e.seq, json: JSON.stringify(e) })),
          snapshot: batch.snapshot ? { seq: batch.snapshot.seq, json: JSON.stringify(batch.snapshot) } : undefined,
        };
      } catch (err) {
        throw new Error(`cannot encode the write of ${actorId}: ${(err as Error).message}`, { cause: err });
      }
    });
    const logEntries = appends.map((a) => ({ log: a.log, json: JSON.stringify({ at: a.at, entry: a.entry }) }));
    for (const { log, json } of logEntries) {
      let entries = this.logs.get(log);
      if (!entries) this.logs.set(log, (entries = []));
      entries.push(json);
      if (entries.length > this.maxLogLength) entries.shift();
    }
    for (const w of encoded) {
      let stored = this.actors.get(w.actorId);
      if (!stored) this.actors.set(w.actorId, (stored = { events: [] }));
      for (const e of w.events) stored.events.push(e);
      if (w.snapshot) {
        stored.snapshot = w.snapshot;
        const upTo = w.snapshot.seq;
        stored.events = stored.events.filter((e) => e.seq > upTo);
      }
    }
    if (reminders.size === 0) return;
    let index = this.reminderIndex.get(shard);
    if (!index) this.reminderIndex.set(shard, (index = new Map<string, number>()));
    for (const [member, at] of reminders.sets) index.set(member, at);
    for (const member of reminders.deletes) index.delete(member);
    if (index.size === 0) this.reminderIndex.delete(shard);
  }

  /** Every pending reminder of the shard's index, sorted by due time. */
  async loadReminders(shard: number): Promise<readonly IndexedReminder[]> {
    if (this.failWith) throw this.failWith;
    return indexedReminders(this.reminderIndex.get(shard) ?? []).reminders;
  }

  /** The entries kept in a log, oldest first (tests: what windows appended). */
  logEntries(log: string): { at: number; entry: unknown }[] {
    return (this.logs.get(log) ?? []).map((json) => JSON.parse(json) as { at: number; entry: unknown });
  }

  /** Number of journal entries kept for an actor (tests: trimming behind snapshots). */
  journalLength(actorId: string): number {
    return this.actors.get(actorId)?.events.length ?? 0;
  }

  async close(): Promise<void> {}

  private read(actorId: string): Recovered {
    const stored = this.actors.get(actorId);
    if (!stored) return { events: [] };
    const events = stored.events.map((e) => JSON.parse(e.json) as JournalEntry);
    return stored.snapshot ? { snapshot: JSON.parse(stored.snapshot.json) as Snapshot, events } : { events };
  }
}
