/** Small helpers the scenarios share: per-scenario defaults, timed phases with a progress bar, cleanup, rounding. */
import type { Figure, ScenarioContext } from './scenario.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `ctx[flag]` when the user gave the flag (or the runner says nothing about it), else this scenario's default. */
export function given<K extends 'duration' | 'hubs' | 'rate' | 'nodes'>(ctx: ScenarioContext, flag: K, fallback: number): number {
  if (ctx.explicit === undefined || ctx.explicit.has(flag)) return ctx[flag];
  return fallback;
}

/** Runs `work` (a phase of about `seconds`) with a progress bar ticking each 250 ms. */
export async function timed<T>(ctx: ScenarioContext, label: string, seconds: number, work: Promise<T>): Promise<T> {
  const bar = ctx.progress(label, Math.max(1, Math.round(seconds * 4)));
  const t0 = performance.now();
  const timer = setInterval(() => bar.update(Math.min(Math.round(((performance.now() - t0) / 1000) * 4), Math.round(seconds * 4))), 250);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    bar.stop();
  }
}

/** Cleanups run last-in first-out; each one's failure is ignored (the scenario's own error matters). */
export class Cleanups {
  private readonly fns: (() => Promise<unknown> | unknown)[] = [];

  add(fn: () => Promise<unknown> | unknown): void {
    this.fns.push(fn);
  }

  /** `started` (a process being started), to be stopped by `stop` at cleanup if it started at all. */
  track<T>(started: Promise<T>, stop: (t: T) => Promise<unknown>): Promise<T> {
    this.add(async () => stop(await started));
    return started;
  }

  async run(): Promise<void> {
    while (this.fns.length > 0) {
      const fn = this.fns.pop()!;
      await Promise.resolve()
        .then(fn)
        .catch(() => {});
    }
  }
}

/** Rounds to `digits` decimals (NaN stays NaN). */
export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A figure with its baseline and the ratio value / baseline. */
export function versus(name: string, value: number, unit: string, baseline: { name: string; value: number } | undefined, extra: Partial<Figure> = {}): Figure {
  return {
    name,
    value: round(value),
    unit,
    ...(baseline ? { baseline: { name: baseline.name, value: round(baseline.value) }, ratio: round(value / baseline.value, 3) } : {}),
    ...extra,
  };
}

/** A target 'at least x' / 'at most x' and whether `value` met it. */
export function target(value: number, op: '≥' | '≤', limit: number, unit: string): Pick<Figure, 'target' | 'met'> {
  return { target: `${op} ${limit.toLocaleString('en-US')} ${unit}`, met: op === '≥' ? value >= limit : value <= limit };
}
