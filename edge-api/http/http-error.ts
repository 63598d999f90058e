/** The edge's one error shape, `{error: {code, message, details?}}`: the exception that carries it and the app's error handlers. */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from '../../runtime/logger.ts';
import { httpStatusOf, type ErrorCode } from '../error-codes.ts';

/** What every failed request answers. `details.field` names the bad field of an invalid request. */
export interface ErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

/**
 * Thrown by handlers and middleware; the app's error handler turns it into the error shape with
 * the status of `code` from the one code table (`../error-codes.ts`). `message` is shown to the
 * client, so it never carries internals.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
    /** Extra response headers (`Retry-After`, `WWW-Authenticate`). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.status = httpStatusOf(code);
  }
}

/**
 * A 400 `invalid_argument` naming `field` (a body path such as `desired.on`, a parameter or a
 * header): `details` is `{field, fields: [{field, message: reason}]}`, the shape a schema
 * failure listing several fields has too (validation-error.ts).
 */
export const invalidArgument = (field: string, reason: string): HttpError =>
  new HttpError('invalid_argument', `${field} ${reason}`, { field, fields: [{ field, message: reason }] });

export const notFound = (message: string): HttpError => new HttpError('not_found', message);

/** The error body of `err`. */
export function errorBody(err: HttpError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

/** Renders `err` as the response of `c`. */
export function errorResponse(c: Context, err: HttpError): Response {
  for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
  return c.json(errorBody(err), err.status as ContentfulStatusCode);
}

/** Unknown routes: 404 `not_found` in the one shape. */
export const routeNotFound: NotFoundHandler = (c) => errorResponse(c, notFound(`no route ${c.req.method} ${c.req.path}`));

/**
 * The code the app's error handler answers `err` with: an HttpError's own; for Hono's refusals
 * (HTTPException below 500) 413 `payload_too_large`, 401 `unauthenticated`, else
 * `invalid_argument`; anything else `internal`.
 */
export function codeOfError(err: unknown): ErrorCode {
  if (err instanceof HttpError) return err.code;
  if (err instanceof HTTPException && err.status < 500) {
    if (err.status === 413) return 'payload_too_large';
    if (err.status === 415) return 'unsupported_media_type';
    return err.status === 401 ? 'unauthenticated' : 'invalid_argument';
  }
  return 'internal';
}

/**
 * The app's error handler. HttpErrors render as they are (5xx ones logged); Hono's own refusals
 * keep the one shape; anything else is a bug: logged with its stack, answered 500 `internal`
 * without a word of it.
 */
export function handleErrors(log: Logger): ErrorHandler {
  return (err, c) => {
    if (err instanceof HttpError) {
      if (err.status >= 500) log.warn({ code: err.code, method: c.req.method, path: c.req.path }, err.message);
      return errorResponse(c, err);
    }
    if (err instanceof HTTPException && err.status < 500) {
      const code = codeOfError(err);
      const details =
        code === 'invalid_argument' ? { field: 'body', fields: [{ field: 'body', message: err.message || 'bad request' }] } : undefined;
      return errorResponse(c, new HttpError(code, err.message || 'bad request', details));
    }
    log.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
    return errorResponse(c, new HttpError('internal', 'internal error'));
  };
}

/** A credential store that cannot answer (Redis down) is the server's trouble: 503, not 500. */
export const storeDown = (err: unknown): never => {
  if (err instanceof HttpError) throw err;
  throw new HttpError('unavailable', `credentials cannot be stored right now (${err instanceof Error ? err.name : 'error'})`);
};
