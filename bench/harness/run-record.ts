/** The JSON a benchmark run writes (`bench-<timestamp>.json`): where, with what, which parameters, and every scenario's result. */
import { readFileSync } from 'node:fs';
import type { GitInfo, Machine, Versions } from './machine.ts';
import type { ScenarioResult } from './scenario.ts';

export interface RunParams {
  readonly scenarios: readonly string[];
  readonly duration: number;
  readonly hubs: number;
  readonly rate: number;
  readonly nodes: number;
  readonly smoke: boolean;
  /** `--kills` (failover), when given. */
  readonly kills?: number;
  /** The flags given on the command line (the others are defaults, some scenarios use their own). */
  readonly explicit: readonly string[];
}

export interface BenchRun {
  readonly kind: 'iot-bench-run';
  readonly format: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Machine;
  readonly versions: Versions;
  readonly git: GitInfo;
  readonly params: RunParams;
  readonly results: readonly ScenarioResult[];
  /** Scenarios that threw: their error (their result, if any, is not in `results`). */
  readonly failures: readonly { readonly scenario: string; readonly error: string }[];
}

/** `2026-11-25T17-51-02-807Z`: an ISO time usable in a file name. */
export const fileStamp = (d: Date): string => d.toISOString().replace(/[:.]/g, '-');

export class RunFileError extends Error {
  override readonly name = 'RunFileError';
}

/** Reads and checks a run file; throws `RunFileError` saying what is wrong with it. */
export function loadRun(path: string): BenchRun {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RunFileError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RunFileError(`${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return asRun(doc, path);
}

/** Checks the shape of a parsed run (enough for the report and the comparison to rely on). */
export function asRun(doc: unknown, what = 'the document'): BenchRun {
  const d = doc as Partial<BenchRun> | null;
  if (typeof d !== 'object' || d === null || d.kind !== 'iot-bench-run')
    throw new RunFileError(`${what} is not a benchmark run (no "kind": "iot-bench-run")`);
  if (!Array.isArray(d.results)) throw new RunFileError(`${what} has no "results" array`);
  (d.results as unknown[]).forEach((raw, i) => {
    const r = raw as Partial<ScenarioResult> | null;
    if (typeof r?.scenario !== 'string' || !Array.isArray(r.figures))
      throw new RunFileError(`${what}: results[${i}] lacks "scenario" or "figures"`);
  });
  return d as BenchRun;
}
