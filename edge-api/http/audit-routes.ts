/** Audit log reads: the cluster's (admin, optionally one home) and one home's (app token with the rules scope). */
import type { Context } from 'hono';
import { HOME_ID } from '../../actors/actor-id.ts';
import { AUDIT_PAGE, isAuditEntryId, type AuditLog, type AuditPage, type AuditQuery } from '../audit/audit-log.ts';
import { HttpError, invalidArgument } from './http-error.ts';
import { queryInt } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import type { EdgeApp } from './api-schemas.ts';

/**
 * An ISO 8601 date (midnight UTC, as `Date.parse` reads it) or date and time with `Z` or an
 * offset: a time without a zone would be read in the node's local time, which differs by node.
 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** The `since` query parameter as epoch ms: epoch milliseconds or an ISO 8601 time; undefined when absent. */
export function parseSince(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw invalidArgument(
      'since',
      'must be epoch milliseconds, an ISO 8601 date, or a date and time with Z or an offset, such as 2026-01-31T12:00:00Z',
    );
  return ms;
}

/** The paging parameters every audit read takes: `since`, `limit`, `cursor`. */
function pageQuery(c: Context, homeId: string | undefined): AuditQuery {
  const limit = queryInt(c, 'limit', 1, AUDIT_PAGE.max, AUDIT_PAGE.default);
  const sinceMs = parseSince(c.req.query('since'));
  const cursor = c.req.query('cursor');
  if (cursor !== undefined && !isAuditEntryId(cursor)) throw invalidArgument('cursor', 'must be the nextCursor of a previous page');
  return {
    limit,
    ...(homeId === undefined ? {} : { homeId }),
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(cursor === undefined ? {} : { cursor }),
  };
}

async function readPage(audit: AuditLog, query: AuditQuery): Promise<AuditPage> {
  try {
    return await audit.read(query);
  } catch (err) {
    throw new HttpError('unavailable', `the audit log cannot be read right now (${err instanceof Error ? err.name : 'error'})`);
  }
}

/**
 * `{items, nextCursor}`, newest first: `nextCursor` (null on the last page) continues with older
 * entries (`cursor=0-0`: an empty last page); `since` stops at entries older than it. The
 * cluster's log holds every entry, a home's log those whose path named that home and were not
 * refused 403, until the home is deleted.
 */
export function registerAuditRoutes(app: EdgeApp, ctx: RouteContext, audit: AuditLog): void {
  const { guard } = ctx;

  app.get('/v1/admin/audit', guard('admin'), async (c) => {
    const home = c.req.query('home');
    if (home !== undefined && !HOME_ID.test(home)) throw invalidArgument('home', 'must be a home id: 1 to 64 letters, digits, _ . or -');
    return c.json(await readPage(audit, pageQuery(c, home)));
  });

  // The rules scope: who changed what in a home is for those who may change its automation.
  app.get('/v1/homes/:homeId/audit', guard('rules'), async (c) => c.json(await readPage(audit, pageQuery(c, c.req.param('homeId')))));
}
