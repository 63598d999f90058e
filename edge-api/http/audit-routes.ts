/** Audit log reads: the cluster's (admin, optionally one home) and one home's (app token with the rules scope). */
import { createRoute } from '@hono/zod-openapi';
import { AUDIT_PAGE, type AuditLog, type AuditPage, type AuditQuery } from '../audit/audit-log.ts';
import { errorResponses, homeIdParam, invalidExample, jsonResponse, securityOf, z, type EdgeApp } from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
import { HttpError } from './http-error.ts';
import type { RouteContext } from './route-context.ts';
import { AdminAuditQuery, AuditPageQuery, AuditPageSchema, auditPageExample } from './schemas/audit-schemas.ts';

/** The query of a read: `limit` always, the rest when set. */
function pageQuery(q: z.output<typeof AuditPageQuery>, homeId: string | undefined): AuditQuery {
  return {
    limit: q.limit,
    ...(homeId === undefined ? {} : { homeId }),
    ...(q.since === undefined ? {} : { sinceMs: q.since }),
    ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
  };
}

async function readPage(audit: AuditLog, query: AuditQuery): Promise<AuditPage> {
  try {
    return await audit.read(query);
  } catch (err) {
    throw new HttpError('unavailable', `the audit log cannot be read right now (${err instanceof Error ? err.name : 'error'})`);
  }
}

const tags = ['Audit'];
const page = jsonResponse('Entries newest first; nextCursor continues with older ones.', AuditPageSchema, auditPageExample);

/**
 * `{items, nextCursor}`, newest first: `nextCursor` (null on the last page) continues with older
 * entries (`cursor=0-0`: an empty last page); `since` stops at entries older than it. The
 * cluster's log holds every entry, a home's log those whose path named that home and were not
 * refused 403, until the home is deleted.
 */
export function registerAuditRoutes(app: EdgeApp, ctx: RouteContext, audit: AuditLog): void {
  const { guard } = ctx;

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/admin/audit',
      tags,
      summary: "The cluster's audit log (optionally one home's entries)",
      security: securityOf('admin'),
      middleware: [guard('admin')] as const,
      request: { query: AdminAuditQuery },
      responses: { 200: page, ...errorResponses(invalidExample('home', 'must be a home id: 1 to 64 letters, digits, _ . or -')) },
    }),
    async (c) => {
      const query = c.req.valid('query');
      return c.json(await readPage(audit, pageQuery(query, query.home)), 200);
    },
  );

  // The rules scope: who changed what in a home is for those who may change its automation.
  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/audit',
      tags,
      summary: "A home's audit log: who changed what in it",
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: z.object({ homeId: homeIdParam }), query: AuditPageQuery },
      responses: { 200: page, ...errorResponses(invalidExample('limit', `must be an integer from 1 to ${AUDIT_PAGE.max}`)) },
    }),
    async (c) => c.json(await readPage(audit, pageQuery(c.req.valid('query'), c.req.valid('param').homeId)), 200),
  );
}
