/** Memory sampling for the worker processes (started with `--expose-gc`). */

export interface MemorySample {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

const gc = (): void => {
  const f = (globalThis as { gc?: () => void }).gc;
  if (!f) throw new Error('global.gc is missing: start the worker with --expose-gc');
  f();
};

/** Full GCs with turns of the event loop between them, so finalisers and weak callbacks settle. */
export async function settleHeap(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function sampleMemory(): Promise<MemorySample> {
  await settleHeap();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

/** Bytes per item between two samples. */
export function perItem(before: MemorySample, after: MemorySample, n: number): { rss: number; heap: number } {
  return { rss: (after.rss - before.rss) / n, heap: (after.heapUsed - before.heapUsed) / n };
}

/**
 * Runs `fn(i)` for i in [from, to) with at most `concurrency` in flight; `onDone` after each.
 */
export async function forEachBounded(
  from: number,
  to: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
  onDone?: (done: number) => void,
): Promise<void> {
  let next = from;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      await fn(i);
      done++;
      onDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, to - from)) }, lane));
}
