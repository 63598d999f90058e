/** Local wall-clock time in a home's IANA time zone, and daily time windows that may cross midnight. */

const MINUTES_PER_DAY = 1440;
const MS_PER_MINUTE = 60_000;

// One formatter per zone: constructing an Intl.DateTimeFormat costs far more than using one.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Minutes since local midnight (0..1439) at `nowMs` (epoch ms) in `timeZone`, read from the zone's
 * wall clock, so DST shifts are honoured: on a spring-forward day local time jumps from 01:59 to
 * 03:00, on a fall-back day 01:00–01:59 happens twice. Throws on an unknown zone (validate first).
 */
export function localMinutes(nowMs: number, timeZone: string): number {
  if (timeZone === 'UTC') {
    // Fast path for the default zone; also the reference the tests compare Intl against.
    return Math.floor(nowMs / MS_PER_MINUTE) - Math.floor(nowMs / 86_400_000) * MINUTES_PER_DAY;
  }
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timeZone).formatToParts(nowMs)) {
    if (part.type === 'hour')
      hour = Number(part.value) % 24; // some ICU versions print 24 at midnight
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return hour * 60 + minute;
}

/** Parses `HH:MM` (00:00..23:59) into minutes since midnight; throws on a malformed time (validate first). */
export function parseHHMM(hhmm: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (m === null) throw new Error(`not a time HH:MM: ${JSON.stringify(hhmm)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Formats minutes since midnight as `HH:MM`. */
export function formatHHMM(minutes: number): string {
  const m = ((Math.floor(minutes) % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/**
 * Whether local minute `minutes` lies in the daily window [after, before): `after` inclusive,
 * `before` exclusive, both minutes since midnight. `after > before` crosses midnight;
 * `after == before` is the whole day.
 */
export function minutesInWindow(minutes: number, after: number, before: number): boolean {
  if (after === before) return true;
  if (after < before) return minutes >= after && minutes < before;
  return minutes >= after || minutes < before;
}

/**
 * Whether the instant `nowMs` falls in the daily window from `after` to `before` (`HH:MM`, local
 * time in `timeZone`). After 18:00 before 06:00 includes 23:30 and 05:59 and excludes 06:00 and
 * 12:00. A window whose bounds fall into a DST gap simply has fewer minutes that day.
 */
export function inWindow(nowMs: number, timeZone: string, after: string, before: string): boolean {
  return minutesInWindow(localMinutes(nowMs, timeZone), parseHHMM(after), parseHHMM(before));
}

/** Local time `HH:MM` at `nowMs` in `timeZone`, as shown in the decision log. */
export function localHHMM(nowMs: number, timeZone: string): string {
  return formatHHMM(localMinutes(nowMs, timeZone));
}
