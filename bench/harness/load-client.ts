/** The runner's side of the load processes (load-worker.ts): a pool of them, started together. */
import type { LoadOps } from './load-protocol.ts';
import { WorkerPool } from './worker-pool.ts';

export type LoadPool = WorkerPool<LoadOps>;

export const LoadPool = {
  /** Forks `count` load processes (at least one) and waits until each is ready. */
  start: (count: number): Promise<LoadPool> => WorkerPool.start<LoadOps>('bench/harness/load-worker.ts', 'load worker', count),
};
