/** The HTTP access log: one JSON line per request, naming the caller by token id, never by its token. */
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../../runtime/logger.ts';
import { routeOf, UNMATCHED_ROUTE } from './http-metrics.ts';
import { principalId, type Principal } from './route-context.ts';

/** The fields of an access log line (besides pino's and the logger's bindings, such as `node`). */
export interface AccessLogFields {
  readonly method: string;
  /** The route's pattern (`/v1/homes/:homeId`), as the metrics label it; `unmatched` when none matched. */
  readonly route: string;
  readonly status: number;
  /** Milliseconds to answer (for an event stream: until it opened), 0.1 ms resolution. */
  readonly durationMs: number;
  /** `admin`, an app token's public id (`tok_…`), or absent when the request carried no token the edge knows. */
  readonly tokenId?: string;
}

/** pino's numeric level of `info`. */
const INFO = 30;

/** Paths polled by machines (liveness, readiness, Prometheus): logged at debug when answered 2xx. */
const QUIET_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Who sent the request, as far as the guard got: the caller it authenticated (set also when it
 * then refused the request: a 403 or 429 still names the token), else the principal that passed.
 */
function tokenIdOf(c: Context): string | undefined {
  const who = (c.get('caller') as Principal | undefined) ?? c.get('principal');
  return who === undefined ? undefined : principalId(who);
}

/**
 * Middleware logging one info line per request once it is answered, failed ones included (the
 * app's error handler has set the status by then), at any LOG_LEVEL but `silent`; `/healthz`,
 * `/readyz` and `/metrics` answered 2xx log at debug. Put it outermost, next to the metrics.
 *
 * An event stream (SSE) is logged when it opens (status 200, the time to open it), not when it
 * ends: its response leaves this middleware as soon as the stream starts, and a line per open
 * stream at once is what an operator tailing the log needs (how long streams stay open is the
 * iot_http_sse_open_streams gauge's business).
 */
export function accessLog(logger: Logger): MiddlewareHandler {
  // ACCESS_LOG=true asks for these lines whatever LOG_LEVEL is (warn keeps the components quiet, not
  // the access log): the child logs at info, or lower when LOG_LEVEL is lower; `silent` silences it.
  const level = logger.level === 'silent' || logger.levelVal < INFO ? logger.level : 'info';
  const log = logger.child({ component: 'access' }, { level });
  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const tokenId = tokenIdOf(c);
      const fields: AccessLogFields = {
        method: c.req.method,
        route: routeOf(c)?.path ?? UNMATCHED_ROUTE,
        status: c.res.status,
        durationMs: Math.round((performance.now() - start) * 10) / 10,
        ...(tokenId === undefined ? {} : { tokenId }),
      };
      // Probes and scrapes that succeed come every few seconds and say nothing: debug. A failing one is news.
      if (QUIET_PATHS.has(c.req.path) && fields.status < 300) log.debug(fields, 'http request');
      else log.info(fields, 'http request');
    }
  };
}
