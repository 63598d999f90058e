/** Durations as written in rules (`"500ms"`, `"90s"`, `"1h30m"`, signed `"-30m"`), to and from milliseconds. */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Upper bounds (milliseconds) that rule validation applies to each kind of duration. */
export const DURATION_LIMITS = {
  /** `for` of an attribute trigger. */
  maxFor: 7 * DAY,
  /** `for` of a delay action. */
  maxDelay: 7 * DAY,
  /** A rule's `misfireGrace`. */
  maxMisfireGrace: DAY,
  /** |offset| of a sun trigger. */
  maxSunOffset: 6 * HOUR,
} as const;

/** Longest accepted duration text: longer strings are refused before any parsing. */
const MAX_TEXT = 64;

// Units in descending order, each at most once; `m(?!s)` keeps "5ms" from reading as minutes.
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNIT_MS = [DAY, HOUR, MINUTE, SECOND, 1] as const;

/** Milliseconds of an unsigned duration body, or undefined if malformed or not a safe integer. */
function parseBody(body: string): number | undefined {
  if (body.length === 0 || body.length > MAX_TEXT) return undefined;
  const m = DURATION.exec(body);
  if (m === null) return undefined;
  let total = 0;
  for (let i = 0; i < UNIT_MS.length; i++) {
    const digits = m[i + 1];
    if (digits === undefined) continue;
    total += Number(digits) * UNIT_MS[i]!;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * Milliseconds (> 0) of a duration: one or more `<integer><unit>` parts, units `d`, `h`, `m`,
 * `s`, `ms` in that order, each at most once, no sign and no spaces (`"500ms"`, `"90s"`,
 * `"1h30m"`). Undefined for anything else, for zero (`"0s"`) and for totals beyond
 * Number.MAX_SAFE_INTEGER milliseconds.
 */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const ms = parseBody(text);
  return ms === undefined || ms === 0 ? undefined : ms;
}

/**
 * Milliseconds of a signed duration: an optional `+` or `-` before a duration (`"-30m"` →
 * −1 800 000, `"+1h"`, `"15m"`). Zero is allowed (`"0m"` → 0, never −0). Undefined when malformed.
 */
export function parseSignedDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const sign = text.startsWith('-') ? -1 : 1;
  const ms = parseBody(text.startsWith('-') || text.startsWith('+') ? text.slice(1) : text);
  if (ms === undefined) return undefined;
  return ms === 0 ? 0 : sign * ms;
}

/**
 * The canonical text of a duration in milliseconds (a safe integer): the largest units first,
 * zero parts left out (`5_400_000` → `"1h30m"`), `"0s"` for zero, a leading `-` when negative.
 * `parseSignedDuration(formatDuration(ms)) === ms` for every safe integer.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`not a whole number of milliseconds: ${ms}`);
  if (ms === 0) return '0s';
  let rest = Math.abs(ms);
  let out = ms < 0 ? '-' : '';
  const units = ['d', 'h', 'm', 's', 'ms'] as const;
  for (let i = 0; i < UNIT_MS.length; i++) {
    const n = Math.floor(rest / UNIT_MS[i]!);
    if (n === 0) continue;
    out += `${n}${units[i]}`;
    rest -= n * UNIT_MS[i]!;
  }
  return out;
}
