/** Inline SVG plots for the HTML reports (no scripts, no external CSS): line charts with event markers, grouped bar charts. */
import type { Series } from './scenario.ts';

export const esc = (s: unknown): string =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 760;
const H = 260;
const M = { left: 64, right: 16, top: 28, bottom: 36 };

/** Rounded axis ticks over [0, max]. */
export function ticks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number): string =>
  Math.abs(v) >= 10_000 ? `${Math.round(v / 1000)}k` : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));

/** A line chart of `series` (same unit) over time in seconds, with vertical markers for `events`. */
export function lineChart(title: string, unit: string, series: readonly Series[], events: readonly Series[] = []): string {
  const pts = series.flatMap((s) => s.points);
  const evx = events.flatMap((e) => e.points.map((p) => p[0]));
  const xMax = Math.max(1, ...pts.map((p) => p[0]), ...evx);
  const yTicks = ticks(Math.max(0, ...pts.map((p) => (Number.isFinite(p[1]) ? p[1] : 0))));
  const yMax = yTicks.at(-1)!;
  const xTicks = ticks(xMax, 8);
  const xm = xTicks.at(-1)!;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): number => M.left + (v / xm) * pw;
  const y = (v: number): number => M.top + ph - (Math.max(0, v) / yMax) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 18 * Math.ceil((series.length + events.length) / 3)}" role="img" aria-label="${esc(title)}">`,
  ];
  parts.push(`<text x="${M.left}" y="18" class="t">${esc(title)}</text>`);
  for (const t of yTicks)
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="g"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  for (const t of xTicks) parts.push(`<text x="${x(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);
  parts.push(
    `<text x="${W - M.right}" y="${H - 4}" text-anchor="end">seconds</text><text x="12" y="${M.top + ph / 2}" transform="rotate(-90 12 ${M.top + ph / 2})" text-anchor="middle">${esc(unit)}</text>`,
  );
  series.forEach((s, i) => {
    const d = s.points
      .filter((p) => Number.isFinite(p[1]))
      .map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join('');
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"/>`);
  });
  events.forEach((e, i) => {
    for (const [t] of e.points)
      parts.push(
        `<line x1="${x(t)}" x2="${x(t)}" y1="${M.top}" y2="${M.top + ph}" stroke="${COLORS[(series.length + i) % COLORS.length]}" stroke-dasharray="5,3"/>`,
      );
  });
  [...series, ...events].forEach((s, i) => {
    const lx = M.left + (i % 3) * 230;
    const ly = H + 4 + 18 * Math.floor(i / 3);
    const dash = i >= series.length ? ' stroke-dasharray="5,3"' : '';
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"${dash}/><text x="${lx + 24}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface BarGroup {
  readonly label: string;
  /** One value per key, in `keys` order (NaN / null: no bar). */
  readonly values: readonly (number | null)[];
}

/** Horizontal grouped bars (e.g. p50 … max per latency summary), log scale when the values span decades. */
export function barChart(title: string, unit: string, keys: readonly string[], groups: readonly BarGroup[]): string {
  const all = groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
  const max = Math.max(1e-3, ...all);
  const min = Math.min(max, ...all);
  const log = max / min > 50;
  const barH = 12;
  const groupH = keys.length * barH + 14;
  const left = 300;
  const pw = W - left - 90;
  const scale = (v: number): number => (log ? (Math.log10(v / (min / 2)) / Math.log10(max / (min / 2))) * pw : (v / max) * pw);
  const height = M.top + groups.length * groupH + 24;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" role="img" aria-label="${esc(title)}">`,
  ];
  parts.push(`<text x="8" y="18" class="t">${esc(title)} (${esc(unit)}${log ? ', log scale' : ''})</text>`);
  groups.forEach((g, gi) => {
    const gy = M.top + gi * groupH;
    parts.push(
      `<text x="${left - 8}" y="${gy + (keys.length * barH) / 2 + 4}" text-anchor="end">${esc(g.label.length > 46 ? `${g.label.slice(0, 45)}…` : g.label)}</text>`,
    );
    g.values.forEach((v, k) => {
      if (v === null || !Number.isFinite(v)) return;
      const w = Math.max(1, scale(Math.max(v, min / 2)));
      parts.push(
        `<rect x="${left}" y="${gy + k * barH}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[k % COLORS.length]}"/>`,
      );
      parts.push(`<text x="${left + w + 4}" y="${gy + k * barH + 9}">${esc(keys[k])} ${fmt(v)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}
