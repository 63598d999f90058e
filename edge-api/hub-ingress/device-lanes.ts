/** Per-device ordered work with retries: a device's reports are processed one at a time, in arrival order. */

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
  /** Processes one item; resolves a reason to retry it, or undefined when it is done. Must not reject. */
  readonly run: (item: T) => Promise<string | undefined>;
  /** The item kept failing for `giveUpAfterMs`; the lanes have stopped. */
  readonly onGiveUp: (item: T, reason: string) => void;
  /** Called before each retry (metrics, logs). */
  readonly onRetry?: (item: T, attempt: number, delayMs: number, reason: string) => void;
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
 * One FIFO lane per key. An item is retried in place, so a later item of the same key never
 * overtakes it (a device applies the highest seq, so an overtaken report would be dropped as
 * stale). Different keys proceed independently.
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
    void this.drain(key, fresh);
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
    while (!this.stopped && lane.length > 0) {
      if (!(await this.attempt(lane[0]!))) return;
      lane.shift();
    }
    if (this.lanes.get(key) === lane) this.lanes.delete(key);
  }

  /** Resolves true when the item is done, false when the lanes stopped or it was given up. */
  private async attempt(item: T): Promise<boolean> {
    const { retry, clock } = this.deps;
    const first = clock();
    for (let attempt = 1; ; attempt++) {
      const reason = await this.deps.run(item);
      if (this.stopped) return false;
      if (reason === undefined) return true;
      const left = retry.giveUpAfterMs - (clock() - first);
      if (left <= 0) {
        this.stop();
        this.deps.onGiveUp(item, reason);
        return false;
      }
      const ceiling = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(attempt - 1, 30));
      // Equal jitter: hubs that failed together do not retry in lockstep.
      const delay = Math.min(left, ceiling / 2 + (ceiling / 2) * (this.deps.random ?? Math.random)());
      this.deps.onRetry?.(item, attempt, delay, reason);
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
