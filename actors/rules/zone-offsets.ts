/** A time zone's UTC offsets over time, as spans of constant offset found once per (zone, year) from Intl. */

const SECOND = 1_000;
const DAY = 86_400_000;
const SAMPLE_MS = 2 * DAY;

/** A stretch of time over which a zone's UTC offset stays the same. */
export interface OffsetSpan {
  /** First instant of the span (epoch ms, a whole second), or -Infinity: no change for over a year before. */
  readonly start: number;
  /** First instant after the span (epoch ms), or Infinity. */
  readonly end: number;
  /** UTC offset during the span (ms, local wall clock minus UTC). */
  readonly offset: number;
  /** UTC offset just before `start` (ms): above `offset` the change set clocks back, below it forward. */
  readonly before: number;
}

/** The changes of one UTC year: `changes[i].at` is the first instant (in (Jan 1, next Jan 1]) with `offset`. */
interface YearChanges {
  /** The offset at 00:00 UTC on 1 January. */
  readonly first: number;
  readonly changes: readonly { readonly at: number; readonly offset: number }[];
}

// Bounded caches, cleared whole when full: valid zone names are few, but Intl accepts any casing.
const MAX_CACHED = 4_096;
const formatters = new Map<string, Intl.DateTimeFormat>();
const years = new Map<string, YearChanges>();

// `format` (one string) costs about a fifth of `formatToParts`; en-US with h23 reads "3/29/2026, 03:00:00".
const EN_US = /^(\d+)\/(\d+)\/(\d+),? (\d+):(\d+):(\d+)$/;

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    if (formatters.size >= MAX_CACHED) formatters.clear();
    const fields = { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' } as const;
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', ...fields });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * The UTC offset (ms, a whole number of seconds) of `timeZone` at instant `t` (epoch ms): the local
 * wall clock read as UTC, minus `t`. Throws a RangeError for a zone Intl does not know.
 */
export function utcOffsetAt(timeZone: string, t: number): number {
  const f = formatter(timeZone);
  const whole = Math.floor(t / SECOND) * SECOND;
  const m = EN_US.exec(f.format(whole));
  let fields: number[];
  if (m !== null) fields = [Number(m[3]), Number(m[1]), Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6])];
  else {
    // An ICU that formats differently: the slower, unambiguous parts.
    const p = Object.fromEntries(f.formatToParts(whole).map((x) => [x.type, Number(x.value)]));
    fields = [p.year!, p.month!, p.day!, p.hour!, p.minute!, p.second!];
  }
  const [y, mo, d, h, mi, s] = fields as [number, number, number, number, number, number];
  let wall = Date.UTC(y, mo - 1, d, h % 24, mi, s);
  if (y >= 0 && y < 100) wall = new Date(wall).setUTCFullYear(y); // Date.UTC reads 0..99 as 1900..1999
  return wall - whole;
}

/** The first whole second in (lo, hi] whose offset is not `from` (the offset at lo). */
function firstChange(timeZone: string, lo: number, hi: number, from: number): number {
  while (hi - lo > SECOND) {
    const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
    if (utcOffsetAt(timeZone, mid) === from) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The offset changes of one UTC year, sampled every `SAMPLE_MS` and bisected to the second: an
 * offset that lasts less than that could be missed. The shortest in the time zone data from 1970
 * to 2045 lasts 7 days (Asia/Gaza's around Ramadan).
 */
function yearChanges(timeZone: string, year: number): YearChanges {
  const key = `${timeZone}\n${year}`;
  const hit = years.get(key);
  if (hit !== undefined) return hit;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  const first = utcOffsetAt(timeZone, start);
  const changes: { at: number; offset: number }[] = [];
  let lo = start;
  let offset = first;
  while (lo < end) {
    const hi = Math.min(lo + SAMPLE_MS, end);
    const there = utcOffsetAt(timeZone, hi);
    // Walk every change inside (lo, hi]: two in one step are rare, but each is found.
    while (there !== offset) {
      const at = firstChange(timeZone, lo, hi, offset);
      offset = utcOffsetAt(timeZone, at);
      changes.push({ at, offset });
      lo = at;
    }
    lo = hi;
  }
  const out = { first, changes };
  if (years.size >= MAX_CACHED) years.clear();
  years.set(key, out);
  return out;
}

const utcYear = (t: number): number => new Date(t).getUTCFullYear();

/**
 * The spans of constant offset of `timeZone` that overlap [from, to] (epoch ms), in order and
 * back to back: the first contains `from`, the last `to` (its `end` may be Infinity). The first
 * computation for a zone and year costs under 1 ms (an Intl call every 2 days); later ones are lookups.
 * Throws a RangeError for a zone Intl does not know.
 */
export function offsetSpans(timeZone: string, from: number, to: number): OffsetSpan[] {
  // Looking a day before `from` finds a change just before it (what a span's `before` needs).
  const firstYear = utcYear(from - DAY);
  let offset = yearChanges(timeZone, firstYear).first;
  let start = -Infinity;
  let before = offset;
  const out: OffsetSpan[] = [];
  for (let year = firstYear; year <= utcYear(to); year++) {
    for (const change of yearChanges(timeZone, year).changes) {
      if (change.at > from && start <= to) out.push({ start, end: change.at, offset, before });
      before = offset;
      ({ at: start, offset } = change);
    }
  }
  out.push({ start, end: Infinity, offset, before });
  return out.filter((s) => s.start <= to);
}
