/**
 * Our phrasing of zod's default messages: a reason that follows the field name (`limit must be an
 * integer from 1 to 200`). A message a schema sets itself (`{error: 'must be …'}`) wins over these.
 */
import { z } from 'zod';

/** The longest key a message or field path quotes; longer ones are cut with `…`. */
export const KEY_SHOWN_MAX = 64;

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  record: 'an object',
  null: 'null',
};

/** A key as a message shows it: cut at KEY_SHOWN_MAX characters. */
export const shownKey = (key: string): string => (key.length > KEY_SHOWN_MAX ? `${key.slice(0, KEY_SHOWN_MAX)}…` : key);

/** `1 item`, `3 items`. */
const count = (n: number | bigint, unit: string): string => `${String(n)} ${unit}${Number(n) === 1 ? '' : 's'}`;

/** `a or b`, `a, b, or c`. */
function oneOf(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')}${names.length > 2 ? ',' : ''} or ${names[names.length - 1]}`;
}

type Issue = z.core.$ZodRawIssue;

function tooSmall(iss: Extract<Issue, { code: 'too_small' }>): string {
  const min = iss.minimum;
  if (iss.origin === 'string')
    return iss.inclusive === false ? `must be longer than ${count(min, 'character')}` : `must be at least ${count(min, 'character')}`;
  if (iss.origin === 'array' || iss.origin === 'set')
    return iss.inclusive === false ? `must hold more than ${count(min, 'item')}` : `must hold at least ${count(min, 'item')}`;
  return iss.inclusive === false ? `must be more than ${String(min)}` : `must be at least ${String(min)}`;
}

function tooBig(iss: Extract<Issue, { code: 'too_big' }>): string {
  const max = iss.maximum;
  if (iss.origin === 'string')
    return iss.inclusive === false ? `must be shorter than ${count(max, 'character')}` : `must be at most ${count(max, 'character')}`;
  if (iss.origin === 'array' || iss.origin === 'set')
    return iss.inclusive === false ? `must hold fewer than ${count(max, 'item')}` : `must hold at most ${count(max, 'item')}`;
  return iss.inclusive === false ? `must be less than ${String(max)}` : `must be at most ${String(max)}`;
}

/**
 * A union: a discriminated one names its discriminator's values (the issue's path is the
 * discriminator); a union of plain types names the types; anything else points at the document.
 */
function union(iss: Extract<Issue, { code: 'invalid_union' }>): string {
  const options = (iss as { options?: readonly unknown[] }).options;
  if (options !== undefined && options.length > 0) return `must be one of ${options.map(String).join(', ')}`;
  const expected = iss.errors.map((branch) => {
    const only = branch.length === 1 ? branch[0] : undefined;
    return only?.code === 'invalid_type' && only.path.length === 0 ? only.expected : undefined;
  });
  if (expected.length > 0 && expected.every((e) => e !== undefined)) {
    return `must be ${oneOf([...new Set(expected)].map((e) => TYPE_NAMES[e] ?? e))}`;
  }
  return 'must be one of the documented forms';
}

/** `is not a known field (expected name, timezone)`: every unknown key is its own entry (validation-error.ts). */
function unknownKeys(iss: Extract<Issue, { code: 'unrecognized_keys' }>): string {
  const shape = (iss.inst as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape === undefined ? 'is not a known field' : `is not a known field (expected ${Object.keys(shape).join(', ')})`;
}

/** Our reason for a zod issue, or undefined for zod's own. */
function reasonOf(iss: Issue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? 'is required' : `must be ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
    case 'too_small':
      return tooSmall(iss);
    case 'too_big':
      return tooBig(iss);
    case 'invalid_value':
      return iss.values.length === 1 ? `must be ${String(iss.values[0])}` : `must be one of ${iss.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_format':
      return 'is not in the expected format';
    case 'not_multiple_of':
      return `must be a multiple of ${String(iss.divisor)}`;
    case 'invalid_union':
      return union(iss);
    case 'invalid_key':
      return 'is not a valid key';
    case 'invalid_element':
      return 'holds an invalid element';
    case 'unrecognized_keys':
      return unknownKeys(iss);
    case 'custom':
      return 'is not valid';
    default:
      return undefined;
  }
}

// Global to the process (zod's `config`): set once, here, on import of the edge.
z.config({ customError: reasonOf });
