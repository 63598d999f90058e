/**
 * A private HDR helper for the scenarios (the runner's own wrapper lives in bench/harness/):
 * latencies are recorded in microseconds, summarised in milliseconds, and cross process
 * boundaries as compressed base64 so histograms from several processes can be merged.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencySummary } from '../../harness/scenario.ts';

export type { Histogram };

/** 1 µs .. 60 s at 3 significant digits. */
export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records a duration given in milliseconds (as from `performance.now()` differences). */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export const encodeHistogram = (h: Histogram): string => encodeIntoCompressedBase64(h);

export const decodeHistogram = (text: string): Histogram => decodeFromCompressedBase64(text);

/** Merges encoded histograms (one per process) into one. */
export function mergeEncoded(parts: readonly string[]): Histogram {
  const all = newHistogram();
  for (const p of parts) all.add(decodeHistogram(p));
  return all;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(name: string, h: Histogram): LatencySummary {
  return {
    name,
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}
