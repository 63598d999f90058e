/** The audit log of a node without Redis: bounded lists in process memory (lost at exit, like the rest of its state). */
import {
  auditLimits,
  compareEntryIds,
  entryIdMs,
  homeLogOf,
  type AuditEntry,
  type AuditLimits,
  type AuditLog,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
} from './audit-log.ts';
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';

/** Entries oldest first, trimmed to `cap` once they pass it by a tenth (amortised, like `MAXLEN ~`). */
class BoundedList {
  readonly entries: AuditEntry[] = [];

  constructor(private readonly cap: number) {}

  /** Appends; returns how many entries were trimmed off the old end. */
  push(entry: AuditEntry): number {
    this.entries.push(entry);
    const excess = this.entries.length - this.cap;
    if (excess <= Math.ceil(this.cap / 10)) return 0;
    this.entries.splice(0, excess);
    return excess;
  }
}

/** The newest-first page of `entries` (oldest first, ids ascending) below `cursor` and at or after `sinceMs`. */
function pageOf(entries: readonly AuditEntry[], query: AuditQuery): AuditPage {
  // Binary search: the first entry not older than the cursor; the page starts just below it.
  let end = entries.length;
  if (query.cursor !== undefined) {
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareEntryIds(entries[mid]!.id, query.cursor) < 0) lo = mid + 1;
      else hi = mid;
    }
    end = lo;
  }
  const items: AuditEntry[] = [];
  for (let i = end - 1; i >= 0; i--) {
    const entry = entries[i]!;
    if (query.sinceMs !== undefined && entryIdMs(entry.id) < query.sinceMs) break;
    if (items.length === query.limit) return { items, nextCursor: items.at(-1)!.id };
    items.push(entry);
  }
  return { items, nextCursor: null };
}

/** Limits of the memory log: the log's caps and how many homes' logs it keeps. */
export interface MemoryAuditLimits extends AuditLimits {
  /** Homes whose own logs are kept; past it, the logs of the homes written least recently are dropped. */
  readonly maxHomes: number;
}

/**
 * Smaller than Redis's defaults: this log lives in the node's heap (an entry takes about 0.7 kB),
 * so at most 10 000 + 10 000 entries, about 15 MB.
 */
export const DEFAULT_MEMORY_AUDIT_LIMITS: MemoryAuditLimits = {
  clusterMaxLen: 10_000,
  homeMaxLen: 1_000,
  homeTtlMs: 0,
  maxHomes: 1_000,
};

/**
 * Holds at most `clusterMaxLen` entries in the cluster's list and, over all homes' lists
 * together, as many again, in at most `maxHomes` lists: past either, the lists of the homes
 * written least recently are dropped whole. `homeTtlMs` is not applied (the process does not
 * outlive it).
 */
export class MemoryAuditLog implements AuditLog {
  private readonly limits: MemoryAuditLimits;
  private readonly cluster: BoundedList;
  /** In order of last append: the first is the home written least recently. */
  private readonly homes = new Map<string, BoundedList>();
  private homeEntries = 0;
  private lastMs = 0;
  private seq = 0;

  constructor(limits: Partial<MemoryAuditLimits> = {}) {
    const { maxHomes = DEFAULT_MEMORY_AUDIT_LIMITS.maxHomes, ...logLimits } = limits;
    requirePositiveInt('maxHomes', maxHomes);
    this.limits = { ...auditLimits({ ...DEFAULT_MEMORY_AUDIT_LIMITS, ...logLimits }), maxHomes };
    this.cluster = new BoundedList(this.limits.clusterMaxLen);
  }

  append(record: AuditRecord): Promise<void> {
    this.add(record);
    return Promise.resolve();
  }

  private add(record: AuditRecord): void {
    // Ids grow even if the clock steps back, as Redis stream ids do.
    const ms = Math.max(record.at, this.lastMs);
    this.seq = ms === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = ms;
    const entry: AuditEntry = { id: `${ms}-${this.seq}`, ...record };
    this.cluster.push(entry);
    const homeId = homeLogOf(record);
    if (homeId === undefined) return;
    const list = this.homes.get(homeId) ?? new BoundedList(this.limits.homeMaxLen);
    this.homes.delete(homeId);
    this.homes.set(homeId, list);
    this.homeEntries += 1 - list.push(entry);
    // Deleting the current key while iterating a Map is safe: iteration goes on with the next.
    for (const id of this.homes.keys()) {
      if ((this.homeEntries <= this.limits.clusterMaxLen && this.homes.size <= this.limits.maxHomes) || id === homeId) break;
      this.forgetHome(id);
    }
  }

  forgetHome(homeId: string): void {
    const list = this.homes.get(homeId);
    if (list === undefined) return;
    this.homes.delete(homeId);
    this.homeEntries -= list.entries.length;
  }

  async read(query: AuditQuery): Promise<AuditPage> {
    if (query.homeId === undefined) return pageOf(this.cluster.entries, query);
    return pageOf(this.homes.get(query.homeId)?.entries ?? [], query);
  }

  async settled(): Promise<void> {}
}
