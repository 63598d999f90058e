/**
 * What every route's OpenAPI declaration shares: the error body and its examples, path and query
 * parameters, the security requirements, and JSON request bodies. Route modules declare their own
 * request and response schemas with these; the same schemas validate requests and describe them
 * in `GET /openapi.json`.
 */
import { z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Env, MiddlewareHandler } from 'hono';
import { HOME_ID } from '../../actors/actor-id.ts';
import { httpStatusOf, type ErrorCode } from '../error-codes.ts';
import { PATH_ID_MAX, readJsonObject } from './request-input.ts';
import type { Policy } from './route-context.ts';
import './validation-error.ts';

export { z };

/** The edge app every route module registers on: routes declared with their schemas (`app.openapi`). */
export type EdgeApp = OpenAPIHono<Env>;

/** Security scheme names in the document. */
export const ADMIN_SCHEME = 'adminToken';
export const APP_SCHEME = 'appToken';

/**
 * The security requirement of a route guarded by `policy`: the admin token, or an app token with
 * the scope (the admin token passes every guard, so it is listed as the alternative). OpenAPI
 * 3.1 lets a bearer scheme name the roles it needs; ours are the token's scopes.
 */
export function securityOf(policy: Policy): NonNullable<RouteConfig['security']> {
  return policy === 'admin' ? [{ [ADMIN_SCHEME]: [] }] : [{ [APP_SCHEME]: [policy] }, { [ADMIN_SCHEME]: [] }];
}

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
          fields: z.array(FieldProblemSchema).optional().openapi({ description: 'Every bad field (invalid_argument).' }),
          retryAfterSeconds: z.number().int().optional().openapi({ description: 'When to retry (rate_limited).' }),
        })
        .catchall(z.unknown())
        .optional(),
    }),
  })
  .openapi('Error');

/** A typical message of each code, for the examples of the error responses. */
const EXAMPLE_MESSAGES: Partial<Record<ErrorCode, string>> = {
  invalid_argument: 'limit must be an integer from 1 to 200',
  unauthenticated: 'missing bearer token: send Authorization: Bearer <token>',
  token_expired: 'the bearer token has expired',
  token_revoked: 'the bearer token was revoked',
  forbidden: 'the token lacks the control scope',
  not_found: 'home flat-1 not found',
  already_exists: 'hub hub-1 already exists in home flat-1: rotate its secret instead',
  failed_precondition: 'a ring change is still moving shards (12 pending): retry when it is done',
  version_conflict: 'the shadow is at version 8, not 7',
  idempotency_conflict: 'command light1~k1 exists with another body',
  payload_too_large: 'the request body is over 65536 bytes',
  unsupported_media_type: 'the request body needs Content-Type: application/json',
  rate_limited: 'too many requests for this token: retry in 1 s',
  resource_exhausted: 'the home has spent its command budget: retry later',
  overloaded: 'the actor is busy: retry in a moment',
  unavailable: 'credentials cannot be checked right now',
  timeout: 'the actor did not answer in time',
};

function exampleError(code: ErrorCode): z.infer<typeof ErrorBodySchema> {
  const message = EXAMPLE_MESSAGES[code] ?? code.replaceAll('_', ' ');
  if (code === 'invalid_argument') {
    return {
      error: { code, message, details: { field: 'limit', fields: [{ field: 'limit', message: 'must be an integer from 1 to 200' }] } },
    };
  }
  if (code === 'rate_limited') return { error: { code, message, details: { retryAfterSeconds: 1 } } };
  return { error: { code, message } };
}

/** Every guarded route can answer these: no or a bad token, a malformed path id, a rate limit, a node that cannot answer. */
const GUARD_CODES: readonly ErrorCode[] = ['invalid_argument', 'unauthenticated', 'forbidden', 'rate_limited', 'unavailable'];

type Responses = RouteConfig['responses'];

/**
 * The error responses of a route: the guard's (401, 403, 429, 503 and the 400 of a bad path id)
 * and `codes`, grouped by status, each status with one example per code.
 */
export function errorResponses(...codes: ErrorCode[]): Responses {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...GUARD_CODES, ...codes])) {
    const status = httpStatusOf(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Responses = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.join(', '),
      content: {
        'application/json': {
          schema: ErrorBodySchema,
          examples: Object.fromEntries(list.map((code) => [code, { value: exampleError(code) }])),
        },
      },
    };
  }
  return out;
}

/** A JSON success response with its schema and example. */
export function jsonResponse<S extends z.ZodType>(description: string, schema: S, example: z.input<S>) {
  return { description, content: { 'application/json': { schema, example } } } as const;
}

/** A success without a body (204). */
export const noContent = { description: 'Done; no body.' } as const;

/**
 * A required JSON request body of `schema`, with its example. The route puts `jsonBody` in its
 * middleware (after its guard) so the body keeps the edge's checks and messages (415 for a body
 * that is not declared JSON, 400 `body` for one that is empty, malformed or not an object);
 * the schema then validates what it holds.
 */
export function jsonRequest<S extends z.ZodType>(schema: S, example: z.input<S>, description?: string) {
  return {
    required: true,
    ...(description === undefined ? {} : { description }),
    content: { 'application/json': { schema, example } },
  } as const;
}

/**
 * Reads the request body as a JSON object with the edge's checks (415, 400 `body`, a client that
 * ends the request early is a 400, not a 500). The schema validator that follows reads the same
 * text from Hono's body cache (read once) and parses it again: Hono's `req.json()` always parses
 * the cached text. A second parse of a body of at most maxBodyBytes (64 KiB by default) on write
 * routes only, accepted for keeping one reading of the body; GET routes read no body.
 */
export const jsonBody: MiddlewareHandler = async (c, next) => {
  await readJsonObject(c);
  await next();
};

/** A path id other than homeId: 1..128 characters (the guard checks it first, with the same rule). */
export const pathId = (name: string, example: string, description: string) =>
  z
    .string()
    .min(1)
    .max(PATH_ID_MAX)
    .openapi({ param: { name, in: 'path' }, example, description });

/** The home id of a path: 1..64 letters, digits, `_ . -`. */
export const homeIdParam = z
  .string()
  .regex(HOME_ID, { error: 'must be 1 to 64 letters, digits, _ . or -' })
  .openapi({ param: { name: 'homeId', in: 'path' }, example: 'flat-1', description: 'The home.' });

/**
 * An optional integer query parameter in min..max (decimal digits only), `fallback` when absent:
 * the handler reads a number.
 */
export function queryInt(min: number, max: number, fallback: number, description: string) {
  return z
    .string()
    .regex(/^\d{1,9}$/, { error: `must be an integer from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be an integer from ${min} to ${max}` })
        .max(max, { error: `must be an integer from ${min} to ${max}` }),
    )
    .optional()
    .transform((n) => n ?? fallback)
    .openapi({ type: 'integer', minimum: min, maximum: max, default: fallback, description, example: fallback });
}
