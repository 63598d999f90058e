/**
 * A span per HTTP request (tracing on only): `<METHOD> <route pattern>` as OpenTelemetry's HTTP
 * conventions name server spans. The public edge does not trust an incoming `traceparent`: the
 * request starts a new trace, linked to the caller's.
 */
import { propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import type { Context, MiddlewareHandler } from 'hono';
import { endSpan, runInSpan, SpanKind, startRootSpanLinkedTo, tracingOn } from '../../runtime/tracing.ts';
import { routeOf } from './http-metrics.ts';

/** Longest `url.path` recorded (characters): a path is the client's choice. */
export const MAX_URL_PATH_ATTRIBUTE = 256;

/** Reads propagation headers from Hono's request. */
const headerGetter: TextMapGetter<Context> = {
  keys: (c) => [...c.req.raw.headers.keys()],
  get: (c, key) => c.req.header(key),
};

/**
 * Runs the request in a server span. The edge faces the public: a `traceparent` the client sends
 * is attached as a span link, never as the parent, so a client can neither force sampling (flag
 * 01), hide its requests (00) nor pick the trace id; this node's sampler decides. (Parenting to a
 * trusted gateway's context is not offered yet.) What the handler sends to actors (an app's
 * command) carries the span, through the actor steps to the hub. Named `<METHOD> <route>` once the
 * route is known (`<METHOD>` alone when none matched); attributes are the HTTP server conventions
 * (`http.request.method`, `http.route`, `http.response.status_code`, `url.path`, `url.scheme`); a
 * status of 500 or more is an error. createHttpApp installs it only when tracing is on at start;
 * it still tests the switch, which shutdown turns off.
 */
export function requestSpan(): MiddlewareHandler {
  return async function traceRequest(c, next) {
    if (!tracingOn) return next();
    const method = c.req.method;
    const path = c.req.path;
    const span = startRootSpanLinkedTo(propagation.extract(ROOT_CONTEXT, c, headerGetter), method, SpanKind.SERVER, {
      'http.request.method': method,
      'url.path': path.length > MAX_URL_PATH_ATTRIBUTE ? path.slice(0, MAX_URL_PATH_ATTRIBUTE) : path,
      'url.scheme': new URL(c.req.url).protocol.replace(':', ''),
    });
    let failure: string | undefined;
    try {
      await runInSpan(span, next);
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
      throw err;
    } finally {
      // The pattern of the route that answered (`/v1/homes/:homeId/devices/:deviceId`), as the metrics label it.
      const route = routeOf(c)?.path;
      const status = c.res.status;
      if (route !== undefined) {
        span.updateName(`${method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', status);
      endSpan(span, failure ?? (status >= 500 ? `HTTP ${status}` : undefined));
    }
  };
}
