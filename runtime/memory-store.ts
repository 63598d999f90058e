/** The embedded default store: actor journals and snapshots in process memory (not durable). */
import type { ActorWrite, JournalEntry, PersistencePort, Recovered, WriteBatch } from './persistence-port.ts';

interface StoredActor {
  snapshot?: { seq: number; json: string };
  events: { seq: number; at: number; json: string }[];
}

/**
 * Keeps state as JSON text, as a real store would, so that state that does not survive
 * serialisation fails here too. `failWith` lets tests simulate a store that is down.
 */
export class MemoryStore implements PersistencePort {
  readonly durable = false;
  private readonly actors = new Map<string, StoredActor>();
  /** When set, every `commit` and `recover` rejects with this error (tests: a store that is down). */
  failWith: Error | undefined;
  /** Count of `commit` calls, for tests that check batching. */
  writes = 0;

  async recover(actorId: string): Promise<Recovered> {
    if (this.failWith) throw this.failWith;
    return this.read(actorId);
  }

  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered>> {
    if (this.failWith) throw this.failWith;
    return new Map(actorIds.map((id) => [id, this.read(id)]));
  }

  /** One actor's write, as a window of its own (tests and tools). */
  write(actorId: string, batch: WriteBatch): Promise<void> {
    return this.commit(0, [{ actorId, batch }]);
  }

  async commit(_shard: number, writes: readonly ActorWrite[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.writes++;
    // All or nothing, as the Redis script: check every actor's position, encode, then apply.
    const expected = new Map<string, number>(); // an actor named twice continues its own earlier part
    const encoded = writes.map(({ actorId, batch }) => {
      const stored = this.actors.get(actorId);
      const last = expected.get(actorId) ?? stored?.events.at(-1)?.seq ?? stored?.snapshot?.seq ?? 0;
      const first = batch.events[0];
      if (first && first.seq !== last + 1) throw new Error(`journal gap for ${actorId}: expected seq ${last + 1}, got ${first.seq}`);
      const end = batch.events.at(-1);
      if (end) expected.set(actorId, end.seq);
      return {
        actorId,
        events: batch.events.map((e) => ({ seq: e.seq, at: e.at, json: JSON.stringify(e.msg) })),
        snapshot: batch.snapshot ? { seq: batch.snapshot.seq, json: JSON.stringify(batch.snapshot.state) } : undefined,
      };
    });
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
  }

  /** Number of journal entries kept for an actor (tests: trimming behind snapshots). */
  journalLength(actorId: string): number {
    return this.actors.get(actorId)?.events.length ?? 0;
  }

  async close(): Promise<void> {}

  private read(actorId: string): Recovered {
    const stored = this.actors.get(actorId);
    if (!stored) return { events: [] };
    const events: JournalEntry[] = stored.events.map((e) => ({ seq: e.seq, at: e.at, msg: JSON.parse(e.json) as unknown }));
    return stored.snapshot ? { snapshot: { seq: stored.snapshot.seq, state: JSON.parse(stored.snapshot.json) }, events } : { events };
  }
}
