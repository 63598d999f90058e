/** Event ids as Redis stream ids `<ms>-<n>`: parsing and ordering, for the feeds and the resumption check. */

/** A well-formed event id: `<ms>-<n>`, both decimal without sign (at most 15 digits each, so exact as numbers). */
const EVENT_ID = /^(\d{1,15})-(\d{1,15})$/;

/** The two parts of an event id, or undefined when `id` is not one (an old numeric id, garbage). */
export function parseEventId(id: string): readonly [number, number] | undefined {
  const m = EVENT_ID.exec(id);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** True when `id` is a well-formed event id. */
export const isEventId = (id: string): boolean => EVENT_ID.test(id);

/** Orders two well-formed event ids (negative: `a` first). */
export function compareEventIds(a: string, b: string): number {
  const [am, an] = parseEventId(a) ?? [0, 0];
  const [bm, bn] = parseEventId(b) ?? [0, 0];
  return am !== bm ? am - bm : an - bn;
}

/** The greatest well-formed id before `id` (a position just before it: not an id any log holds). */
export function eventIdBefore(id: string): string {
  const [ms, n] = parseEventId(id) ?? [0, 0];
  if (n > 0) return `${ms}-${n - 1}`;
  return ms > 0 ? `${ms - 1}-999999999999999` : '0-0';
}

/** Orders an event id against a parsed one (deliver's hot path: the follower's position is parsed once). */
export function compareEventIdTo(a: string, b: readonly [number, number]): number {
  const [am, an] = parseEventId(a) ?? [0, 0];
  return am !== b[0] ? am - b[0] : an - b[1];
}

/** The least well-formed id after `id` (a log entry with this id would directly follow it). */
export function eventIdAfter(id: string): string {
  const [ms, n] = parseEventId(id) ?? [0, 0];
  return `${ms}-${n + 1}`;
}
