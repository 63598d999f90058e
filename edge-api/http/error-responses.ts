/**
 * The error responses of the document: the one error body, and each route's error statuses with an
 * example per code, in the messages the edge really sends.
 */
import { z, type RouteConfig } from '@hono/zod-openapi';
import { httpStatusOf, type ErrorCode } from '../error-codes.ts';
import { bodyTooLargeMessage, DEFAULT_MAX_BODY_BYTES } from './request-body-limit.ts';
import { MAX_FIELD_PROBLEMS } from './validation-error.ts';

/** One field entry of an `invalid_argument`. */
const FieldProblemSchema = z.object({ field: z.string(), message: z.string() });

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ description: 'Stable error code: clients switch on it.', example: 'not_found' }),
      message: z.string().openapi({ description: 'What went wrong, for people; never internals.' }),
      details: z
        .object({
          field: z.string().optional().openapi({ description: 'The first bad field (invalid_argument).' }),
          fields: z
            .array(FieldProblemSchema)
            .max(MAX_FIELD_PROBLEMS)
            .optional()
            .openapi({
              description: `The bad fields, unknown ones first (invalid_argument); at most ${MAX_FIELD_PROBLEMS}, the message counts them all.`,
            }),
          retryAfterSeconds: z.number().int().optional().openapi({ description: 'When to retry (rate_limited).' }),
        })
        .catchall(z.unknown())
        .optional(),
    }),
  })
  .openapi('Error');

type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** A typical message of each code, as the edge words it, for the examples of the error responses. */
const EXAMPLE_MESSAGES: Partial<Record<ErrorCode, string>> = {
  unauthenticated: 'missing bearer token: send Authorization: Bearer <token>',
  token_expired: 'the bearer token has expired',
  token_revoked: 'the bearer token was revoked',
  forbidden: 'the token lacks the control scope',
  not_found: 'home flat-1 not found',
  already_exists: 'hub hub-1 already exists in home flat-1: rotate its secret instead',
  failed_precondition: 'a ring change is still moving shards (12 pending): retry when it is done',
  version_conflict: 'the shadow is at version 8, not 7',
  idempotency_conflict: 'command light1~k1 exists with another body',
  payload_too_large: bodyTooLargeMessage(DEFAULT_MAX_BODY_BYTES),
  unsupported_media_type: 'the request body needs Content-Type: application/json',
  rate_limited: 'too many requests for this token: retry in 1 s',
  resource_exhausted: 'the home has spent its command budget: retry later',
  overloaded: 'the actor is busy: retry in a moment',
  unavailable: 'credentials cannot be checked right now',
  timeout: 'the actor did not answer in time',
};

/** The bad field of a route's 400 example: a field of its own, with the reason the route gives. */
export interface InvalidExample {
  readonly field: string;
  readonly message: string;
}

export const invalidExample = (field: string, message: string): InvalidExample => ({ field, message });

/** What a route without an example of its own shows: the guard's check of a path id. */
const BAD_HOME_ID = invalidExample('homeId', 'must be 1 to 64 letters, digits, _ . or -');

function exampleError(code: ErrorCode, invalid: InvalidExample): ErrorBody {
  if (code === 'invalid_argument') {
    const { field, message } = invalid;
    return { error: { code, message: `${field} ${message}`, details: { field, fields: [{ field, message }] } } };
  }
  const message = EXAMPLE_MESSAGES[code] ?? code.replaceAll('_', ' ');
  if (code === 'rate_limited') return { error: { code, message, details: { retryAfterSeconds: 1 } } };
  if (code === 'unsupported_media_type') return { error: { code, message, details: { field: 'Content-Type' } } };
  return { error: { code, message } };
}

/**
 * Every guarded route can answer these: no, an expired or a revoked token, a malformed path id, a
 * rate limit, a node that cannot answer.
 */
const GUARD_CODES: readonly ErrorCode[] = [
  'invalid_argument',
  'unauthenticated',
  'token_expired',
  'token_revoked',
  'forbidden',
  'rate_limited',
  'unavailable',
];

/** What a route that reads a body can answer besides: a body over the limit, one not declared JSON. */
export const BODY_CODES: readonly ErrorCode[] = ['payload_too_large', 'unsupported_media_type'];

/** The header of a 429: the seconds to wait (rate_limited, overloaded). */
const RETRY_AFTER = {
  'Retry-After': {
    description: 'Seconds to wait before retrying (rate_limited, overloaded).',
    schema: { type: 'integer' as const, minimum: 1 },
    example: 1,
  },
};

type Responses = RouteConfig['responses'];

/**
 * The error responses of a route: the guard's (400 of a bad path id, 401, 403, 429, 503) and
 * `codes`, grouped by status, each status with one example per code. An InvalidExample among them
 * is the route's 400 example (a field of that route); without one the example is a bad homeId.
 */
export function errorResponses(...items: (ErrorCode | InvalidExample)[]): Responses {
  const invalid = items.find((i): i is InvalidExample => typeof i === 'object') ?? BAD_HOME_ID;
  const codes = items.filter((i): i is ErrorCode => typeof i === 'string');
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...GUARD_CODES, ...codes])) {
    const status = httpStatusOf(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Responses = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.join(', '),
      ...(status === 429 ? { headers: RETRY_AFTER } : {}),
      content: {
        'application/json': {
          schema: ErrorBodySchema,
          examples: Object.fromEntries(list.map((code) => [code, { value: exampleError(code, invalid) }])),
        },
      },
    };
  }
  return out;
}

/** The 413 and 415 of a route that reads a body (declareRoute adds them to every such route). */
export function bodyErrorResponses(): Responses {
  const all = errorResponses(...BODY_CODES);
  return Object.fromEntries(BODY_CODES.map((code) => String(httpStatusOf(code))).map((status) => [status, all[status]!]));
}

/**
 * `responses` without the `invalid_argument` example, for a route that takes no input (no path id,
 * query or body): nothing of it can be invalid. A 400 left with no example is dropped.
 */
export function withoutInvalidArgument(responses: Responses): Responses {
  const bad = responses['400'];
  const media = bad !== undefined && 'content' in bad ? bad.content?.['application/json'] : undefined;
  const examples = media !== undefined && 'examples' in media ? media.examples : undefined;
  if (examples?.invalid_argument === undefined) return responses;
  const { invalid_argument: _dropped, ...others } = examples;
  const { '400': _bad, ...rest } = responses;
  if (Object.keys(others).length === 0) return rest;
  const codes = Object.keys(others);
  return {
    ...rest,
    400: { description: codes.join(', '), content: { 'application/json': { schema: ErrorBodySchema, examples: others } } },
  };
}
