/** When a schedule trigger (time of day, cron, sunrise/sunset) fires next, in a home's time zone. */
import { Cron, CronPattern } from 'croner';
import SunCalc from 'suncalc';
import { parseSignedDuration } from './duration.ts';
import { WEEKDAYS, type GeoLocation, type ScheduleTrigger, type TimeTrigger } from './rule-types.ts';
import { offsetSpans } from './zone-offsets.ts';

const DAY_MS = 86_400_000;

/** How far ahead `nextFireTime` looks (days): a schedule with no time within it has none. */
export const SCHEDULE_HORIZON_DAYS = 400;
const HORIZON_MS = SCHEDULE_HORIZON_DAYS * DAY_MS;
/** More than any zone's UTC offset (+14 h): a wall time beyond `limit + this` is an instant beyond `limit`. */
const MAX_OFFSET_MS = DAY_MS;

/** Where a home is: its IANA time zone (validated) and, for sun triggers, its location. */
export interface ScheduleWhere {
  readonly timezone: string;
  readonly location?: GeoLocation;
}

/** Cron patterns accept 5 fields, or 6 with seconds first; never the 7th (year) field. */
export const CRON_MODE = '5-or-6-parts';

/**
 * Options of every croner object built here. `utcOffset: 0` makes croner match wall-clock times
 * only (read as UTC): `nextCron` maps them to instants in the home's zone itself, so no search
 * walks a DST gap second by second (croner's own zone handling does, for up to 400 years, when a
 * pattern matches nothing but skipped times). `fixedTimeRule: 'no-wildcard'`: seconds, minutes
 * and hours without `*` or a step (single values, lists and ranges alike) make a fixed-time
 * pattern. `paused`: croner never starts a timer.
 */
const CRON_OPTIONS = { paused: true, mode: CRON_MODE, fixedTimeRule: 'no-wildcard', utcOffset: 0 } as const;

/** A parsed cron pattern. */
interface CronSchedule {
  /** `nextRun(w)`: the first wall-clock match strictly after wall time `w` (local fields read as UTC). */
  readonly matcher: Cron;
  /**
   * croner's fixed-time pattern (see CRON_OPTIONS): a time a spring-forward gap skips fires once, at
   * the first instant after the gap (if still the same day); a time fall-back repeats fires at its
   * first occurrence only. Any other pattern fires at every instant whose wall clock matches: not
   * in a gap, twice in a repeated hour.
   */
  readonly fixedTime: boolean;
  /**
   * False when the pattern never fires: it matches no date at all (31 February), or it uses
   * croner's extensions, which validation refuses. No search is made: croner's walks 400 years
   * (0.1 s and more) before it gives up on a pattern like `* * * 31 * +1#1`.
   */
  readonly canFire: boolean;
}

const MONTH_NAMES = /\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\b/gi;
const DAY_NAMES = /\b(?:sun|mon|tue|wed|thu|fri|sat)\b/gi;
/** croner's extensions (looked for once month and day names are taken out), with what each means. */
const EXTENSIONS: readonly (readonly [RegExp, string])[] = [
  [/@/, '"@" nicknames (@daily, @hourly …)'],
  [/\+/, '"+" (day of the month and day of the week both)'],
  [/#/, '"#" (nth weekday of the month)'],
  [/\?/, '"?" (any value)'],
  [/l/i, '"L" (last day of the month or week)'],
  [/w/i, '"W" (nearest weekday)'],
];

/** The croner extension `pattern` uses, described, or undefined for plain cron. */
function extensionIn(pattern: string): string | undefined {
  const plain = pattern.replace(MONTH_NAMES, '').replace(DAY_NAMES, '');
  // Other letters left ("JULY"): a misspelt name, for croner to name, not an L or a W.
  const letters = !/[a-km-vx-z]/i.test(plain);
  return EXTENSIONS.find(([re]) => (letters || !re.ignoreCase) && re.test(plain))?.[1];
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

function canFire(pattern: string, p: CronPattern): boolean {
  if (extensionIn(pattern) !== undefined) return false;
  // A day of the week (either-or with the day of the month) matches in every month.
  return !p.starDOW || DAYS_IN_MONTH.some((days, m) => p.month[m] !== 0 && p.day.slice(0, days).some((x) => x !== 0));
}

// Parsed patterns are zone-independent: one per pattern is kept, because parsing one costs more
// than computing a next time. Bounded: cleared whole when full.
const schedules = new Map<string, CronSchedule>();
const MAX_CACHED = 4_096;

/** The parsed pattern; throws croner's error on a malformed one. croner's extensions parse, but never fire. */
function cronSchedule(pattern: string): CronSchedule {
  let s = schedules.get(pattern);
  if (s === undefined) {
    const parsed = new CronPattern(pattern, undefined, CRON_OPTIONS);
    s = { matcher: new Cron(pattern, CRON_OPTIONS), fixedTime: parsed.isFixedTime, canFire: canFire(pattern, parsed) };
    if (schedules.size >= MAX_CACHED) schedules.clear();
    schedules.set(pattern, s);
  }
  return s;
}

/**
 * The cron pattern of a time trigger: a single value in each of seconds, minutes and hours makes
 * it a fixed-time pattern, which fires a time skipped by spring-forward once at the first instant
 * after the gap, and a time repeated by fall-back once, at its first occurrence.
 */
export function timePattern(trigger: TimeTrigger): string {
  const [h, m, s = '0'] = trigger.at.split(':');
  // croner counts weekdays 0 = Sunday; WEEKDAYS starts at Monday.
  const days = trigger.days === undefined ? '*' : trigger.days.map((d) => (WEEKDAYS.indexOf(d) + 1) % 7).join(',');
  return `${Number(s)} ${Number(m)} ${Number(h)} * * ${days}`;
}

const dayOf = (wall: number): number => Math.floor(wall / DAY_MS);

/**
 * The first instant strictly after `afterMs` and at most `SCHEDULE_HORIZON_DAYS` after it at which
 * `s` fires in `timeZone`, walking the zone's spans of constant UTC offset: in each, one croner
 * search for the first wall-clock match, plus one for a spring-forward gap at its start. A few
 * searches in all, whatever the pattern and zone.
 */
function nextCron(s: CronSchedule, afterMs: number, timeZone: string): number | undefined {
  if (!s.canFire) return undefined;
  const limit = afterMs + HORIZON_MS;
  const next = (wall: number): number | undefined => {
    const m = s.matcher.nextRun(new Date(wall))?.getTime();
    // Strictly after is what croner promises; a match not after would make this walk repeat itself.
    if (m !== undefined && !(m > wall))
      throw new Error(`croner found ${m} as the next match after ${wall} for "${s.matcher.getPattern()}"`);
    return m;
  };
  for (const { start, end, offset, before } of offsetSpans(timeZone, afterMs, limit)) {
    if (s.fixedTime && start > afterMs && before < offset) {
      // Clocks went forward at `start`: wall times [start + before, start + offset) never happen.
      const m = next(start + before - 1);
      if (m !== undefined && m < start + offset && dayOf(m) === dayOf(start + offset)) return start <= limit ? start : undefined;
    }
    let from = Math.max(afterMs, start - 1) + offset;
    // Clocks went back at `start`: wall times [start + offset, start + before) come again; fixed-time fires at the first only.
    if (s.fixedTime && before > offset) from = Math.max(from, start + before - 1);
    const m = next(from);
    if (m === undefined || m - MAX_OFFSET_MS > limit) return undefined;
    if (m - offset < end) return m - offset <= limit ? m - offset : undefined;
  }
  return undefined;
}

/**
 * Why a rule may not use a cron expression (a reason to follow the field's name), or undefined
 * when it may. Accepted: plain cron of 5 fields, or 6 with seconds first — numbers, ranges, lists,
 * steps, `*`, month and day names; a day of the month and a day of the week both given means
 * either. Refused: croner's extensions (`@` nicknames, `+`, `#`, `?`, `L`, `W`), which our docs do
 * not promise and which let a pattern match nothing but times a DST change skips; a malformed
 * expression; and one that does not fire within `SCHEDULE_HORIZON_DAYS` from a fixed day in UTC
 * — one that never matches (31 February), or matches only on 29 February. This checks the pattern
 * alone: whether it fires within the horizon in a home's zone is the home's check, through
 * `nextFireTime`.
 */
export function cronExpressionError(expression: string): string | undefined {
  const extension = extensionIn(expression);
  if (extension !== undefined) {
    return `uses croner's ${extension}, which rules do not support: write plain cron, 5 fields or 6 with seconds first, of numbers, ranges, lists, steps, * and month or day names`;
  }
  let s: CronSchedule;
  try {
    s = cronSchedule(expression);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^CronPattern: /, '') : String(e);
    return `must be a cron expression of 5 fields, or 6 with seconds first: ${why}`;
  }
  if (!s.canFire) return 'never matches a time';
  // Every day of the year but 29 February lies in the 400 days from 1 January 2025 (to 5 February 2026).
  if (nextCron(s, Date.UTC(2025, 0, 1), 'UTC') === undefined)
    return `matches only 29 February: a schedule must fire within every ${SCHEDULE_HORIZON_DAYS} days`;
  return undefined;
}

/**
 * The first sunrise or sunset (moved by `offsetMs`) strictly after `afterMs`, searched solar day by
 * solar day; days without the event (polar day or night) are skipped.
 */
function nextSun(event: 'sunrise' | 'sunset', offsetMs: number, afterMs: number, where: GeoLocation): number | undefined {
  // suncalc computes the solar day whose noon is nearest the given instant: ask at each local
  // solar noon (12:00 UTC shifted by longitude), starting a day early to cover a negative offset.
  const solarNoon = Math.floor(afterMs / DAY_MS) * DAY_MS + DAY_MS / 2 - (where.longitude / 360) * DAY_MS;
  const firstDay = Math.floor((afterMs - offsetMs - solarNoon) / DAY_MS) - 1;
  for (let day = firstDay; day <= firstDay + SCHEDULE_HORIZON_DAYS + 2; day++) {
    const times = SunCalc.getTimes(new Date(solarNoon + day * DAY_MS), where.latitude, where.longitude);
    const at = times[event].getTime();
    if (Number.isNaN(at)) continue;
    const fire = Math.round(at / 1000) * 1000 + offsetMs;
    if (fire > afterMs) return fire - afterMs <= SCHEDULE_HORIZON_DAYS * DAY_MS ? fire : undefined;
  }
  return undefined;
}

/**
 * The first time (epoch ms) strictly after `afterMs` at which `trigger` fires in `where.timezone`,
 * or undefined when there is none within `SCHEDULE_HORIZON_DAYS`. time and cron: croner matches
 * the wall clock (whole seconds), this module maps it through the zone's DST changes (see
 * `CronSchedule.fixedTime`); a few croner searches per call in any zone. sun: suncalc's
 * sunrise/sunset at `where.location`, rounded to the second, plus the trigger's offset; undefined
 * without a location or in a year-long polar night. Inputs must be validated (a cron expression
 * with croner's extensions, which validation refuses, never fires); an unknown zone throws.
 */
export function nextFireTime(trigger: ScheduleTrigger, afterMs: number, where: ScheduleWhere): number | undefined {
  switch (trigger.type) {
    case 'time':
      return nextCron(cronSchedule(timePattern(trigger)), afterMs, where.timezone);
    case 'cron':
      return nextCron(cronSchedule(trigger.expression), afterMs, where.timezone);
    case 'sun': {
      if (where.location === undefined) return undefined;
      const offset = trigger.offset === undefined ? 0 : parseSignedDuration(trigger.offset);
      if (offset === undefined) throw new Error(`invalid sun offset ${JSON.stringify(trigger.offset)} (validate first)`);
      return nextSun(trigger.event, offset, afterMs, where.location);
    }
  }
}
