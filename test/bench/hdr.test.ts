import { describe, expect, it } from 'vitest';
import { LatencyRecorder, summarize } from '../../bench/harness/hdr.ts';
import { mergeTimelines, Timeline, timelineSeries } from '../../bench/harness/timeline.ts';

describe('hdr wrapper (milliseconds in, µs precision, LatencySummary out)', () => {
  it('summarises 1..1000 ms: percentiles within HDR precision, max exact, count', () => {
    const s = summarize(
      'uniform',
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    expect(s.name).toBe('uniform');
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(500, -0.5);
    expect(s.p90).toBeCloseTo(900, -0.5);
    expect(s.p99).toBeCloseTo(990, -0.5);
    expect(s.p999).toBeCloseTo(999, -0.5);
    expect(s.max).toBeCloseTo(1000, 0);
    for (const [p, v] of [
      [50, s.p50],
      [90, s.p90],
      [99, s.p99],
      [99.9, s.p999],
    ] as const)
      expect(Math.abs(v - p * 10) / (p * 10)).toBeLessThan(0.002);
  });

  it('keeps microseconds: sub-millisecond values are distinguished', () => {
    const r = LatencyRecorder.create();
    r.recordAll([0.05, 0.051, 0.3, 0.3001]);
    expect(r.percentile(25)).toBeCloseTo(0.05, 3);
    expect(r.percentile(50)).toBeCloseTo(0.051, 3);
    expect(r.max).toBeCloseTo(0.3, 3);
    expect(r.count).toBe(4);
  });

  it('counts negative and non-finite samples as 0 and resizes past an hour', () => {
    const r = LatencyRecorder.create();
    r.recordAll([-5, Number.NaN, Number.POSITIVE_INFINITY, 2 * 3_600_000]);
    expect(r.count).toBe(4);
    expect(r.percentile(50)).toBe(0);
    expect(r.max).toBeGreaterThan(7_000_000 * 0.999);
  });

  it('an empty recorder summarises to NaN percentiles and count 0', () => {
    const s = LatencyRecorder.create().summary('none');
    expect(s).toMatchObject({ count: 0 });
    expect(Number.isNaN(s.p50) && Number.isNaN(s.max)).toBe(true);
  });

  it('encodes and merges across "processes": the merge equals one recorder of everything', () => {
    const a = LatencyRecorder.create();
    const b = LatencyRecorder.create();
    const all = LatencyRecorder.create();
    for (let i = 0; i < 5000; i++) {
      const v = ((i * 7919) % 1000) / 10;
      (i % 2 ? a : b).record(v);
      all.record(v);
    }
    const merged = LatencyRecorder.merge([a.encode(), b.encode()]);
    expect(merged.summary('m')).toEqual({ ...all.summary('m') });
    expect(LatencyRecorder.merge([]).count).toBe(0);
  });
});

describe('timeline (acks and latency per bucket, merged across load processes)', () => {
  it('sums buckets of two processes, fills gaps with zero throughput, and plots reports/s and percentiles', () => {
    const t0 = 1_000_000;
    const p1 = new Timeline(t0, 100);
    const p2 = new Timeline(t0, 100);
    for (let i = 0; i < 10; i++) p1.record(t0 + 5, 2); // bucket 0: 10 acks at 2 ms
    for (let i = 0; i < 30; i++) p2.record(t0 + 50, 4); // bucket 0: +30 at 4 ms
    p2.record(t0 + 350, 100); // bucket 3
    const merged = mergeTimelines([p1.encode(), p2.encode()]);
    expect(merged.map((b) => [b.t, b.count])).toEqual([
      [0, 40],
      [0.1, 0],
      [0.2, 0],
      [0.3, 1],
    ]);
    const series = timelineSeries(merged, 100);
    const rate = series.find((s) => s.name === 'acked reports/s')!;
    expect(rate.points).toEqual([
      [0, 400],
      [0.1, 0],
      [0.2, 0],
      [0.3, 10],
    ]);
    const p99 = series.find((s) => s.name === 'ack latency p99')!;
    expect(p99.unit).toBe('ms');
    expect(p99.points.map((p) => p[0])).toEqual([0, 0.3]); // no latency where nothing was acked
    expect(p99.points[0]![1]).toBeCloseTo(4, 1);
    expect(p99.points[1]![1]).toBeCloseTo(100, 0);
  });

  it('refuses to merge timelines with different bucket sizes', () => {
    expect(() => mergeTimelines([new Timeline(0, 100).encode(), new Timeline(0, 250).encode()])).toThrow(/different buckets/);
  });
});
