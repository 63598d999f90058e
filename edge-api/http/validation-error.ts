/**
 * Zod validation failures in the edge's error shape: one 400 `invalid_argument` listing the bad
 * fields, `{field, fields: [{field, message}]}` (`field` is the first, as before the schemas).
 */
import { z } from 'zod';
import { HttpError } from './http-error.ts';
import { shownKey } from './zod-messages.ts';

/** One bad field of a request: where (`add[0].weight`, `desired.on`, `limit`) and why (`must be …`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** The most entries `details.fields` lists; the message still counts every bad field. */
export const MAX_FIELD_PROBLEMS = 20;

/** A key that `.key` would misread (empty, or holding `.`, `[`, `]` or `"`): written `["a.b"]`. */
const NEEDS_QUOTES = /^$|[.[\]"]/;

/**
 * A path as our messages name it: `add[0].weight`, `weights.n1`, `weights["a.b"]`; `body` for the
 * body itself. Keys longer than KEY_SHOWN_MAX characters are cut with `…`.
 */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      continue;
    }
    const name = shownKey(String(key));
    if (NEEDS_QUOTES.test(name)) out += `[${JSON.stringify(name)}]`;
    else out += out === '' ? name : `.${name}`;
  }
  return out === '' ? 'body' : out;
}

/**
 * Every bad field of a zod failure: unknown keys first (one entry per key, as the hand-written
 * checks named an unknown key first), then the rest in the order zod found them.
 */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  const unknown: FieldProblem[] = [];
  const rest: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) unknown.push({ field: fieldPath([...issue.path, key]), message: issue.message });
    } else {
      rest.push({ field: fieldPath(issue.path), message: issue.message });
    }
  }
  return [...unknown, ...rest];
}

/**
 * The 400 of `problems` (at least one): the message names the first and counts the others,
 * `details.fields` lists the first MAX_FIELD_PROBLEMS.
 */
export function invalidFields(problems: readonly FieldProblem[]): HttpError {
  const first = problems[0] ?? { field: 'body', message: 'is not valid' };
  const others = problems.length - 1;
  const where = problems.length > MAX_FIELD_PROBLEMS ? `the first ${MAX_FIELD_PROBLEMS} are in details.fields` : 'see details.fields';
  const more = others > 0 ? ` (and ${others} more: ${where})` : '';
  return new HttpError('invalid_argument', `${first.field} ${first.message}${more}`, {
    field: first.field,
    fields: problems.slice(0, MAX_FIELD_PROBLEMS),
  });
}
