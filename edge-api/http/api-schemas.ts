/**
 * What every route's OpenAPI declaration shares: the error body and its examples, path and query
 * parameters, the security requirements, and JSON request bodies. Route modules declare their own
 * request and response schemas with these; the same schemas validate requests and describe them
 * in `GET /openapi.json`.
 */
import { z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Env } from 'hono';
import { HOME_ID } from '../../actors/actor-id.ts';
import { PATH_ID_MAX } from './request-input.ts';
import type { Policy } from './route-context.ts';
// Our phrasing of zod's messages, set for the whole process (z.config) before any schema is used.
import './zod-messages.ts';

export { z };

/** The edge app every route module registers on: routes declared with their schemas (`declareRoute`). */
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

export { ErrorBodySchema, errorResponses, invalidExample, type InvalidExample } from './error-responses.ts';

/** A JSON success response with its schema and example. */
export function jsonResponse<S extends z.ZodType>(description: string, schema: S, example: z.input<S>) {
  return { description, content: { 'application/json': { schema, example } } } as const;
}

/** A success without a body (204). */
export const noContent = { description: 'Done; no body.' } as const;

/**
 * A required JSON request body of `schema`, with its example. `declareRoute` reads it after the
 * route's middleware (its guard) with the edge's checks and messages (415 for a body that is not
 * declared JSON, 400 `body` for one that is empty, malformed or not an object); the schema then
 * validates what it holds.
 */
export function jsonRequest<S extends z.ZodType>(schema: S, example: z.input<S>, description?: string) {
  return {
    required: true,
    ...(description === undefined ? {} : { description }),
    content: { 'application/json': { schema, example } },
  } as const;
}

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
