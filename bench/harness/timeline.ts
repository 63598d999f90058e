/**
 * Throughput and latency over time: acks counted per bucket (100 ms by default) with an HDR
 * histogram of their latencies, relative to a shared t0 (epoch ms) so that buckets of several
 * load processes line up. Merged buckets become plot series.
 */
import { LatencyRecorder } from './hdr.ts';
import type { EncodedTimeline } from './load-protocol.ts';
import type { Series } from './scenario.ts';

interface Bucket {
  count: number;
  readonly latency: LatencyRecorder;
}

export class Timeline {
  private readonly buckets = new Map<number, Bucket>();

  constructor(
    /** Epoch ms of x = 0. */
    readonly t0: number,
    readonly bucketMs = 100,
  ) {}

  /** `count` reports acked at `atEpochMs`, each with `latencyMs` (one latency sample per report). */
  record(atEpochMs: number, latencyMs: number, count = 1): void {
    const i = Math.floor((atEpochMs - this.t0) / this.bucketMs);
    let b = this.buckets.get(i);
    if (!b) {
      b = { count: 0, latency: LatencyRecorder.create({ digits: 2, packed: true }) };
      this.buckets.set(i, b);
    }
    b.count += count;
    for (let k = 0; k < count; k++) b.latency.record(latencyMs);
  }

  encode(): EncodedTimeline {
    return {
      bucketMs: this.bucketMs,
      buckets: [...this.buckets].sort((a, b) => a[0] - b[0]).map(([i, b]) => [i, b.count, b.latency.encode()] as const),
    };
  }
}

export interface MergedBucket {
  /** Seconds since t0 at the bucket's start. */
  readonly t: number;
  readonly count: number;
  readonly latency: LatencyRecorder;
}

/** Buckets of several processes summed, one per index from the first to the last (empty ones included). */
export function mergeTimelines(parts: readonly EncodedTimeline[]): MergedBucket[] {
  const bucketMs = parts[0]?.bucketMs ?? 100;
  const by = new Map<number, { count: number; latency: LatencyRecorder }>();
  for (const p of parts) {
    if (p.bucketMs !== bucketMs) throw new Error(`timelines with different buckets: ${p.bucketMs} ms and ${bucketMs} ms`);
    for (const [i, count, enc] of p.buckets) {
      let b = by.get(i);
      if (!b) {
        b = { count: 0, latency: LatencyRecorder.create({ digits: 2, packed: true }) };
        by.set(i, b);
      }
      b.count += count;
      b.latency.add(LatencyRecorder.decode(enc));
    }
  }
  if (by.size === 0) return [];
  const keys = [...by.keys()];
  const first = Math.max(0, Math.min(...keys));
  const last = Math.max(...keys);
  const out: MergedBucket[] = [];
  for (let i = first; i <= last; i++) {
    const b = by.get(i);
    out.push({
      t: (i * bucketMs) / 1000,
      count: b?.count ?? 0,
      latency: b?.latency ?? LatencyRecorder.create({ digits: 2, packed: true }),
    });
  }
  return out;
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Plot series of merged buckets: acked reports/s and ack latency p50 / p99 / max per bucket. */
export function timelineSeries(buckets: readonly MergedBucket[], bucketMs: number, prefix = ''): Series[] {
  const rate = buckets.map((b) => [round(b.t), Math.round((b.count * 1000) / bucketMs)] as const);
  const withData = buckets.filter((b) => b.count > 0);
  const lat = (p: number) => withData.map((b) => [round(b.t), round(b.latency.percentile(p))] as const);
  return [
    { name: `${prefix}acked reports/s`, unit: 'reports/s', points: rate },
    { name: `${prefix}ack latency p50`, unit: 'ms', points: lat(50) },
    { name: `${prefix}ack latency p99`, unit: 'ms', points: lat(99) },
    { name: `${prefix}ack latency max`, unit: 'ms', points: lat(100) },
  ];
}

/** A marker on a timeline (ring change, kill, settled): drawn as a vertical line. */
export function eventSeries(name: string, atSeconds: number): Series {
  return { name, unit: 'event', points: [[round(atSeconds), 1]] };
}
