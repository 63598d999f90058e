/** Per-actor write queue: at most one store write in flight, later entries batched behind it. */
import type { JournalEntry, PersistencePort, Snapshot } from './persistence-port.ts';

/** One step waiting to become durable. Steps without entry or snapshot are ordering barriers. */
export interface PendingWrite {
  readonly entry?: JournalEntry;
  readonly snapshot?: Snapshot;
  /** Runs once this and every earlier pending write are durable. */
  readonly done: () => void;
  /** Runs when the store failed this write (or an earlier one): nothing here is durable. */
  readonly fail: (error: Error) => void;
}

/**
 * Keeps an actor's writes in order without awaiting each one: while a write is in flight, new
 * steps queue and go out together in the next write. A failed write fails everything queued
 * behind it, so the store never sees a gap and no caller is told a lost write succeeded.
 */
export class JournalWriter {
  private queue: PendingWrite[] = [];
  private inFlight = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly actorId: string,
    private readonly store: PersistencePort,
    private readonly onFailure: (error: Error) => void,
  ) {}

  /** True when nothing is queued or being written. */
  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  push(pending: PendingWrite): void {
    if (this.idle && !pending.entry && !pending.snapshot) {
      pending.done();
      return;
    }
    this.queue.push(pending);
    this.flush();
  }

  /** Resolves once everything pushed so far has been written or failed. */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private flush(): void {
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const events: JournalEntry[] = [];
    let snapshot: Snapshot | undefined;
    for (const p of batch) {
      if (p.entry) events.push(p.entry);
      if (p.snapshot) snapshot = p.snapshot;
    }
    if (events.length === 0 && !snapshot) {
      for (const p of batch) p.done();
      this.settle();
      return;
    }
    this.inFlight = true;
    this.store.write(this.actorId, snapshot ? { events, snapshot } : { events }).then(
      () => {
        this.inFlight = false;
        for (const p of batch) p.done();
        this.flush();
        this.settle();
      },
      (err: unknown) => {
        this.inFlight = false;
        const error = err instanceof Error ? err : new Error(String(err));
        const failed = batch.concat(this.queue);
        this.queue = [];
        for (const p of failed) p.fail(error);
        this.onFailure(error);
        this.settle();
      },
    );
  }

  private settle(): void {
    if (!this.idle || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
