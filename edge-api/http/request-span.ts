/** A span per HTTP request (tracing on only): `HTTP <METHOD> <route pattern>`, continuing an incoming `traceparent`. */
import { propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { endSpan, runInSpan, SpanKind, startSpanIn, tracingOn } from '../../runtime/tracing.ts';
import { UNMATCHED_ROUTE } from './http-metrics.ts';

/** Reads propagation headers from Hono's request. */
const headerGetter: TextMapGetter<Context> = {
  keys: (c) => [...c.req.raw.headers.keys()],
  get: (c, key) => c.req.header(key),
};

/** The pattern of the route that answered (`/v1/homes/:homeId/devices/:deviceId`), not middleware; undefined when none matched. */
function routePattern(c: Context): string | undefined {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    if (r && r.method !== 'ALL') return r.path;
  }
  return undefined;
}

/**
 * With tracing on, runs the request in a server span: a child of the caller's `traceparent`
 * header when it sends one, else a new trace. What the handler sends to actors (an app's command)
 * carries it, through the actor steps to the hub. Named once the route is known; attributes are
 * OpenTelemetry's HTTP server conventions (`http.request.method`, `http.route`,
 * `http.response.status_code`, `url.path`); a status of 500 or more is an error. With tracing off
 * the request pays one boolean test.
 */
export function requestSpan(): MiddlewareHandler {
  return async (c, next) => {
    if (!tracingOn) return next();
    const method = c.req.method;
    const parent = propagation.extract(ROOT_CONTEXT, c, headerGetter);
    const span = startSpanIn(parent, `HTTP ${method}`, SpanKind.SERVER, {
      'http.request.method': method,
      'url.path': c.req.path,
      'url.scheme': new URL(c.req.url).protocol.replace(':', ''),
    });
    let failure: string | undefined;
    try {
      await runInSpan(span, next);
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
      throw err;
    } finally {
      const route = routePattern(c);
      const status = c.res.status;
      span.updateName(`HTTP ${method} ${route ?? UNMATCHED_ROUTE}`);
      if (route !== undefined) span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', status);
      endSpan(span, failure ?? (status >= 500 ? `HTTP ${status}` : undefined));
    }
  };
}
