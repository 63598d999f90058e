/** The audit log in Redis: a capped stream per cluster and one per home, appended with pipelined XADDs. */
import type { Registry } from 'prom-client';
import { LogThrottle } from '../../runtime/log-throttle.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { AuditMetrics } from './audit-metrics.ts';
import {
  auditLimits,
  homeLogOf,
  isFirstEntryId,
  type AuditEntry,
  type AuditLimits,
  type AuditLog,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
} from './audit-log.ts';

export interface RedisAuditLogConfig {
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly limits?: Partial<AuditLimits>;
  /** Appends in flight beyond which new ones are dropped (and counted) rather than queued. Default 10 000. */
  readonly maxInFlight?: number;
}

/** Milliseconds between two log lines about failing appends (the failures in between are counted). */

/** The stream field holding an entry's JSON. */
const FIELD = 'e';

/**
 * `append` issues its XADDs on the auto-pipelined connection (the appends of one tick leave
 * together) and resolves once they are written or failed; the audit middleware awaits it, so a
 * write pays one round trip, reads none. The
 * cluster's stream and the home's stream are separate keys written by separate commands (no
 * MULTI), which Redis Cluster allows whatever their slots. An append that fails is logged and
 * counted, never retried: the audit log may lose entries while Redis is down (the writes it
 * audits mostly fail then too, as they need Redis themselves).
 */
export class RedisAuditLog implements AuditLog {
  private readonly client: RedisClient;
  private readonly keys: KeyLayout;
  private readonly limits: AuditLimits;
  private readonly maxInFlight: number;
  private readonly metrics: AuditMetrics;
  private readonly log: Logger;
  private readonly inFlight = new Set<Promise<void>>();
  /** One warning per 10 s while appends fail (Redis down fails every write at once). */
  private readonly failureLog = new LogThrottle(1, 10_000);

  constructor(config: RedisAuditLogConfig) {
    this.client = config.client;
    this.keys = config.keys;
    this.limits = auditLimits(config.limits);
    this.maxInFlight = config.maxInFlight ?? 10_000;
    this.metrics = AuditMetrics.of(config.registry);
    this.log = config.logger.child({ component: 'audit' });
  }

  append(record: AuditRecord): Promise<void> {
    if (this.inFlight.size >= this.maxInFlight) {
      this.metrics.appends.inc({ result: 'dropped' });
      return Promise.resolve();
    }
    const json = JSON.stringify(record);
    const { client, keys, limits } = this;
    const writes: Promise<unknown>[] = [client.xadd(keys.auditLog(), 'MAXLEN', '~', limits.clusterMaxLen, '*', FIELD, json)];
    const homeId = homeLogOf(record);
    if (homeId !== undefined) {
      const key = keys.homeAuditLog(homeId);
      writes.push(client.xadd(key, 'MAXLEN', '~', limits.homeMaxLen, '*', FIELD, json));
      if (limits.homeTtlMs > 0) writes.push(client.pexpire(key, limits.homeTtlMs));
    }
    return this.track(
      Promise.all(writes).then(
        () => void this.metrics.appends.inc({ result: 'ok' }),
        (err: unknown) => this.failed(err),
      ),
    );
  }

  forgetHome(homeId: string): void {
    // Issued after the appends before it on the same connection, so it also removes those.
    // In the background: tracked for `settled`, and it never rejects.
    void this.track(
      this.client.del(this.keys.homeAuditLog(homeId)).then(
        () => undefined,
        (err: unknown) => this.failed(err, 'forget'),
      ),
    );
  }

  private track(done: Promise<void>): Promise<void> {
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return done;
  }

  private failed(err: unknown, what: 'append' | 'forget' = 'append'): void {
    if (what === 'forget') {
      // Rare (one per home deletion): logged each time; the log expires after homeTtlMs anyway.
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "a deleted home's audit log could not be removed");
      return;
    }
    this.metrics.appends.inc({ result: 'failed' });
    const suppressed = this.failureLog.admit();
    if (suppressed === undefined) return;
    this.log.warn(
      { err: err instanceof Error ? err.message : String(err), failures: suppressed + 1 },
      'audit entries could not be appended',
    );
  }

  async read(query: AuditQuery): Promise<AuditPage> {
    // Nothing is older than 0-0, and Redis refuses the exclusive range below it.
    if (query.cursor !== undefined && isFirstEntryId(query.cursor)) return { items: [], nextCursor: null };
    const key = query.homeId === undefined ? this.keys.auditLog() : this.keys.homeAuditLog(query.homeId);
    // Newest first, strictly below the cursor; one more than a page tells whether another follows.
    const end = query.cursor === undefined ? '+' : `(${query.cursor}`;
    const start = query.sinceMs === undefined ? '-' : String(query.sinceMs);
    const rows = await this.client.xrevrange(key, end, start, 'COUNT', query.limit + 1);
    const items: AuditEntry[] = [];
    for (const [id, fields] of rows.slice(0, query.limit)) {
      // Each entry has the one field FIELD (see append).
      if (fields[0] === FIELD && fields[1] !== undefined) items.push({ id, ...(JSON.parse(fields[1]) as AuditRecord) });
    }
    return { items, nextCursor: rows.length > query.limit ? rows[query.limit - 1]![0] : null };
  }

  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
