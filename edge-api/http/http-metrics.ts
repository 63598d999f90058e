/** HTTP edge metrics: requests by method, route pattern and status, a latency histogram, and open event streams. */
import type { Context, MiddlewareHandler } from 'hono';
import type { RouterRoute } from 'hono/types';
import { matchedRoutes } from 'hono/route';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Route label of requests no route matched (keeps label cardinality bounded). */
export const UNMATCHED_ROUTE = 'unmatched';

export class HttpMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly seconds: Histogram<'method' | 'route'>;
  /** Event streams (SSE) open on this node now. */
  readonly sseOpen: Gauge;

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
    this.sseOpen = new Gauge({
      name: 'iot_http_sse_open_streams',
      help: 'Event streams (SSE) open on this node',
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

/** The prom-client children of one method and route: resolved once, then reused by every request. */
interface RouteSeries {
  readonly seconds: { observe(value: number): void };
  /** Counter children by status code. */
  readonly byStatus: Map<number, { inc(): void }>;
}

/**
 * The route that answered: the last matched entry that is a route, not middleware registered with
 * `use` (method ALL). Undefined when no route matched. (The access log names routes by it too.)
 */
export function routeOf(c: Context): RouterRoute | undefined {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    if (r && r.method !== 'ALL') return r;
  }
  return undefined;
}

/**
 * Outermost middleware: counts and times every request, including failed ones. Labels are the
 * method and the route's pattern (`/v1/homes/:homeId/devices/:deviceId`), not the raw path.
 *
 * The label children are resolved once per route, method and status and kept (keyed by Hono's
 * route object, created once at registration): prom-client's `labels()` validates, copies and
 * binds on every call. The keys are bounded:
 * registered routes (plus one for unmatched requests) × HTTP methods × status codes.
 */
export function measureRequests(metrics: HttpMetrics): MiddlewareHandler {
  const byRoute = new Map<RouterRoute | undefined, Map<string, RouteSeries>>();

  function seriesOf(route: RouterRoute | undefined, method: string): RouteSeries {
    let byMethod = byRoute.get(route);
    if (!byMethod) byRoute.set(route, (byMethod = new Map<string, RouteSeries>()));
    let series = byMethod.get(method);
    if (!series) {
      series = { seconds: metrics.seconds.labels(method, route?.path ?? UNMATCHED_ROUTE), byStatus: new Map() };
      byMethod.set(method, series);
    }
    return series;
  }

  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const method = c.req.method;
      const route = routeOf(c);
      const series = seriesOf(route, method);
      const status = c.res.status;
      let counter = series.byStatus.get(status);
      if (!counter) {
        counter = metrics.requests.labels(method, route?.path ?? UNMATCHED_ROUTE, String(status));
        series.byStatus.set(status, counter);
      }
      counter.inc();
      series.seconds.observe((performance.now() - start) / 1000);
    }
  };
}
