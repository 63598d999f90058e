/** Schemas of the audit log reads: the paging query (`since`, `limit`, `cursor`, `home`) and a page of entries. */
import { HOME_ID } from '../../../actors/actor-id.ts';
import { AUDIT_PAGE, isAuditEntryId } from '../../audit/audit-log.ts';
import { queryInt, z } from '../api-schemas.ts';

/**
 * An ISO 8601 date (midnight UTC, as `Date.parse` reads it) or date and time with `Z` or an
 * offset: a time without a zone would be read in the node's local time, which differs by node.
 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** `since` as epoch ms: epoch milliseconds or an ISO 8601 time; undefined when it is neither. */
export function sinceMsOf(raw: string): number | undefined {
  const ms = /^\d{1,15}$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : Number.NaN;
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined;
}

const SINCE = 'must be epoch milliseconds, an ISO 8601 date, or a date and time with Z or an offset, such as 2026-01-31T12:00:00Z';

/** The paging parameters every audit read takes; `since` is read as epoch ms. */
export const AuditPageQuery = z.object({
  limit: queryInt(1, AUDIT_PAGE.max, AUDIT_PAGE.default, 'Entries per page.'),
  since: z
    .string()
    .transform((raw, ctx) => {
      const ms = sinceMsOf(raw);
      if (ms !== undefined) return ms;
      ctx.addIssue({ code: 'custom', message: SINCE });
      return z.NEVER;
    })
    .optional()
    .openapi({
      type: 'string',
      description: 'Only entries appended at or after it: epoch ms, or an ISO 8601 date or date and time with Z or an offset.',
      example: '2026-01-31T12:00:00Z',
    }),
  cursor: z
    .string()
    .refine(isAuditEntryId, { error: 'must be the nextCursor of a previous page' })
    .optional()
    .openapi({ description: 'The nextCursor of the previous page (older entries).', example: '1769860800000-0' }),
});

/** The cluster's log may be narrowed to one home; `home` is checked (and named) first. */
export const AdminAuditQuery = z.object({
  home: z
    .string()
    .regex(HOME_ID, { error: 'must be a home id: 1 to 64 letters, digits, _ . or -' })
    .optional()
    .openapi({ description: "Only this home's entries.", example: 'flat-1' }),
  ...AuditPageQuery.shape,
});

const AuditEntry = z
  .object({
    id: z.string().openapi({ description: 'Entry id `<ms>-<seq>`, ordered like the log.' }),
    at: z.number().int().openapi({ description: 'Epoch ms when the request was answered.' }),
    time: z.string().openapi({ description: 'The same instant, ISO 8601 (UTC).' }),
    node: z.string().openapi({ description: 'The node that answered.' }),
    who: z.string().openapi({ description: "`admin`, or the app token's public id." }),
    action: z.string().openapi({ description: 'The route and method in short, e.g. homes.hubs.post.' }),
    method: z.string(),
    route: z.string().openapi({ description: 'The route pattern, e.g. /v1/homes/:homeId/hubs.' }),
    target: z
      .record(z.string(), z.union([z.string(), z.array(z.string()).readonly()]))
      .readonly()
      .openapi({ description: 'The ids the request named (never a secret).' }),
    status: z.number().int(),
    outcome: z.enum(['succeeded', 'refused', 'failed']),
    code: z.string().optional().openapi({ description: 'The error code of a refused or failed request.' }),
  })
  .openapi('AuditEntry');

/** Newest first; `nextCursor` is null on the last page. */
export const AuditPageSchema = z
  .object({
    items: z.array(AuditEntry).readonly(),
    nextCursor: z.string().nullable().openapi({ description: 'The cursor of the next (older) page; null on the last page.' }),
  })
  .openapi('AuditPage');

export const auditPageExample = {
  items: [
    {
      id: '1769860800000-0',
      at: 1_769_860_800_000,
      time: '2026-01-31T12:00:00.000Z',
      node: 'n1',
      who: 'admin',
      action: 'homes.hubs.post',
      method: 'POST',
      route: '/v1/homes/:homeId/hubs',
      target: { homeId: 'flat-1', hubId: 'hub1' },
      status: 201,
      outcome: 'succeeded' as const,
    },
  ],
  nextCursor: null,
};
