/** Small helpers the scenarios share: per-scenario defaults, timed phases with a progress bar, cleanup, figures and their rounding. */
import type { Figure, ScenarioContext } from './scenario.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `ctx[flag]` when the user gave the flag (or the runner says nothing about it), else this scenario's default. */
export function given<K extends 'duration' | 'hubs' | 'rate' | 'nodes'>(ctx: ScenarioContext, flag: K, fallback: number): number {
  if (ctx.explicit === undefined || ctx.explicit.has(flag)) return ctx[flag];
  return fallback;
}

/**
 * The measured seconds of a scenario that warms up first: `ctx.duration`, at most `smoke.seconds` in
 * smoke runs; and the warm-up before them: duration ÷ `warmup.divisor` clamped to [`warmup.min`,
 * `warmup.max`] s and rounded to 0.1 s, `smoke.warmup` in smoke runs.
 */
export function warmedPhases(
  ctx: ScenarioContext,
  smoke: { seconds: number; warmup: number },
  warmup: { divisor: number; min: number; max: number },
): { seconds: number; warmupSeconds: number } {
  if (ctx.smoke) return { seconds: Math.min(ctx.duration, smoke.seconds), warmupSeconds: smoke.warmup };
  return {
    seconds: ctx.duration,
    warmupSeconds: Math.round(Math.min(warmup.max, Math.max(warmup.min, ctx.duration / warmup.divisor)) * 10) / 10,
  };
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
  private readonly fns: (() => unknown)[] = [];

  add(fn: () => unknown): void {
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

/**
 * Rounds to `digits` decimals; without `digits`, to what reads well in a table: whole numbers from
 * 100, two decimals from 1, three significant digits below (NaN and infinities stay).
 */
export function round(x: number, digits?: number): number {
  if (!Number.isFinite(x)) return x;
  if (digits !== undefined) return Math.round(x * 10 ** digits) / 10 ** digits;
  const abs = Math.abs(x);
  if (abs >= 100) return Math.round(x);
  if (abs >= 1) return Math.round(x * 100) / 100;
  return Number(x.toPrecision(3));
}

/** A count or rate with thousands separators, for log lines. */
export const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

export interface FigureSpec {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same quantity measured in the same run: the figure gets the ratio value / baseline. */
  readonly baseline?: { readonly name: string; readonly value: number } | undefined;
  readonly target?: { readonly text: string; readonly met: (value: number, ratio: number | undefined) => boolean };
}

/** A figure, rounded, with its baseline, the ratio to it, and whether it met its target. */
export function figure(spec: FigureSpec): Figure {
  const ratio = spec.baseline && spec.baseline.value !== 0 ? Number((spec.value / spec.baseline.value).toPrecision(3)) : undefined;
  return {
    name: spec.name,
    value: round(spec.value),
    unit: spec.unit,
    ...(spec.baseline ? { baseline: { name: spec.baseline.name, value: round(spec.baseline.value) } } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(spec.target ? { target: spec.target.text, met: spec.target.met(spec.value, ratio) } : {}),
  };
}

/** `figure` with its baseline positional, and `extra` (e.g. a `target`) on top. */
export function versus(
  name: string,
  value: number,
  unit: string,
  baseline: { name: string; value: number } | undefined,
  extra: Partial<Figure> = {},
): Figure {
  return { ...figure({ name, value, unit, baseline }), ...extra };
}

/** A target 'at least x' / 'at most x' and whether `value` met it. */
export function target(value: number, op: '≥' | '≤', limit: number, unit: string): Pick<Figure, 'target' | 'met'> {
  return { target: `${op} ${limit.toLocaleString('en-US')} ${unit}`, met: op === '≥' ? value >= limit : value <= limit };
}
