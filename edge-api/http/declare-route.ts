/**
 * `declareRoute`: registers a route declared with `createRoute` for the OpenAPI document and
 * serves it with our own validators over the same zod schemas (instead of `app.openapi`, whose
 * validators read the request's headers, take a repeated query key as an array, answer some
 * JSON Content-Types with a bare 415 and parse the JSON body a second time).
 */
import type { RouteConfig, RouteHandler } from '@hono/zod-openapi';
import type { Context, Env, MiddlewareHandler, ValidationTargets } from 'hono';
import type { ZodType } from 'zod';
import { securityOf, type EdgeApp } from './api-schemas.ts';
import { bodyErrorResponses, withoutInvalidArgument } from './error-responses.ts';
import { readBodyText, readJsonObject, type JsonObject } from './request-input.ts';
import { fieldProblems, invalidFields, type FieldProblem } from './validation-error.ts';
import { policyOfGuard } from './access-guard.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** The request's JSON body, parsed once by the route's `jsonBody` step (`{}` for an empty optional body). */
    jsonBody: JsonObject;
  }
}

/** Reads a required JSON object body with the edge's checks (415 unless declared JSON, 400 `body` unless an object). */
const requiredJsonBody: MiddlewareHandler = async function jsonBody(c, next) {
  c.set('jsonBody', await readJsonObject(c));
  await next();
};

/**
 * Reads an optional JSON object body: an empty one is `{}` whatever its Content-Type (or none, as a
 * body-less `curl -X POST` sends); anything else is read as a required body is.
 */
const optionalJsonBody: MiddlewareHandler = async function jsonBody(c, next) {
  c.set('jsonBody', (await readBodyText(c)).trim() === '' ? {} : await readJsonObject(c));
  await next();
};

/** One request part to validate: where its value comes from, and its schema; the result is `c.req.valid(target)`. */
interface PartCheck {
  readonly target: keyof ValidationTargets;
  readonly schema: ZodType;
  readonly read: (c: Context) => unknown;
}

/**
 * Validates every part of `checks` on `c` (each failure is the one 400). Runs inside the handler's
 * own call, not as a middleware of its own: one async layer less per request on every route.
 */
function validateParts(c: Context, checks: readonly PartCheck[]): void {
  let problems: FieldProblem[] | undefined;
  for (const { target, schema, read } of checks) {
    const result = schema.safeParse(read(c));
    // Every part is checked before the 400, so it lists the bad fields of the path, query and body at once.
    if (!result.success) (problems ??= []).push(...fieldProblems(result.error));
    else c.req.addValidatedData(target, result.data as object);
  }
  if (problems !== undefined) throw invalidFields(problems);
}

/**
 * The responses of `route` as documented: with 413 and 415 when it reads a body (documented once,
 * here), without the 400 of a bad input when it takes none.
 */
function documentedErrors(route: RouteConfig, readsBody: boolean): RouteConfig['responses'] {
  if (readsBody) return { ...bodyErrorResponses(), ...route.responses };
  const takesInput = route.request?.params !== undefined || route.request?.query !== undefined;
  return takesInput ? route.responses : withoutInvalidArgument(route.responses);
}

/** The zod schema of a request body's `application/json` content, if the route declares one. */
function jsonSchemaOf(route: RouteConfig): { schema: ZodType; required: boolean } | undefined {
  const body = route.request?.body;
  if (body === undefined) return undefined;
  const media = body.content['application/json'];
  const schema: unknown = media !== undefined && 'schema' in media ? media.schema : undefined;
  if (typeof schema !== 'object' || schema === null || !('safeParse' in schema) || Object.keys(body.content).length !== 1) {
    throw new Error(`${route.method} ${route.path}: a request body must be one application/json zod schema`);
  }
  return { schema: schema as ZodType, required: body.required === true };
}

/**
 * Declares `route` in the document (unless `hide`) and serves it: the route's middleware (its
 * guard first), then, for a JSON body, one read of it (`c.get('jsonBody')`), then the params
 * (`c.req.param()`), query (`c.req.query()`: the first value of a repeated key) and body
 * validators, then `handler`, typed as `app.openapi` types it (`c.req.valid(...)`, responses
 * checked against the declared ones). No validator reads a request header. Headers and cookies
 * are not validated by schema: a route reads its headers itself (request-input.ts). Throws at
 * registration for a body other than one application/json zod schema, or a header schema.
 */
export function declareRoute<R extends RouteConfig>(app: EdgeApp, route: R, handler: RouteHandler<R, Env>): void {
  const { middleware, hide, ...doc } = route;
  if (route.request?.headers !== undefined || route.request?.cookies !== undefined) {
    throw new Error(`${route.method} ${route.path}: declare headers as parameters and read them in the handler`);
  }
  const body = jsonSchemaOf(route);
  const steps: MiddlewareHandler[] = middleware === undefined ? [] : Array.isArray(middleware) ? [...middleware] : [middleware];
  if (body !== undefined) steps.push(body.required ? requiredJsonBody : optionalJsonBody);
  const checks: PartCheck[] = [];
  const params = route.request?.params;
  if (params !== undefined) checks.push({ target: 'param', schema: params, read: (c) => c.req.param() });
  const query = route.request?.query;
  if (query !== undefined) checks.push({ target: 'query', schema: query, read: (c) => c.req.query() });
  if (body !== undefined) checks.push({ target: 'json', schema: body.schema, read: (c) => c.get('jsonBody') });
  const serve = handler as unknown as MiddlewareHandler;
  const validated: MiddlewareHandler =
    checks.length === 0
      ? serve
      : (c, next) => {
          validateParts(c, checks);
          return serve(c, next);
        };
  const path = route.path.replaceAll(/\{(\w+)\}/g, ':$1');
  if (/[{}]/.test(path)) throw new Error(`${route.method} ${route.path}: path parameters are {name} with letters, digits and _ only`);
  // A /v1 route without its guard would be served to anyone: refused at start, not found in review.
  const policy = policyOfGuard(steps[0]);
  if (route.path.startsWith('/v1/') && policy === undefined) {
    throw new Error(`${route.method} ${route.path}: a /v1 route puts its guard (ctx.guard(policy)) first in its middleware`);
  }
  // The document says what the guard enforces: both are written per route, this keeps them one.
  if (policy !== undefined && JSON.stringify(route.security) !== JSON.stringify(securityOf(policy))) {
    throw new Error(`${route.method} ${route.path}: its security must be securityOf('${policy}'), the policy of its guard`);
  }
  // Documented only once every check above passed: a refused route is neither served nor described.
  if (hide !== true) app.openAPIRegistry.registerPath({ ...doc, responses: documentedErrors(route, body !== undefined) });
  app.on([route.method.toUpperCase()], [path], ...steps, validated);
}
