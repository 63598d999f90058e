/**
 * Two runs side by side (`--compare A.json B.json`): every figure and latency percentile matched by
 * scenario and name, with the change from A to B in percent and whether that is better or worse
 * (lower is better for times and sizes, higher for rates; a ratio to a same-run baseline goes the
 * way of its figure). Pure functions and the HTML page; the text table is in text-report.ts.
 */
import { machineLine } from './machine.ts';
import { num, page } from './report-html.ts';
import type { BenchRun } from './run-record.ts';
import { barChart, esc } from './svg-plot.ts';

export interface CompareRow {
  readonly scenario: string;
  readonly name: string;
  readonly unit: string;
  readonly a: number | null;
  readonly b: number | null;
  /** (b - a) / a in percent; null when either is missing or a is 0. */
  readonly changePct: number | null;
  /** +1 better, -1 worse, 0 unchanged or unknown. */
  readonly verdict: -1 | 0 | 1;
}

/** Units where a smaller value is better (times, sizes) and where a larger one is (rates, ratios); others are neither. */
const LOWER_IS_BETTER = /^(ms|s|µs|us|bytes|B|KB|MB|KiB|MiB|bytes\/actor)$/i;
const HIGHER_IS_BETTER = /\/s$/i;

export function direction(unit: string): -1 | 0 | 1 {
  const u = unit.trim();
  return LOWER_IS_BETTER.test(u) ? -1 : HIGHER_IS_BETTER.test(u) ? 1 : 0;
}

export function changePct(a: number | null, b: number | null): number | null {
  if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || a === 0) return null;
  return ((b - a) / Math.abs(a)) * 100;
}

/** Changes smaller than this (percent) are not called better or worse. */
export const NOISE_PCT = 2;

export function verdict(unit: string, change: number | null): -1 | 0 | 1 {
  if (change === null || Math.abs(change) < NOISE_PCT) return 0;
  return ((change > 0 ? 1 : -1) * direction(unit)) as -1 | 0 | 1;
}

const finite = (v: number | null | undefined): number | null => (v === null || v === undefined || !Number.isFinite(v) ? null : v);

interface Value {
  readonly scenario: string;
  readonly name: string;
  readonly unit: string;
  readonly value: number | null;
  /** Which way is better: the unit's direction (for a ratio, its figure's). */
  readonly dir: -1 | 0 | 1;
}

function valuesOf(run: BenchRun): Map<string, Value> {
  const out = new Map<string, Value>();
  const put = (v: Value): void => void out.set(`${v.scenario}\u0000${v.name}`, v);
  for (const r of run.results) {
    for (const f of r.figures) {
      put({ scenario: r.scenario, name: f.name, unit: f.unit, value: finite(f.value), dir: direction(f.unit) });
      // The ratio to a same-run baseline: what stays comparable when the machine differs.
      if (f.baseline)
        put({
          scenario: r.scenario,
          name: `${f.name} ÷ ${f.baseline.name}`,
          unit: 'ratio',
          value: finite(f.ratio),
          dir: direction(f.unit),
        });
    }
    for (const l of r.latencies ?? []) {
      for (const [p, v] of [
        ['p50', l.p50],
        ['p99', l.p99],
        ['p99.9', l.p999],
        ['max', l.max],
      ] as const) {
        put({ scenario: r.scenario, name: `${l.name} ${p}`, unit: 'ms', value: finite(v), dir: -1 });
      }
    }
  }
  return out;
}

/** Every figure (and its ratio to its baseline) and latency percentile of either run, in A's order, then those only B has. */
export function compareRuns(a: BenchRun, b: BenchRun): CompareRow[] {
  const va = valuesOf(a);
  const vb = valuesOf(b);
  const keys = [...va.keys(), ...[...vb.keys()].filter((k) => !va.has(k))];
  return keys.map((k) => {
    const x = va.get(k);
    const y = vb.get(k);
    const meta = (x ?? y)!;
    const change = changePct(x?.value ?? null, y?.value ?? null);
    const v = change === null || Math.abs(change) < NOISE_PCT ? 0 : (change > 0 ? 1 : -1) * meta.dir;
    return {
      scenario: meta.scenario,
      name: meta.name,
      unit: meta.unit,
      a: x?.value ?? null,
      b: y?.value ?? null,
      changePct: change,
      verdict: v as -1 | 0 | 1,
    };
  });
}

export const formatChange = (c: number | null): string => (c === null ? '–' : `${c > 0 ? '+' : ''}${c.toFixed(1)}%`);
const mark = (v: -1 | 0 | 1): string => (v > 0 ? 'better' : v < 0 ? 'worse' : '');

export function renderCompareHtml(a: BenchRun, b: BenchRun, rows: readonly CompareRow[], names: [string, string]): string {
  const who = (run: BenchRun, name: string): string =>
    `<li><b>${esc(name)}</b>: ${esc(run.startedAt)}, git <code>${esc(run.git.commit?.slice(0, 12) ?? 'unknown')}</code>${run.git.dirty ? ' (dirty)' : ''}, ${esc(machineLine(run.machine))}${run.params.smoke ? ' <b>(smoke)</b>' : ''}</li>`;
  const table = rows.map(
    (r) =>
      `<tr><td>${esc(r.scenario)}</td><td>${esc(r.name)}</td><td>${esc(r.unit)}</td><td class="n">${num(r.a)}</td><td class="n">${num(r.b)}</td>` +
      `<td class="n ${r.verdict > 0 ? 'met' : r.verdict < 0 ? 'miss' : ''}">${formatChange(r.changePct)}</td><td>${mark(r.verdict)}</td></tr>`,
  );
  const p99 = rows.filter((r) => r.unit === 'ms' && / p99$/.test(r.name));
  const chart =
    p99.length > 0
      ? barChart(
          'p99 latencies, A vs B',
          'ms',
          ['A', 'B'],
          p99.map((r) => ({ label: `${r.scenario}: ${r.name.replace(/ p99$/, '')}`, values: [r.a, r.b] })),
        )
      : '';
  const body = [
    `<h1>Comparison: ${esc(names[0])} → ${esc(names[1])}</h1>`,
    `<ul>${who(a, `A ${names[0]}`)}${who(b, `B ${names[1]}`)}</ul>`,
    a.machine.model !== b.machine.model || a.machine.cpus !== b.machine.cpus
      ? '<p class="miss">The runs are from different machines: differences are not the code\'s alone.</p>'
      : '',
    `<table><tr><th>scenario</th><th>figure</th><th>unit</th><th>A</th><th>B</th><th>change</th><th></th></tr>${table.join('')}</table>`,
    chart,
  ];
  return page(`bench comparison ${names[0]} vs ${names[1]}`, body.join('\n'));
}
