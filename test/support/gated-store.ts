/** A MemoryStore whose writes can be held at a gate or made to fail, per actor, for tests of durability and retries. */
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { ActorWrite, PersistencePort, Recovered, WriteBatch } from '../../runtime/persistence-port.ts';

type ActorFilter = (actorId: string) => boolean;

/**
 * `hold(filter)` makes windows with a matching actor wait until `release()`; `fail(filter)` makes
 * windows with a matching actor, and its recoveries, reject until `heal()`. Everything else goes
 * straight to the memory store.
 */
export class GatedStore implements PersistencePort {
  readonly durable = false;
  readonly inner = new MemoryStore();
  /** Writes waiting at the gate. */
  waiting = 0;
  /** Writes and recoveries rejected by `fail`. */
  failures = 0;
  /** Milliseconds every write takes (a store with latency). */
  delayMs = 0;
  private holdFilter: ActorFilter | undefined;
  private failFilter: ActorFilter | undefined;
  private opened: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  hold(filter: ActorFilter = () => true): void {
    this.holdFilter = filter;
    this.opened = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.holdFilter = undefined;
    this.open();
  }

  fail(filter: ActorFilter): void {
    this.failFilter = filter;
  }

  heal(): void {
    this.failFilter = undefined;
  }

  async recover(actorId: string): Promise<Recovered> {
    this.check(actorId);
    return this.inner.recover(actorId);
  }

  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered>> {
    for (const id of actorIds) this.check(id);
    return this.inner.recoverMany(actorIds);
  }

  write(actorId: string, batch: WriteBatch): Promise<void> {
    return this.commit(0, [{ actorId, batch }]);
  }

  async commit(shard: number, writes: readonly ActorWrite[]): Promise<void> {
    if (writes.some((w) => this.holdFilter?.(w.actorId))) {
      this.waiting++;
      await this.opened;
      this.waiting--;
    }
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    for (const w of writes) this.check(w.actorId);
    return this.inner.commit(shard, writes);
  }

  loadReminders(shard: number): ReturnType<MemoryStore['loadReminders']> {
    return this.inner.loadReminders(shard);
  }

  async close(): Promise<void> {
    this.release();
  }

  private check(actorId: string): void {
    if (!this.failFilter?.(actorId)) return;
    this.failures++;
    throw new Error(`store down for ${actorId} (test)`);
  }
}
