/** The HTTP middleware that appends every admin action and app write to the audit log, after the route answered. */
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Registry } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import { codeOfError } from '../http/http-error.ts';
import { TokenBucketLimiter } from '../http/rate-limiter.ts';
import { principalId, type Principal } from '../http/route-context.ts';
import { AuditMetrics } from './audit-metrics.ts';
import { outcomeOf, type AuditLog, type AuditRecord, type AuditTarget } from './audit-log.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** Ids the route adds to its audit entry (see `addAuditTarget`). */
    auditTarget: AuditTarget;
  }
}

/**
 * Names, in the request's audit entry, what the path does not: a minted token's id, homes and
 * scopes, a created hub, rule or scene, a command. Only ids the route checked (or made) itself,
 * never a raw body field, a token or a secret. Path parameters win over a name given here too.
 */
export function addAuditTarget(c: Context, ids: AuditTarget): void {
  c.set('auditTarget', { ...c.get('auditTarget'), ...ids });
}

/** Refused requests' entries an app token may add: `burst` at once, then `perSec`. */
export interface RefusedBudget {
  readonly perSec: number;
  readonly burst: number;
}

/** 20 at once, then one every 5 s: enough to see what a misbehaving app tried, too few to flood the log. */
export const DEFAULT_REFUSED_BUDGET: RefusedBudget = { perSec: 0.2, burst: 20 };

export interface AuditWritesDeps {
  readonly log: AuditLog;
  /** This node's id, recorded in every entry. */
  readonly nodeId: string;
  /** Epoch ms. */
  readonly clock: () => number;
  readonly logger: Logger;
  /** Where refused entries over an app token's budget are counted (`iot_audit_appends_total{result="over_budget"}`). */
  readonly registry: Registry;
  /** Default DEFAULT_REFUSED_BUDGET. */
  readonly refusedBudget?: RefusedBudget;
  /** The operator's token: never recorded, even pasted into a path. */
  readonly adminToken?: string;
}

/** The route that deletes a home: once it answered 204, the home's own log goes too. */
const HOME_ROUTE = '/v1/homes/:homeId';

/** Methods that change nothing: never audited (reads are served at a rate no log should keep). */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Longest id kept in an entry (path ids are at most 193 characters; this only bounds an entry). */
const TARGET_MAX = 200;
/** Most items of a list kept in an entry (a token's homes); a cut list is followed by `<name>Total`. */
const TARGET_LIST_MAX = 20;
/** App tokens whose refused-entry budgets are remembered (the idle ones, being full, are forgotten first). */
const BUDGET_KEYS = 10_000;

/**
 * `homes.hubs.post` for `POST /v1/homes/:homeId/hubs`: the route's fixed segments (without the
 * version) and the method. Derived from the pattern, so routes added later are named too.
 */
export function actionOf(method: string, route: string): string {
  const fixed = route.split('/').filter((s) => s !== '' && s !== 'v1' && s !== '*' && !s.startsWith(':'));
  return [...fixed, method.toLowerCase()].join('.');
}

/**
 * Who made the request, if the edge knows: the principal that passed the guard, or, for a
 * request the guard refused with 403, the caller it had authenticated (only an app token is ever
 * refused so). Unauthenticated callers (401) have no identity and are not audited.
 */
function whoOf(c: Context, status: number): string | undefined {
  const principal = (c.get('principal') as Principal | undefined) ?? (status === 403 ? c.get('caller') : undefined);
  return principal === undefined ? undefined : principalId(principal);
}

/** The error code the answer carries, as the app's error handler chose it; none for a success. */
function codeOf(c: Context, status: number): string | undefined {
  // A route that answers an error without throwing (none among the writes today) leaves the code out.
  return c.error === undefined || status < 400 ? undefined : codeOfError(c.error);
}

/**
 * What a secret looks like (`newSecret`: `hub_…`, `app_…`, `admin_…` and 43 base64url characters).
 * A caller who pastes a token where an id goes (`DELETE /v1/tokens/app_…`) must not leave it in
 * the log; the path id is recorded as REDACTED instead.
 */
const SECRET_SHAPE = /(?:^|[^A-Za-z0-9])(?:hub|app|admin)_[A-Za-z0-9_-]{20,}/;
export const REDACTED = '[redacted: looks like a secret]';

/** An id as the log keeps it: bounded, and never anything shaped like a secret or the admin token. */
function safeId(value: string, adminToken: string | undefined): string {
  if (SECRET_SHAPE.test(value) || (adminToken !== undefined && value.includes(adminToken))) return REDACTED;
  return value.slice(0, TARGET_MAX);
}

/** The entry's target: the path ids, over the ids the route added; every id and list bounded. */
function targetOf(c: Context, adminToken: string | undefined): AuditTarget {
  const target: Record<string, string | readonly string[]> = {};
  const named = { ...(c.get('auditTarget') as AuditTarget | undefined), ...(c.req.param() as Record<string, string>) };
  for (const [name, value] of Object.entries(named)) {
    if (typeof value === 'string') {
      target[name] = safeId(value, adminToken);
      continue;
    }
    target[name] = value.slice(0, TARGET_LIST_MAX).map((v) => safeId(v, adminToken));
    if (value.length > TARGET_LIST_MAX) target[`${name}Total`] = String(value.length);
  }
  return target;
}

/**
 * Audits, after the route ran: every request that is not a read (POST, PUT, PATCH, DELETE) from
 * the admin token or an app token, whatever its outcome: succeeded, refused (4xx: a 403 for a
 * home or scope the token lacks, a 400, 404, 409, ...) or failed (5xx). Not audited: reads;
 * 401s (no identity: anyone on the network could fill the capped log and push real entries
 * out); the guard's own 429s and 400s for malformed path ids (the caller is known by then, but
 * only a 403 is recorded under it: auditing the guard's 429s would let a caller write to the log
 * faster than its rate limit lets it act).
 * Nor 413s: the body limit (`requestBodyLimit`) is mounted before this middleware, so a body
 * whose declared length is over it is answered before the guard names anyone, and one streamed
 * past it is answered 413 by the limit, over whatever this middleware saw; neither leaves an
 * entry. A 413 changes nothing (the route never ran to completion), so no action goes unrecorded.
 * A 403 goes to the cluster's log only (see `homeLogOf`). Each app token may add a few refused
 * entries (`refusedBudget`); beyond, they are dropped and counted: refusals cost a token no home
 * bucket, so they would otherwise let it push real entries out of the capped cluster log at its
 * full rate. When a home is deleted (204), its own log is removed (`AuditLog.forgetHome`).
 *
 * Records only the route pattern, the path ids, the ids the route added (`addAuditTarget`), the
 * status and the code: never a body, a header, a token or a secret. The response waits for the
 * append (one Redis round trip on writes only), so an acknowledged action has its entry; a failed
 * append (Redis down) is counted and never fails the request, whose effect already happened.
 */
export function auditWrites(deps: AuditWritesDeps): MiddlewareHandler {
  const log = deps.logger.child({ component: 'audit' });
  const actions = new Map<string, string>();
  const budget = deps.refusedBudget ?? DEFAULT_REFUSED_BUDGET;
  const refusals = new TokenBucketLimiter(budget.perSec, budget.burst, BUDGET_KEYS);
  const metrics = AuditMetrics.of(deps.registry);

  return async (c, next) => {
    await next();
    if (READS.has(c.req.method)) return;
    const status = c.res.status;
    try {
      const who = whoOf(c, status);
      if (who === undefined) return;
      const method = c.req.method;
      const route = routePath(c);
      const key = `${method} ${route}`;
      let action = actions.get(key);
      if (action === undefined) actions.set(key, (action = actionOf(method, route)));
      const target = targetOf(c, deps.adminToken);
      const at = deps.clock();
      const outcome = outcomeOf(status);
      if (outcome === 'refused' && who !== 'admin' && !refusals.take(who, at).ok) {
        metrics.appends.inc({ result: 'over_budget' });
        return;
      }
      const code = codeOf(c, status);
      const record: AuditRecord = {
        at,
        time: new Date(at).toISOString(),
        node: deps.nodeId,
        who,
        action,
        method,
        route,
        target,
        status,
        outcome,
        ...(code === undefined ? {} : { code }),
      };
      // Awaited: the caller sees the response only once its entry is written (or its write
      // failed, counted). One pipelined XADD on the connection, next to the route's own writes.
      await deps.log.append(record);
      if (method === 'DELETE' && route === HOME_ROUTE && status === 204 && typeof target.homeId === 'string')
        deps.log.forgetHome(target.homeId);
    } catch (err) {
      // A bug here must not fail a request whose effect already happened.
      log.error({ err, method: c.req.method, path: c.req.path }, 'audit entry not recorded');
    }
  };
}
