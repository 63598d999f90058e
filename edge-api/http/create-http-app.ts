/** The HTTP edge: one Hono app with the app-facing API, probes and metrics, over the actor router. */
import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { CredentialStore } from '../auth/credential-store.ts';
import { TokenGrantCache, type TokenGrantCacheConfig } from '../auth/token-grant-cache.ts';
import type { EventFeed } from '../events/event-feed.ts';
import { createGuard } from './access-guard.ts';
import { registerAdminRoutes, type ClusterAdminPort } from './admin-routes.ts';
import { registerAutomationRoutes } from './automation-routes.ts';
import { registerDeviceRoutes } from './device-routes.ts';
import { registerEventStream } from './event-stream.ts';
import { registerHomeRoutes } from './home-routes.ts';
import { handleErrors, routeNotFound } from './http-error.ts';
import { HttpMetrics, measureRequests } from './http-metrics.ts';
import { defaultRateLimit, RequestLimiter, type RateLimitConfig } from './rate-limiter.ts';
import { requestBodyLimit } from './request-body-limit.ts';
import { createAsk, type RouteContext } from './route-context.ts';

/** Readiness of the node: `ready` false answers 503 so load balancers stop sending traffic. */
export type Readiness = () => { ready: boolean; checks: Record<string, boolean> };

export interface HttpDeps {
  readonly router: ActorRouter;
  readonly credentials: CredentialStore;
  readonly feed: EventFeed;
  /** Operator bearer token (`ADMIN_TOKEN`); compared in constant time. Must not be empty. */
  readonly adminToken: string;
  /** prom-client registry; the edge's metrics are created in it once. */
  readonly registry: Registry;
  readonly logger: Logger;
  /** Answers `/readyz`. */
  readonly readiness: Readiness;
  /** Largest request body, bytes; larger ones get 413. */
  readonly maxBodyBytes: number;
  /** Requests per second per token and per home, and the bucket size of both. Default 50/s, 100/s, burst 100. */
  readonly rateLimit?: RateLimitConfig;
  /** Size and TTL of the app token cache. Default 10 000 tokens, 1 000 ms: a revocation on another node is seen here within the TTL. */
  readonly tokenCache?: Partial<TokenGrantCacheConfig>;
  /** Deadline of each actor ask, milliseconds; default the actor host's. */
  readonly askTimeoutMs?: number;
  /** Milliseconds between SSE heartbeat comments. Default 15 000. */
  readonly sseHeartbeatMs?: number;
  /** Epoch ms (rate limits, token creation times). Default Date.now. */
  readonly clock?: () => number;
  /** The cluster's admin surface; absent on a node without Redis (the admin ring routes answer 409). */
  readonly cluster?: ClusterAdminPort;
}

export const DEFAULT_SSE_HEARTBEAT_MS = 15_000;

/** Unauthenticated operational routes: liveness, readiness, Prometheus metrics. */
function registerProbeRoutes(app: Hono, registry: Registry, readiness: Readiness): void {
  // Liveness: the event loop answers. Deliberately checks nothing else.
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { ready, checks } = readiness();
    return c.json({ ready, checks }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const text = await registry.metrics();
    return c.body(text, 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
  });
}

/**
 * Builds the edge. Middleware order: metrics (outermost, sees every status) → body limit (not on
 * GET/HEAD) → the route's guard (401/400/403/429, before any actor is touched) → handler. Every failure leaves as
 * `{error: {code, message, details?}}` with the status from the one code table.
 */
export function createHttpApp(deps: HttpDeps): Hono {
  if (!Number.isSafeInteger(deps.maxBodyBytes) || deps.maxBodyBytes < 1) {
    throw new RangeError(`maxBodyBytes must be a positive integer, not ${deps.maxBodyBytes}`);
  }
  const log = deps.logger.child({ component: 'http' });
  const clock = deps.clock ?? Date.now;
  const tokens = new TokenGrantCache(deps.credentials, deps.tokenCache);
  const ctx: RouteContext = {
    ask: createAsk(deps.router, deps.askTimeoutMs),
    guard: createGuard({
      tokens,
      adminToken: deps.adminToken,
      limiter: new RequestLimiter(deps.rateLimit ?? defaultRateLimit),
      clock,
    }),
    credentials: deps.credentials,
    tokens,
    feed: deps.feed,
    clock,
    sseHeartbeatMs: deps.sseHeartbeatMs ?? DEFAULT_SSE_HEARTBEAT_MS,
    logger: deps.logger,
  };

  const app = new Hono();
  app.use('*', measureRequests(HttpMetrics.of(deps.registry)));
  app.use('*', requestBodyLimit(deps.maxBodyBytes));

  registerProbeRoutes(app, deps.registry, deps.readiness);
  registerHomeRoutes(app, ctx);
  registerDeviceRoutes(app, ctx);
  registerAutomationRoutes(app, ctx);
  registerEventStream(app, ctx);
  registerAdminRoutes(app, ctx, deps.cluster);

  app.notFound(routeNotFound);
  app.onError(handleErrors(log));

  return app;
}
