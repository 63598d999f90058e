/** The embedded default store: actor journals and snapshots in process memory (not durable). */
import type { JournalEntry, PersistencePort, Recovered, WriteBatch } from './persistence-port.ts';

interface StoredActor {
  snapshot?: { seq: number; json: string };
  events: { seq: number; at: number; json: string }[];
}

/**
 * Keeps state as JSON text, as a real store would, so that state that does not survive
 * serialisation fails here too. `failWrites` lets tests simulate a store that is down.
 */
export class MemoryStore implements PersistencePort {
  readonly durable = false;
  private readonly actors = new Map<string, StoredActor>();
  /** When set, every `write` and `recover` rejects with this error (tests: a store that is down). */
  failWith: Error | undefined;
  /** Count of `write` calls, for tests that check batching. */
  writes = 0;

  async recover(actorId: string): Promise<Recovered> {
    if (this.failWith) throw this.failWith;
    const stored = this.actors.get(actorId);
    if (!stored) return { events: [] };
    const events: JournalEntry[] = stored.events.map((e) => ({ seq: e.seq, at: e.at, msg: JSON.parse(e.json) as unknown }));
    return stored.snapshot ? { snapshot: { seq: stored.snapshot.seq, state: JSON.parse(stored.snapshot.json) }, events } : { events };
  }

  async write(actorId: string, batch: WriteBatch): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.writes++;
    let stored = this.actors.get(actorId);
    if (!stored) {
      stored = { events: [] };
      this.actors.set(actorId, stored);
    }
    const last = stored.events.at(-1)?.seq ?? stored.snapshot?.seq ?? 0;
    const first = batch.events[0];
    if (first && first.seq !== last + 1) {
      throw new Error(`journal gap for ${actorId}: expected seq ${last + 1}, got ${first.seq}`);
    }
    for (const e of batch.events) stored.events.push({ seq: e.seq, at: e.at, json: JSON.stringify(e.msg) });
    if (batch.snapshot) {
      const { seq, state } = batch.snapshot;
      stored.snapshot = { seq, json: JSON.stringify(state) };
      stored.events = stored.events.filter((e) => e.seq > seq);
    }
  }

  /** Number of journal entries kept for an actor (tests: trimming behind snapshots). */
  journalLength(actorId: string): number {
    return this.actors.get(actorId)?.events.length ?? 0;
  }

  async close(): Promise<void> {}
}
