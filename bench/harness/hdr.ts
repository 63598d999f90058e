/**
 * Latency recording over hdr-histogram-js: values in milliseconds, stored as integer microseconds
 * (3 significant digits), summarised as a `LatencySummary` in milliseconds. Histograms cross
 * process boundaries as compressed base64 strings (`encode` / `LatencyRecorder.decode`).
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencySummary } from './scenario.ts';

/** One hour in microseconds: the histograms resize past it, this only sizes them up front. */
const HIGHEST_US = 3_600_000_000;

export interface RecorderOptions {
  /** Significant decimal digits kept (default 3; 2 for the many small histograms of a timeline). */
  readonly digits?: 2 | 3;
  /** A packed (sparse) histogram: much smaller when few distinct values are recorded. */
  readonly packed?: boolean;
}

const toUs = (ms: number): number => (Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1000) : 0);
const toMs = (us: number): number => Math.round(us) / 1000;

export class LatencyRecorder {
  private constructor(private readonly h: Histogram) {}

  static create(opts: RecorderOptions = {}): LatencyRecorder {
    return new LatencyRecorder(
      build({
        lowestDiscernibleValue: 1,
        highestTrackableValue: HIGHEST_US,
        numberOfSignificantValueDigits: opts.digits ?? 3,
        bitBucketSize: opts.packed ? 'packed' : 32,
        autoResize: true,
      }),
    );
  }

  /** A recorder from `encode()` output (of this or another process). */
  static decode(encoded: string): LatencyRecorder {
    return new LatencyRecorder(decodeFromCompressedBase64(encoded));
  }

  /** One recorder holding every value of `encoded` (empty input: an empty recorder). */
  static merge(encoded: readonly string[]): LatencyRecorder {
    const out = LatencyRecorder.create();
    for (const e of encoded) out.add(LatencyRecorder.decode(e));
    return out;
  }

  /** Records one latency in milliseconds (negative or non-finite values count as 0). */
  record(ms: number): void {
    this.h.recordValue(toUs(ms));
  }

  /** Records every sample of `samplesMs`. */
  recordAll(samplesMs: Iterable<number>): void {
    for (const ms of samplesMs) this.record(ms);
  }

  add(other: LatencyRecorder): void {
    this.h.add(other.h);
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** The value at percentile `p` (0..100) in milliseconds; NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    return toMs(this.h.getValueAtPercentile(Math.min(100, p)));
  }

  /**
   * The largest value, at the histogram's precision (its bucket's highest equivalent value, within
   * 0.1%): the same before and after an encode / decode round trip.
   */
  get max(): number {
    return this.percentile(100);
  }

  get mean(): number {
    return this.count === 0 ? Number.NaN : this.h.mean / 1000;
  }

  reset(): void {
    this.h.reset();
  }

  encode(): string {
    return encodeIntoCompressedBase64(this.h);
  }

  summary(name: string): LatencySummary {
    return {
      name,
      count: this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.max,
    };
  }
}

/** The summary of raw samples in milliseconds. */
export function summarize(name: string, samplesMs: Iterable<number>): LatencySummary {
  const r = LatencyRecorder.create();
  r.recordAll(samplesMs);
  return r.summary(name);
}
