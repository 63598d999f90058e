/** The contract every scenario's result keeps, whatever its figures are (no timing is checked in smoke runs). */
import { expect } from 'vitest';
import type { ScenarioResult } from '../../../bench/harness/scenario.ts';

/** `why`: what the run printed, for the failure message. */
export function expectWellFormed(result: ScenarioResult, name: string, why: string): void {
  expect(result.scenario, why).toBe(name);
  expect(result.figures.length, why).toBeGreaterThan(0);
  for (const f of result.figures) {
    expect(Number.isFinite(f.value), `${name} › ${f.name}: value ${f.value}\n${why}`).toBe(true);
    // Rates and latencies are positive; a memory delta of a tiny smoke run is only required to be finite.
    if (f.unit !== 'bytes') expect(f.value, `${name} › ${f.name}\n${why}`).toBeGreaterThan(0);
    expect(f.baseline, `${name} › ${f.name} has no baseline`).toBeDefined();
    expect(f.ratio, `${name} › ${f.name} has no ratio (baseline ${f.baseline!.name} = ${f.baseline!.value})`).toBeDefined();
    const expected = f.value / f.baseline!.value;
    expect(Math.abs(f.ratio! - expected) <= 0.02 * Math.abs(expected), `${name} › ${f.name}: ratio ${f.ratio} vs ${expected}`).toBe(true);
    if (f.target !== undefined) expect(typeof f.met, `${name} › ${f.name}: target without met`).toBe('boolean');
  }
  for (const l of result.latencies ?? []) {
    expect(l.count, `${name} › ${l.name}`).toBeGreaterThan(0);
    expect(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${name} › ${l.name}: ${JSON.stringify(l)}`).toBe(true);
  }
  for (const [k, v] of Object.entries(result.integrity ?? {})) expect(v, `${name} › ${k}\n${why}`).toBe(0);
  expect(result.notes?.length ?? 0, `${name} has no notes`).toBeGreaterThan(0);
}
