/** The request body limit, applied only to methods that carry a body. */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { errorResponse, HttpError, invalidArgument } from './http-error.ts';
import { isClientAbort } from './request-input.ts';

/**
 * Methods whose body the edge never reads. A GET or HEAD with a body (or a `Content-Length`)
 * is answered as if it had none: no route of these methods reads one.
 */
const BODILESS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/** The message of the 413 of a body over `maxBytes` bytes. */
/** The largest request body when MAX_BODY_BYTES is not set, bytes (node/config.ts). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export const bodyTooLargeMessage = (maxBytes: number): string => `the body exceeds ${maxBytes} bytes`;

/**
 * Refuses a body over `maxBytes` (bytes) with 413 `payload_too_large` in the one error shape, by
 * its `Content-Length` or, without one, while it streams in. GET and HEAD skip the check without
 * touching `c.req.raw`: with @hono/node-server, reading `raw.body` builds a full `Request` and an
 * `AbortController` per request, which used to be the largest single cost of a shadow GET.
 */
export function requestBodyLimit(maxBytes: number): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: (c) => errorResponse(c, new HttpError('payload_too_large', bodyTooLargeMessage(maxBytes))),
  });
  return async (c, next) => {
    if (BODILESS.has(c.req.method)) return next();
    try {
      return await limit(c, next);
    } catch (err) {
      // A streamed body the client abandoned while the limit read it: not a server error.
      if (isClientAbort(err)) return errorResponse(c, invalidArgument('body', 'was not received in full: the client ended the request'));
      throw err;
    }
  };
}
