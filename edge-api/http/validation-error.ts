/**
 * Zod validation failures in the edge's error shape: one 400 `invalid_argument` listing every bad
 * field, `{field, fields: [{field, message}]}` (`field` is the first, as before the schemas).
 */
import type { Context } from 'hono';
import { z } from 'zod';
import { HttpError } from './http-error.ts';

/** One bad field of a request: where (`add[0].weight`, `desired.on`, `limit`) and why (`must be …`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** A path as our messages name it: `add[0].weight`, `weights.n1`; `body` for the body itself. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? 'body' : out;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  record: 'an object',
};

/**
 * Our phrasing of zod's default messages: a reason that follows the field name (`limit must be an
 * integer`). A message a schema sets itself (`{error: 'must be …'}`) wins over this. Global to the
 * process (zod's `config`), so it is set once, here, on import of the edge.
 */
z.config({
  customError: (iss) => {
    switch (iss.code) {
      case 'invalid_type':
        return iss.input === undefined ? 'is required' : `must be ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
      case 'too_small':
        if (iss.origin === 'string') return `must be at least ${String(iss.minimum)} characters`;
        if (iss.origin === 'array') return `must hold at least ${String(iss.minimum)} items`;
        return `must be at least ${String(iss.minimum)}`;
      case 'too_big':
        if (iss.origin === 'string') return `must be at most ${String(iss.maximum)} characters`;
        if (iss.origin === 'array') return `must hold at most ${String(iss.maximum)} items`;
        return `must be at most ${String(iss.maximum)}`;
      case 'invalid_value':
        return `must be one of ${iss.values.map((v) => String(v)).join(', ')}`;
      case 'invalid_format':
        return 'is not in the expected format';
      case 'unrecognized_keys': {
        const shape = (iss.inst as { shape?: Record<string, unknown> } | undefined)?.shape;
        return shape === undefined ? 'is not a known field' : `is not a known field (expected ${Object.keys(shape).join(', ')})`;
      }
      default:
        return undefined;
    }
  },
});

/** Every bad field of a zod failure, in the order zod found them; unknown keys are one entry each. */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ field: fieldPath([...issue.path, key]), message: issue.message });
    } else {
      out.push({ field: fieldPath(issue.path), message: issue.message });
    }
  }
  return out;
}

/** The 400 of `problems` (at least one): the message names the first, `details` lists them all. */
export function invalidFields(problems: readonly FieldProblem[]): HttpError {
  const first = problems[0] ?? { field: 'body', message: 'is not valid' };
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more: see details.fields)` : '';
  return new HttpError('invalid_argument', `${first.field} ${first.message}${more}`, { field: first.field, fields: problems });
}

/**
 * The OpenAPI app's `defaultHook`: a failed validation of params, query, headers or body throws
 * the one 400 (the app's error handler renders it); a success goes on to the handler.
 */
export function throwOnInvalid(result: { success: true } | { success: false; error: z.ZodError }, _c: Context): void {
  if (!result.success) throw invalidFields(fieldProblems(result.error));
}
