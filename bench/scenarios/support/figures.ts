/** Small helpers to build the contract's figures: a value next to its same-run baseline, the ratio, the target. */
import type { Figure } from '../../harness/scenario.ts';

export interface FigureSpec {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: { readonly name: string; readonly value: number };
  readonly target?: { readonly text: string; readonly met: (value: number, ratio: number | undefined) => boolean };
}

/** Rounds to 3 significant digits past the integer part (keeps small ms values readable). */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const abs = Math.abs(x);
  if (abs >= 100) return Math.round(x);
  if (abs >= 1) return Math.round(x * 100) / 100;
  return Number(x.toPrecision(3));
}

export function figure(spec: FigureSpec): Figure {
  const value = round(spec.value);
  const baseline = spec.baseline ? { name: spec.baseline.name, value: round(spec.baseline.value) } : undefined;
  const ratio = spec.baseline && spec.baseline.value !== 0 ? Number((spec.value / spec.baseline.value).toPrecision(3)) : undefined;
  return {
    name: spec.name,
    value,
    unit: spec.unit,
    ...(baseline ? { baseline } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(spec.target ? { target: spec.target.text, met: spec.target.met(spec.value, ratio) } : {}),
  };
}

export const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
