/** The audit log's port: who did what to which home or device, with what outcome, when and on which node; plus its entry ids and limits. */
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';

/** How a request ended: 2xx/3xx succeeded, 4xx refused, 5xx failed. */
export type AuditOutcome = 'succeeded' | 'refused' | 'failed';

/**
 * One audited action, as appended. Never carries a request body, a header, a token or a secret:
 * only the route pattern, the ids in the path and the status.
 */
export interface AuditRecord {
  /** Epoch ms when the request was answered. */
  readonly at: number;
  /** The same instant, ISO 8601 (UTC). */
  readonly time: string;
  /** The node that answered. */
  readonly node: string;
  /** `admin`, or the app token's public id (`tok_…`). */
  readonly who: string;
  /** Short name of the action: the route's fixed segments and the method, e.g. `homes.hubs.post`. */
  readonly action: string;
  readonly method: string;
  /** The route pattern, e.g. `/v1/homes/:homeId/hubs`. */
  readonly route: string;
  /**
   * Which home, device, rule, hub, scene, command or token: the path parameters, and the ids a
   * route named itself (a minted token's id, homes and scopes; a created hub, rule or scene).
   */
  readonly target: AuditTarget;
  /** HTTP status of the answer. */
  readonly status: number;
  readonly outcome: AuditOutcome;
  /** The error code of a failed or refused request (`forbidden`, `not_found`, ...). */
  readonly code?: string;
}

/** What an entry names: ids (strings) and, for a token, lists of homes and scopes. Never a secret. */
export type AuditTarget = Readonly<Record<string, string | readonly string[]>>;

/** An appended record with its id: `<ms>-<seq>`, ordered like the log (a Redis stream id). */
export interface AuditEntry extends AuditRecord {
  readonly id: string;
}

/** A page of a read, newest first. */
export interface AuditQuery {
  /** Only this home's entries (its own log); absent: the whole cluster's log. */
  readonly homeId?: string;
  /**
   * Only entries appended at or after this epoch ms, by the time in their id: the log's clock (in
   * Redis the server's, which may differ from the node's `at` by the clocks' skew).
   */
  readonly sinceMs?: number;
  /** Only entries older than this id: the `nextCursor` of the previous page. */
  readonly cursor?: string;
  /** Entries per page, 1..AUDIT_PAGE.max. */
  readonly limit: number;
}

export interface AuditPage {
  readonly items: readonly AuditEntry[];
  /** The cursor of the next (older) page; null when this page is the last. */
  readonly nextCursor: string | null;
}

/**
 * Where audited actions go. `append` resolves once the entry is written, or once its write failed
 * (logged and counted): it never rejects, so a request is never failed for it. `read` rejects when
 * the log cannot be read (Redis down).
 */
export interface AuditLog {
  append(record: AuditRecord): Promise<void>;
  read(query: AuditQuery): Promise<AuditPage>;
  /**
   * Removes a deleted home's own log, in the background (its entries stay in the
   * cluster's log, which only the admin reads): a home created later under the same id starts
   * with an empty log, so its tokens never read the history of the home before it.
   */
  forgetHome(homeId: string): void;
  /** Resolves once every append issued so far has landed or failed (shutdown, tests). */
  settled(): Promise<void>;
}

/**
 * Caps of the log. Both logs are trimmed approximately (Redis `XADD MAXLEN ~`: whole nodes of
 * the stream are dropped, so a log may hold somewhat more than its cap).
 */
export interface AuditLimits {
  /** Newest entries kept in the cluster's log. Default 100 000 (about 30 MB in Redis). */
  readonly clusterMaxLen: number;
  /** Newest entries kept in each home's log. Default 1 000. */
  readonly homeMaxLen: number;
  /**
   * Milliseconds a home's log is kept after its last entry (so the logs of deleted or idle
   * homes go away); 0 keeps them until trimmed. Default 90 days.
   */
  readonly homeTtlMs: number;
}

export const DEFAULT_AUDIT_LIMITS: AuditLimits = {
  clusterMaxLen: 100_000,
  homeMaxLen: 1_000,
  homeTtlMs: 90 * 24 * 3_600_000,
};

/** Checks limits given in part; throws a RangeError naming the bad one. */
export function auditLimits(partial: Partial<AuditLimits> = {}): AuditLimits {
  const limits = { ...DEFAULT_AUDIT_LIMITS, ...partial };
  for (const name of ['clusterMaxLen', 'homeMaxLen'] as const) requirePositiveInt(name, limits[name]);
  if (!Number.isSafeInteger(limits.homeTtlMs) || limits.homeTtlMs < 0)
    throw new RangeError(`homeTtlMs must be a non-negative integer, not ${limits.homeTtlMs}`);
  return limits;
}

/**
 * The home whose own log also takes `record`: the home in the request's path, unless the request
 * was refused 403. A 403 never came near the home (the caller lacks it or the scope), so its entry
 * goes to the cluster's log only: otherwise any token could write into, and keep alive, the log of
 * any home id it cares to name, and push that home's real entries out.
 */
export function homeLogOf(record: AuditRecord): string | undefined {
  const homeId = record.target.homeId;
  return typeof homeId === 'string' && record.status !== 403 ? homeId : undefined;
}

/** Page sizes of a read. */
export const AUDIT_PAGE = { default: 50, max: 500 } as const;

const ENTRY_ID = /^(\d{1,15})-(\d{1,15})$/;

/** True when `id` is an entry id `<ms>-<seq>` (a cursor a client may send back). */
export const isAuditEntryId = (id: string): boolean => ENTRY_ID.test(id);

/** The epoch ms part of an entry id: when the log took the entry. */
export const entryIdMs = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** True when nothing can be older than `id` (`0-0`): a read below it is empty. */
export const isFirstEntryId = (id: string): boolean => compareEntryIds(id, '0-0') === 0;

/** Orders two entry ids: negative when `a` is older than `b`. */
export function compareEntryIds(a: string, b: string): number {
  const [, am, as] = ENTRY_ID.exec(a) ?? [];
  const [, bm, bs] = ENTRY_ID.exec(b) ?? [];
  if (am === undefined || bm === undefined) throw new Error(`not an audit entry id: ${am === undefined ? a : b}`);
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

/** The outcome of an HTTP status. */
export const outcomeOf = (status: number): AuditOutcome => (status >= 500 ? 'failed' : status >= 400 ? 'refused' : 'succeeded');
