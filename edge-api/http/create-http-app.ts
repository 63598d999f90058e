/** The HTTP edge: one Hono app with the app-facing API, probes and metrics, over the actor router. */
import { hostname } from 'node:os';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from 'hono';
import type { Registry } from 'prom-client';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { auditWrites, type RefusedBudget } from '../audit/audit-writes.ts';
import { MemoryAuditLog } from '../audit/memory-audit-log.ts';
import type { CredentialStore } from '../auth/credential-store.ts';
import { TokenGrantCache, type TokenGrantCacheConfig } from '../auth/token-grant-cache.ts';
import type { HomeEventFeed } from '../events/home-event-feed.ts';
import { createGuard } from './access-guard.ts';
import { registerAdminRoutes, type ClusterAdminPort } from './admin-routes.ts';
import { registerAuditRoutes } from './audit-routes.ts';
import { registerAutomationRoutes } from './automation-routes.ts';
import { registerDeviceRoutes } from './device-routes.ts';
import { registerEventStream } from './event-stream.ts';
import { DEFAULT_SSE_LIMIT, EventStreamSlots, type SseLimit } from './event-stream-slots.ts';
import { registerHomeRoutes } from './home-routes.ts';
import { handleErrors, routeNotFound } from './http-error.ts';
import { HttpMetrics, measureRequests } from './http-metrics.ts';
import { accessLog } from './access-log.ts';
import { metricsHandler } from './metrics-endpoint.ts';
import { defaultRateLimit, type RateLimitConfig } from './rate-limiter.ts';
import { createRateLimits, type SharedRateLimitDeps } from './shared-rate-limiter.ts';
import { requestBodyLimit } from './request-body-limit.ts';
import { requestSpan } from './request-span.ts';
import { tracingOn } from '../../runtime/tracing.ts';
import { registerTokenRoutes } from './token-routes.ts';
import { registerOpenApiDocument } from './openapi-document.ts';
import { registerApiDocs } from './api-docs.ts';
import { registerAdminConsole } from '../admin-console/admin-console-routes.ts';
import type { EdgeApp } from './api-schemas.ts';
import { createAsk, type RouteContext } from './route-context.ts';

/** Readiness of the node: `ready` false answers 503 so load balancers stop sending traffic. */
export type Readiness = () => { ready: boolean; checks: Record<string, boolean> };

export interface HttpDeps {
  readonly router: ActorRouter;
  readonly credentials: CredentialStore;
  /** Where the event stream reads homes' events (the memory feed, or the Redis-backed one on any node). */
  readonly feed: HomeEventFeed;
  /** Operator bearer token (`ADMIN_TOKEN`); compared in constant time. Must not be empty. */
  readonly adminToken: string;
  /** prom-client registry; the edge's metrics are created in it once. */
  readonly registry: Registry;
  readonly logger: Logger;
  /** One info line per request (ACCESS_LOG; default true). */
  readonly accessLog?: boolean;
  /** Answers `/readyz`. */
  readonly readiness: Readiness;
  /** Largest request body, bytes; larger ones get 413. */
  readonly maxBodyBytes: number;
  /** Requests per second per token and per home, and the bucket size of both. Default 50/s, 100/s, burst 100. */
  readonly rateLimit?: RateLimitConfig;
  /**
   * Where the cluster keeps its rate-limit buckets (REDIS_URL set): every node draws from one
   * bucket per token and per home (shared-rate-limiter.ts). Absent: this node's own buckets.
   */
  readonly sharedRateLimit?: Omit<SharedRateLimitDeps, 'clock' | 'logger' | 'registry'>;
  /** Size and TTL of the app token cache. Default 10 000 tokens, 500 ms: a revocation on another node is seen here within the TTL. */
  readonly tokenCache?: Partial<TokenGrantCacheConfig>;
  /** Deadline of each actor ask, milliseconds; default the actor host's. */
  readonly askTimeoutMs?: number;
  /** Milliseconds between SSE heartbeat comments. Default 15 000. */
  readonly sseHeartbeatMs?: number;
  /** Open event streams on this node per app token and per home. Default 16 and 64. */
  readonly sseLimit?: SseLimit;
  /**
   * Serve `/metrics` on this app, behind the admin token. Default true; false when a separate
   * metrics server (METRICS_PORT) serves it, so the app port does not.
   */
  readonly serveMetrics?: boolean;
  /** Epoch ms (rate limits, token creation times). Default Date.now. */
  readonly clock?: () => number;
  /** The cluster's admin surface; absent on a node without Redis (the admin ring routes answer 409). */
  readonly cluster?: ClusterAdminPort;
  /** Where admin actions and app writes are audited (and read back from). Default: a bounded memory log. */
  readonly audit?: AuditLog;
  /** This node's id, named in audit entries. Default the host name. */
  readonly nodeId?: string;
  /** Refused requests' audit entries each app token may add. Default DEFAULT_REFUSED_BUDGET (20, then one per 5 s). */
  readonly auditRefusedBudget?: RefusedBudget;
}

export const DEFAULT_SSE_HEARTBEAT_MS = 15_000;

/** Unauthenticated operational routes: liveness and readiness. */
function registerProbeRoutes(app: EdgeApp, readiness: Readiness): void {
  // Liveness: the event loop answers. Deliberately checks nothing else.
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { ready, checks } = readiness();
    return c.json({ ready, checks }, ready ? 200 : 503);
  });
}

/**
 * Builds the edge. Middleware order: metrics and access log (outermost, see every status) → body limit (not on
 * GET/HEAD) → audit (on /v1, appends writes once the route answered) → the route's guard
 * (401/400/403/429, before any actor is touched) → handler. Every failure leaves as
 * `{error: {code, message, details?}}` with the status from the one code table.
 */
export function createHttpApp(deps: HttpDeps): EdgeApp {
  requirePositiveInt('maxBodyBytes', deps.maxBodyBytes);
  const log = deps.logger.child({ component: 'http' });
  const clock = deps.clock ?? Date.now;
  const tokens = new TokenGrantCache(deps.credentials, deps.tokenCache);
  const ctx: RouteContext = {
    ask: createAsk(deps.router, deps.askTimeoutMs),
    guard: createGuard({
      tokens,
      adminToken: deps.adminToken,
      limiter: createRateLimits(deps.rateLimit ?? defaultRateLimit, deps.sharedRateLimit, {
        clock,
        logger: deps.logger,
        registry: deps.registry,
      }),
      clock,
    }),
    credentials: deps.credentials,
    tokens,
    feed: deps.feed,
    clock,
    sseHeartbeatMs: deps.sseHeartbeatMs ?? DEFAULT_SSE_HEARTBEAT_MS,
    logger: deps.logger,
  };

  // Routes are declared with declareRoute (declare-route.ts): it validates with their schemas, never app.openapi.
  const app = new OpenAPIHono<Env>();
  app.use('*', measureRequests(HttpMetrics.of(deps.registry)));
  // Tracing on only (the SDK starts before the node): a span per request, what the handler sends to actors continues it.
  if (tracingOn) app.use('*', requestSpan());
  if (deps.accessLog !== false) app.use('*', accessLog(deps.logger));
  app.use('*', requestBodyLimit(deps.maxBodyBytes));
  const audit = deps.audit ?? new MemoryAuditLog();
  app.use(
    '/v1/*',
    auditWrites({
      log: audit,
      nodeId: deps.nodeId ?? hostname(),
      clock,
      logger: deps.logger,
      registry: deps.registry,
      adminToken: deps.adminToken,
      ...(deps.auditRefusedBudget === undefined ? {} : { refusedBudget: deps.auditRefusedBudget }),
    }),
  );

  registerProbeRoutes(app, deps.readiness);
  // Metrics tell an outsider the node's load, homes' activity and versions: operators only.
  if (deps.serveMetrics !== false) app.get('/metrics', ctx.guard('admin'), metricsHandler(deps.registry));
  registerHomeRoutes(app, ctx);
  registerTokenRoutes(app, ctx);
  registerDeviceRoutes(app, ctx);
  registerAutomationRoutes(app, ctx);
  const sseOpen = HttpMetrics.of(deps.registry).sseOpen;
  registerEventStream(app, ctx, new EventStreamSlots(deps.sseLimit ?? DEFAULT_SSE_LIMIT, (open) => sseOpen.set(open)));
  registerAdminRoutes(app, ctx, deps.cluster);
  registerAuditRoutes(app, ctx, audit);
  registerOpenApiDocument(app);
  registerApiDocs(app);
  registerAdminConsole(app);

  app.notFound(routeNotFound);
  app.onError(handleErrors(log));

  return app;
}
