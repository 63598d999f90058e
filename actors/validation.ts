/** Field checks for untrusted device and hub input; each returns the first bad field as a DomainError. */
import type { DomainError, Outcome } from './types.ts';

/** Size limits of values and names, in UTF-16 code units. */
export const VALUE_LIMITS = {
  /** Attribute, command, event, capability and device-type names. */
  nameLength: 64,
  /** Device, hub, node and command ids. */
  idLength: 128,
  /** String values. */
  textLength: 1024,
  /** Entries in one attribute or parameter map. */
  attributesPerMessage: 64,
} as const;

/** The success value of an Outcome. */
export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

/** An `invalid_argument` error: `field` is a path such as `devices[3].deviceId`; the message starts with it. */
export const invalid = (field: string, reason: string): DomainError => ({ code: 'invalid_argument', field, message: `${field} ${reason}` });

/** `rec[key]` if it is an own property (ids from the wire must not reach Object.prototype). */
export const ownGet = <T>(rec: Readonly<Record<string, T>>, key: string): T | undefined => (Object.hasOwn(rec, key) ? rec[key] : undefined);

/** A key (name or id): a string of 1..max characters, not `__proto__`. */
export const checkKey = (field: string, key: unknown, max: number): DomainError | undefined =>
  typeof key !== 'string' || key.length === 0 || key.length > max
    ? invalid(field, `must be a string of 1-${max} characters`)
    : key === '__proto__'
      ? invalid(field, 'is a reserved name')
      : undefined;

/** A Value: a finite number, a boolean, or a string of at most `textLength` characters. */
export const checkValue = (field: string, v: unknown): DomainError | undefined => {
  if (typeof v === 'boolean') return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : invalid(field, 'must be a finite number');
  if (typeof v !== 'string') return invalid(field, 'must be a number, boolean or string');
  return v.length <= VALUE_LIMITS.textLength ? undefined : invalid(field, `must be at most ${VALUE_LIMITS.textLength} characters`);
};

/** A safe integer in min..max. */
export const checkInt = (field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): DomainError | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max
    ? undefined
    : invalid(field, `must be an integer in ${min}..${max}`);

/** A map of at most `attributesPerMessage` named Values; `allowNull` admits `null` (removal). */
export function checkValues(field: string, rec: unknown, allowNull: boolean): DomainError | undefined {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return invalid(field, 'must be an object');
  const entries = Object.entries(rec);
  const max = VALUE_LIMITS.attributesPerMessage;
  if (entries.length > max) return invalid(field, `must have at most ${max} entries`);
  for (const [k, v] of entries) {
    const path = `${field}.${k}`;
    const e = checkKey(path, k, VALUE_LIMITS.nameLength) ?? (allowNull && v === null ? undefined : checkValue(path, v));
    if (e) return e;
  }
  return undefined;
}

/** An array of at most `maxItems` names, each 1..`nameLength` characters. */
export function checkNames(field: string, xs: unknown, maxItems: number): DomainError | undefined {
  if (!Array.isArray(xs) || xs.length > maxItems) return invalid(field, `must be an array of at most ${maxItems} names`);
  for (const [i, x] of xs.entries()) {
    const e = checkKey(`${field}[${i}]`, x, VALUE_LIMITS.nameLength);
    if (e) return e;
  }
  return undefined;
}

/**
 * Whether `s` holds a C0 or C1 control character (or DEL): never part of an id, and not to be
 * echoed into logs or audit entries. The edges refuse such ids (path ids, a hub's device ids); the
 * reducers do not, so journals written before the edges did still replay as decided.
 */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}
