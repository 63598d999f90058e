/**
 * The self-contained HTML report of a run: machine and versions, then per scenario its figures
 * (baseline, ratio, target met or not), lost / duplicated counts, latency percentile bars and the
 * time series (throughput and latency over time, with the resize / failover events as markers).
 * Inline SVG and CSS only: it opens anywhere, offline.
 */
import { machineLine } from './machine.ts';
import type { BenchRun } from './run-record.ts';
import type { Figure, LatencySummary, ScenarioResult, Series } from './scenario.ts';
import { barChart, esc, lineChart } from './svg-plot.ts';

export const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f5f5}
.met{color:#15803d;font-weight:600}.miss{color:#b91c1c;font-weight:600}.muted{color:#666}
svg{display:block;margin:8px 0 16px;font:11px system-ui,sans-serif}svg .g{stroke:#eee}svg .t{font-size:13px;font-weight:600}
code{background:#f5f5f5;padding:1px 4px}`;

/** A number for people: thousands separators, at most 2 decimals; '–' for none. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) >= 100 ? 0 : 2 });
}

export const metCell = (f: Figure): string =>
  f.met === undefined ? '<td></td>' : f.met ? '<td class="met">met</td>' : '<td class="miss">not met</td>';

export function figuresTable(figures: readonly Figure[]): string {
  if (figures.length === 0) return '<p class="muted">no figures</p>';
  const rows = figures.map(
    (f) =>
      `<tr><td>${esc(f.name)}</td><td class="n">${num(f.value)}</td><td>${esc(f.unit)}</td>` +
      `<td>${esc(f.baseline?.name ?? '')}</td><td class="n">${f.baseline ? num(f.baseline.value) : ''}</td>` +
      `<td class="n">${f.ratio === undefined ? '' : num(f.ratio)}</td><td>${esc(f.target ?? '')}</td>${metCell(f)}</tr>`,
  );
  return `<table><tr><th>figure</th><th>value</th><th>unit</th><th>baseline (same run)</th><th>baseline value</th><th>ratio</th><th>target</th><th></th></tr>${rows.join('')}</table>`;
}

export function latencyChart(title: string, latencies: readonly LatencySummary[]): string {
  return barChart(
    title,
    'ms',
    ['p50', 'p90', 'p99', 'p99.9', 'max'],
    latencies.map((l) => ({ label: `${l.name} (n=${num(l.count)})`, values: [l.p50, l.p90, l.p99, l.p999, l.max] })),
  );
}

function latencyTable(latencies: readonly LatencySummary[]): string {
  const rows = latencies.map(
    (l) =>
      `<tr><td>${esc(l.name)}</td><td class="n">${num(l.count)}</td>${[l.p50, l.p90, l.p99, l.p999, l.max].map((v) => `<td class="n">${num(v)}</td>`).join('')}</tr>`,
  );
  return `<table><tr><th>latency (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>${rows.join('')}</table>`;
}

/** What the names have in common, up to a word ('ack latency p50', 'ack latency p99' → 'ack latency'). */
export function commonName(names: readonly string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return names[0]!;
  let prefix = names[0]!;
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.length === names[0]!.length ? prefix : prefix.replace(/\s*\S*$/, '').trim();
}

/** One line chart per unit of the scenario's series; 'event' series are markers on each. */
export function seriesCharts(scenario: string, series: readonly Series[]): string {
  const events = series.filter((s) => s.unit === 'event');
  const byUnit = new Map<string, Series[]>();
  for (const s of series) if (s.unit !== 'event') byUnit.set(s.unit, [...(byUnit.get(s.unit) ?? []), s]);
  return [...byUnit]
    .map(([unit, list]) => lineChart(`${scenario}: ${commonName(list.map((s) => s.name)) || unit} over time`, unit, list, events))
    .join('');
}

function integrityTable(integrity: Readonly<Record<string, number>>): string {
  const rows = Object.entries(integrity).map(
    ([k, v]) => `<tr><td>${esc(k)}</td><td class="n ${v === 0 ? 'met' : 'miss'}">${num(v)}</td></tr>`,
  );
  return `<table><tr><th>must be zero</th><th>count</th></tr>${rows.join('')}</table>`;
}

function scenarioSection(r: ScenarioResult): string {
  const parts = [`<h2 id="${esc(r.scenario)}">${esc(r.scenario)}</h2>`, figuresTable(r.figures)];
  if (r.integrity && Object.keys(r.integrity).length > 0) parts.push(integrityTable(r.integrity));
  if (r.latencies && r.latencies.length > 0)
    parts.push(latencyTable(r.latencies), latencyChart(`${r.scenario}: latency percentiles`, r.latencies));
  if (r.series && r.series.length > 0) parts.push(seriesCharts(r.scenario, r.series));
  if (r.notes && r.notes.length > 0) parts.push(`<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  return parts.join('\n');
}

export function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>\n${body}\n</body></html>\n`;
}

export function renderRunHtml(run: BenchRun): string {
  const m = run.machine;
  const deps = {
    ...run.versions.dependencies,
    ...run.versions.devDependencies,
    ...(run.versions.redis ? { 'redis-server': run.versions.redis } : {}),
  };
  const head = [
    `<h1>Benchmark run ${esc(run.startedAt)}${run.params.smoke ? ' (smoke: no timing is meaningful)' : ''}</h1>`,
    `<p>${esc(machineLine(m))}; load average at start ${esc(m.loadavg.join(' / '))}<br>`,
    `git ${run.git.commit ? `<code>${esc(run.git.commit)}</code>${run.git.dirty ? ' (with uncommitted changes)' : ''}` : `unknown (${esc(run.git.error ?? '')})`}<br>`,
    `scenarios ${esc(run.params.scenarios.join(', '))}; duration ${run.params.duration} s, hubs ${run.params.hubs}, rate ${num(run.params.rate)}/s, nodes ${run.params.nodes}` +
      ` (given: ${esc(run.params.explicit.join(', ') || 'none — scenarios use their own defaults')})</p>`,
    `<details><summary>versions</summary><table>${Object.entries(deps)
      .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`)
      .join('')}</table></details>`,
  ];
  if (run.failures.length > 0)
    head.push(
      `<h2>Failed scenarios</h2><ul>${run.failures.map((f) => `<li><b>${esc(f.scenario)}</b>: <pre>${esc(f.error)}</pre></li>`).join('')}</ul>`,
    );
  const all = run.results.flatMap((r) => r.figures.map((f) => ({ ...f, name: `${r.scenario}: ${f.name}` })));
  head.push('<h2>All figures</h2>', figuresTable(all.filter((f) => f.target !== undefined || f.baseline !== undefined)));
  return page(`bench ${run.startedAt}`, [...head, ...run.results.map(scenarioSection)].join('\n'));
}
