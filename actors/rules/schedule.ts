/** When a schedule trigger (time of day, cron, sunrise/sunset) fires next, in a home's time zone. */
import { Cron } from 'croner';
import SunCalc from 'suncalc';
import { parseSignedDuration } from './duration.ts';
import { WEEKDAYS, type GeoLocation, type ScheduleTrigger, type TimeTrigger } from './rule-types.ts';

const DAY_MS = 86_400_000;

/** How far ahead `nextFireTime` looks for a sun event (days): beyond it, there is none. */
export const SCHEDULE_HORIZON_DAYS = 400;

/** Where a home is: its IANA time zone (validated) and, for sun triggers, its location. */
export interface ScheduleWhere {
  readonly timezone: string;
  readonly location?: GeoLocation;
}

/** Cron patterns accept 5 fields, or 6 with seconds first; never the 7th (year) field. */
export const CRON_MODE = '5-or-6-parts';

// Paused Cron objects are pure calculators (no timer runs); one per (pattern, zone) is kept because
// parsing a pattern costs more than computing a next time. Bounded: cleared whole when full.
const crons = new Map<string, Cron>();
const MAX_CACHED = 4_096;

function cronFor(pattern: string, timezone: string): Cron {
  const key = `${timezone} ${pattern}`;
  let c = crons.get(key);
  if (c === undefined) {
    if (crons.size >= MAX_CACHED) crons.clear();
    // `paused` keeps croner from ever starting its own timer: the reminder holds the next time.
    c = new Cron(pattern, { timezone, paused: true, mode: CRON_MODE });
    crons.set(key, c);
  }
  return c;
}

/**
 * Parses a cron expression as a cron trigger does; throws croner's error on a malformed one.
 * The returned object never runs anything.
 */
export function parseCron(expression: string): Cron {
  return new Cron(expression, { paused: true, mode: CRON_MODE });
}

/**
 * The cron pattern of a time trigger: a single value in each of seconds, minutes and hours makes
 * it a croner "fixed-time" job, which fires a time skipped by spring-forward once at the first
 * instant after the gap, and a time repeated by fall-back once, at its first occurrence.
 */
export function timePattern(trigger: TimeTrigger): string {
  const [h, m, s = '0'] = trigger.at.split(':');
  // croner counts weekdays 0 = Sunday; WEEKDAYS starts at Monday.
  const days = trigger.days === undefined ? '*' : trigger.days.map((d) => (WEEKDAYS.indexOf(d) + 1) % 7).join(',');
  return `${Number(s)} ${Number(m)} ${Number(h)} * * ${days}`;
}

function nextCron(pattern: string, afterMs: number, timezone: string): number | undefined {
  // croner's nextRun(start) is strictly after `start` in whole seconds; the loop only guards that.
  const cron = cronFor(pattern, timezone);
  let from = afterMs;
  for (let i = 0; i < 3; i++) {
    const next = cron.nextRun(new Date(from))?.getTime();
    if (next === undefined) return undefined;
    if (next > afterMs) return next;
    from = Math.max(next, from) + 1_000;
  }
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
 * The first time (epoch ms) strictly after `afterMs` at which `trigger` fires, in `where.timezone`.
 * time and cron: computed by croner (whole seconds; undefined when a cron pattern never matches
 * again). sun: suncalc's sunrise/sunset at `where.location`, rounded to the second, plus the
 * trigger's offset; undefined without a location or when no such event happens within
 * `SCHEDULE_HORIZON_DAYS` (polar night). Inputs must be validated; an unknown zone throws.
 */
export function nextFireTime(trigger: ScheduleTrigger, afterMs: number, where: ScheduleWhere): number | undefined {
  switch (trigger.type) {
    case 'time':
      return nextCron(timePattern(trigger), afterMs, where.timezone);
    case 'cron':
      return nextCron(trigger.expression, afterMs, where.timezone);
    case 'sun': {
      if (where.location === undefined) return undefined;
      const offset = trigger.offset === undefined ? 0 : parseSignedDuration(trigger.offset);
      if (offset === undefined) throw new Error(`invalid sun offset ${JSON.stringify(trigger.offset)} (validate first)`);
      return nextSun(trigger.event, offset, afterMs, where.location);
    }
  }
}
