/** The constructor-time check of a count or size setting, shared so every module refuses a bad one the same way. */

/** `value` when it is a positive safe integer; otherwise a RangeError naming `name` (a wiring or configuration bug). */
export function requirePositiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
