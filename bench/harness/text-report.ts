/**
 * What the runner prints: aligned text tables — the summary of a run (every figure with its
 * baseline, ratio and target; latencies; the counts that must be zero) and the comparison of two.
 */
import type { CompareRow } from './compare.ts';
import { formatChange } from './compare.ts';
import { num } from './report-html.ts';
import type { BenchRun } from './run-record.ts';

/** Columns padded to their widest cell (at most `maxWidth`, cut with …); `numeric` columns right-aligned. */
export function textTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: ReadonlySet<number> = new Set(),
  maxWidth = 64,
): string {
  const widths = header.map((h, i) => Math.min(maxWidth, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: readonly string[]): string =>
    widths
      .map((w, i) => {
        const c = cells[i] ?? '';
        const cut = c.length > w ? `${c.slice(0, w - 1)}…` : c;
        return numeric.has(i) ? cut.padStart(w) : cut.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatSummary(run: BenchRun): string {
  const rows = run.results.flatMap((r) =>
    r.figures.map((f) => [
      r.scenario,
      f.name,
      `${num(f.value)} ${f.unit}`,
      f.baseline ? `${num(f.baseline.value)} (${f.baseline.name})` : '',
      f.ratio === undefined ? '' : num(f.ratio),
      f.target ? `${f.target}: ${f.met ? 'met' : 'NOT met'}` : '',
    ]),
  );
  const out = [textTable(['scenario', 'figure', 'value', 'baseline (same run)', 'ratio', 'target'], rows, new Set([2, 4]))];
  const lat = run.results.flatMap((r) =>
    (r.latencies ?? []).map((l) => [r.scenario, l.name, num(l.count), num(l.p50), num(l.p90), num(l.p99), num(l.p999), num(l.max)]),
  );
  if (lat.length > 0)
    out.push('', textTable(['scenario', 'latency (ms)', 'n', 'p50', 'p90', 'p99', 'p99.9', 'max'], lat, new Set([2, 3, 4, 5, 6, 7])));
  const integrity = run.results.flatMap((r) =>
    Object.entries(r.integrity ?? {}).map(([k, v]) => [r.scenario, k, num(v), v === 0 ? 'ok' : 'NOT ZERO']),
  );
  if (integrity.length > 0) out.push('', textTable(['scenario', 'must be zero', 'count', ''], integrity, new Set([2])));
  for (const f of run.failures) out.push('', `FAILED ${f.scenario}: ${f.error.split('\n')[0]}`);
  return out.join('\n');
}

const mark = (v: -1 | 0 | 1): string => (v > 0 ? 'better' : v < 0 ? 'worse' : '');

/** Two runs' figures side by side, with the change in %. */
export function formatCompareTable(rows: readonly CompareRow[], labelA = 'A', labelB = 'B'): string {
  const body = rows.map((r) => [r.scenario, r.name, r.unit, num(r.a), num(r.b), formatChange(r.changePct), mark(r.verdict)]);
  return textTable(['scenario', 'figure', 'unit', labelA, labelB, 'change', ''], body, new Set([3, 4, 5]), 60);
}
