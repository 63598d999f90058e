/** The runner's side of the timers scenario's hub processes (timer-hub-worker.ts): a pool of them, started together. */
import { WorkerPool } from '../../harness/worker-pool.ts';
import type { TimerHubOps } from './timer-hub-worker.ts';

export type TimerHubPool = WorkerPool<TimerHubOps>;

export const TimerHubPool = {
  /** Forks `count` hub processes (at least one) and waits until each is ready. */
  start: (count: number): Promise<TimerHubPool> =>
    WorkerPool.start<TimerHubOps>('bench/scenarios/support/timer-hub-worker.ts', 'timer hub process', count),
};
