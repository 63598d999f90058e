/** `/metrics` for Prometheus: the handler the app port serves behind the admin token, and the bare app of the separate metrics port. */
import { Hono, type Handler } from 'hono';
import type { Registry } from 'prom-client';
import { routeNotFound } from './http-error.ts';

/** Answers the registry's metrics in the Prometheus text format, never cached. */
export function metricsHandler(registry: Registry): Handler {
  return async (c) => {
    const text = await registry.metrics();
    return c.body(text, 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
  };
}

/**
 * The app of the metrics port (METRICS_PORT): `GET /metrics` without authentication, and nothing
 * else (404 in the edge's error shape). It is meant for a scrape network the operator controls,
 * which is why it has its own port and bind rather than the app port's token.
 */
export function createMetricsApp(registry: Registry): Hono {
  const app = new Hono();
  app.get('/metrics', metricsHandler(registry));
  app.notFound(routeNotFound);
  return app;
}
