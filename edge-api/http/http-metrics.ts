/** HTTP edge metrics: requests by method, route pattern and status, and a latency histogram. */
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Route label of requests no route matched (keeps label cardinality bounded). */
export const UNMATCHED_ROUTE = 'unmatched';

export class HttpMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly seconds: Histogram<'method' | 'route'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'iot_http_requests_total',
      help: 'HTTP requests answered by the edge, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'iot_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (for SSE: until the stream opened), by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, HttpMetrics>();

  /** The metrics of `registry`, created on first use: prom-client refuses a name registered twice. */
  static of(registry: Registry): HttpMetrics {
    let m = HttpMetrics.byRegistry.get(registry);
    if (!m) {
      m = new HttpMetrics(registry);
      HttpMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}

/** The pattern of the route that answered (`/v1/homes/:homeId/devices/:deviceId`), not the raw path. */
function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    // Middleware registered with `use` has method ALL; only a route names the request.
    if (r && r.method !== 'ALL') return r.path;
  }
  return UNMATCHED_ROUTE;
}

/** Outermost middleware: counts and times every request, including failed ones. */
export function measureRequests(metrics: HttpMetrics): MiddlewareHandler {
  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const route = routeOf(c);
      const method = c.req.method;
      metrics.requests.labels(method, route, String(c.res.status)).inc();
      metrics.seconds.labels(method, route).observe((performance.now() - start) / 1000);
    }
  };
}
