/** Per-device ordered work with retries: a device's queued reports go out together, one batch at a time, in order. */

/** Exponential backoff for transient actor failures; all in milliseconds. */
export interface RetryPolicy {
  /** First delay. */
  readonly baseMs: number;
  /** Largest delay. */
  readonly maxMs: number;
  /** Time since an item's first attempt after which it is given up. */
  readonly giveUpAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { baseMs: 10, maxMs: 1_000, giveUpAfterMs: 30_000 };

export interface DeviceLanesDeps<T> {
  /** Processes a batch (consecutive items of one lane); resolves a reason to retry it, or undefined when done. Must not reject. */
  readonly run: (items: readonly T[]) => Promise<string | undefined>;
  /** The batch kept failing for `giveUpAfterMs`; the lanes have stopped. */
  readonly onGiveUp: (items: readonly T[], reason: string) => void;
  /** Called before each retry (metrics, logs). */
  readonly onRetry?: (items: readonly T[], attempt: number, delayMs: number, reason: string) => void;
  /** Most items in one batch. */
  readonly maxBatch?: number;
  readonly retry: RetryPolicy;
  /** Epoch ms. */
  readonly clock: () => number;
  /** Jitter source in [0, 1). */
  readonly random?: () => number;
}

interface Sleeper {
  readonly timer: NodeJS.Timeout;
  readonly wake: () => void;
}

/**
 * One FIFO lane per key. Whatever queued while the lane's previous batch was in flight goes out
 * as the next batch (one actor message for many reports). A batch is retried in place, so a later
 * item of the same key never overtakes it (a device applies the highest seq, so an overtaken
 * report would be dropped as stale). Different keys proceed independently.
 */
export class DeviceLanes<T> {
  private readonly lanes = new Map<string, T[]>();
  private readonly sleepers = new Set<Sleeper>();
  private stopped = false;

  constructor(private readonly deps: DeviceLanesDeps<T>) {}

  /** Items queued or in progress, over all lanes. */
  get size(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.length;
    return n;
  }

  push(key: string, item: T): void {
    if (this.stopped) return;
    const lane = this.lanes.get(key);
    if (lane) {
      lane.push(item);
      return;
    }
    const fresh = [item];
    this.lanes.set(key, fresh);
    // Start after the current batch has been pushed, so the whole batch of this device goes in one message.
    queueMicrotask(() => void this.drain(key, fresh));
  }

  /** Stops every lane: no new attempts, pending backoff waits end at once, queued items are dropped. */
  stop(): void {
    this.stopped = true;
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.sleepers.clear();
    this.lanes.clear();
  }

  private async drain(key: string, lane: T[]): Promise<void> {
    const max = this.deps.maxBatch ?? 500;
    while (!this.stopped && lane.length > 0) {
      const batch = lane.slice(0, max);
      if (!(await this.attempt(batch))) return;
      lane.splice(0, batch.length);
    }
    if (this.lanes.get(key) === lane) this.lanes.delete(key);
  }

  /** Resolves true when the batch is done, false when the lanes stopped or it was given up. */
  private async attempt(items: readonly T[]): Promise<boolean> {
    const { retry, clock } = this.deps;
    const first = clock();
    for (let attempt = 1; ; attempt++) {
      const reason = await this.deps.run(items);
      if (this.stopped) return false;
      if (reason === undefined) return true;
      const left = retry.giveUpAfterMs - (clock() - first);
      if (left <= 0) {
        this.stop();
        this.deps.onGiveUp(items, reason);
        return false;
      }
      const ceiling = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(attempt - 1, 30));
      // Equal jitter: hubs that failed together do not retry in lockstep.
      const delay = Math.min(left, ceiling / 2 + (ceiling / 2) * (this.deps.random ?? Math.random)());
      this.deps.onRetry?.(items, attempt, delay, reason);
      await this.sleep(delay);
      if (this.stopped) return false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.sleepers.add(sleeper);
    });
  }
}
