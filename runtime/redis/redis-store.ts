/** The durable store: actor journals and snapshots in Redis, each shard window one fenced script call. */
import type { Counter, Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { ActorWrite, IndexedReminder, JournalEntry, LogAppend, PersistencePort, Recovered, WriteBatch } from '../persistence-port.ts';
import { indexedReminders, ReminderChanges } from '../reminder-changes.ts';
import { requirePositiveInt } from '../require-positive-int.ts';
import { BulkRecoveryError, recoverMany } from './bulk-recovery.ts';
import {
  defaultLogRetention,
  defineFencedWrite,
  fenceRejection,
  logArguments,
  logSkippedCounter,
  skippedLogs,
  type FencedWriteClient,
  type LogRetention,
} from './fenced-write.ts';
import type { KeyLayout } from './key-layout.ts';
import type { RedisClient } from './redis-connection.ts';
import { RedisStoreMetrics } from './redis-store-metrics.ts';

export interface RedisStoreDeps {
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  /** The shard of an actor (the runtime does not know how ids map to shards). */
  readonly shardOf: (actorId: string) => number;
  /** This node's current fence token for a shard, or undefined when it holds no lease on it. */
  readonly fenceToken: (shard: number) => string | undefined;
  /** Called when Redis rejected this node's token `usedToken`: it must stop serving the shard. */
  readonly onFenced: (shard: number, currentToken: string, usedToken: string) => void;
  readonly registry: Registry;
  readonly logger: Logger;
  /** ZSCAN COUNT hint of `loadReminders`: about how many reminders one reply holds. Default 1,000. */
  readonly reminderLoadChunk?: number;
  /**
   * REDIS_WAIT_REPLICAS (replica-wait.ts): resolves once the replicas hold the shard's writes made
   * so far, rejects when they do not. Awaited after each written window (a rejection fails the
   * window: its acks are not released) and before recovered state is handed out (a window that
   * failed this way is in Redis: its actors must not ack its reports again as duplicates before
   * the replicas hold it). Undefined = acks wait for the master alone.
   */
  readonly replicated?: (shard: number) => Promise<void>;
  /** How much of each log (`commit`'s appends: apps' event history) Redis keeps; default EVENT_LOG_LENGTH / EVENT_LOG_TTL_MS's. */
  readonly logRetention?: LogRetention;
}

export const defaultReminderLoadChunk = 1_000;

/** A write was refused: the shard's lease belongs to a newer owner (or to nobody here). */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(
    readonly shard: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Writes each shard window with one call of the fence script (all or nothing, see fenced-write.ts)
 * as soon as the host hands it over: the host keeps one window in flight per shard and gathers
 * what arrives meanwhile into the next, so windows of many shards travel together on the
 * connection without a timer.
 */
export class RedisStore implements PersistencePort {
  readonly durable = true;
  private readonly client: RedisClient & FencedWriteClient;
  private readonly metrics: RedisStoreMetrics;
  /** Event log entries a window was written without (a log key of another type, an entry that does not encode). */
  private readonly logSkipped: Counter<'reason'>;
  private readonly log: Logger;
  private lastWriteFailed = false;
  readonly shardOf: (actorId: string) => number;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly reminderLoadChunk: number;

  constructor(private readonly deps: RedisStoreDeps) {
    this.client = defineFencedWrite(deps.client);
    this.shardOf = deps.shardOf;
    this.reminderLoadChunk = requirePositiveInt('reminderLoadChunk', deps.reminderLoadChunk ?? defaultReminderLoadChunk);
    this.metrics = new RedisStoreMetrics(deps.registry);
    this.logSkipped = logSkippedCounter(deps.registry);
    this.log = deps.logger.child({ component: 'redis-store' });
    // A write that failed while the connection was down says nothing about the new connection:
    // without this, a node with no traffic (a 503 probe keeps the load balancer away) stays unready for good.
    deps.client.on('ready', () => {
      this.lastWriteFailed = false;
    });
  }

  /** False while Redis is unreachable or the last window failed to write (on the current connection). */
  get healthy(): boolean {
    return this.deps.client.status === 'ready' && !this.lastWriteFailed;
  }

  /** One actor's state, read and checked as `recoverMany` does. */
  async recover(actorId: string): Promise<Recovered> {
    const read = (await this.recoverMany([actorId])).get(actorId);
    if (read instanceof Error) throw read;
    return read ?? { events: [] };
  }

  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered | Error>> {
    const started = performance.now();
    try {
      let read: ReadonlyMap<string, Recovered | Error>;
      try {
        read = await recoverMany(this.deps.client, this.deps.keys, this.deps.shardOf, actorIds);
      } catch (err) {
        if (!(err instanceof BulkRecoveryError)) throw err;
        // Some actors could not be read: the others are recovered, the failed ones answer their own error.
        read = new Map<string, Recovered | Error>([...err.recovered, ...err.failed]);
      }
      const replicated = this.deps.replicated;
      const readShards = new Set([...read].flatMap(([id, r]) => (r instanceof Error ? [] : [this.deps.shardOf(id)])));
      if (replicated) await Promise.all([...readShards].map((s) => replicated(s)));
      return read;
    } finally {
      this.metrics.recoverySeconds.observe((performance.now() - started) / 1000);
    }
  }

  /** One actor's write, as a window of its own (tests and tools). */
  write(actorId: string, batch: WriteBatch): Promise<void> {
    return this.commit(this.deps.shardOf(actorId), [{ actorId, batch }]);
  }

  commit(shard: number, writes: readonly ActorWrite[], appends: readonly LogAppend[] = []): Promise<void> {
    const call = this.send(shard, writes, appends);
    this.inFlight.add(call);
    const forget = (): void => void this.inFlight.delete(call);
    call.then(forget, forget);
    return call;
  }

  /** Resolves once every window handed over so far has settled. */
  async close(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async send(shard: number, writes: readonly ActorWrite[], appends: readonly LogAppend[]): Promise<void> {
    const started = performance.now();
    const token = this.deps.fenceToken(shard);
    if (token === undefined) throw new FencedError(shard, `this node holds no lease on shard ${shard}`);
    // Everything that can throw (encoding) runs before the call is sent: a caller is never told
    // "failed" while its write may still land in Redis.
    const keysAndArgs: string[] = [this.deps.keys.fence(shard), this.deps.keys.reminders(shard)];
    const args: string[] = [];
    const reminders = new ReminderChanges();
    let bytes = 0;
    let events = 0;
    for (const { actorId, batch } of writes) {
      if (this.deps.shardOf(actorId) !== shard)
        throw new Error(`${actorId} is not in shard ${shard}: the host's shards differ from the store's`);
      let encoded: string[];
      let snapshot: string;
      try {
        encoded = batch.events.map(encodeEntry);
        snapshot = batch.snapshot ? JSON.stringify(batch.snapshot) : '';
        if (batch.events.some(hasReminderOps)) reminders.add(actorId, batch.events);
      } catch (err) {
        throw new Error(`cannot encode the write of ${actorId}: ${(err as Error).message}`, { cause: err });
      }
      keysAndArgs.push(
        this.deps.keys.journal(shard, actorId),
        this.deps.keys.snapshot(shard, actorId),
        this.deps.keys.actorMeta(shard, actorId),
      );
      const first = batch.events[0]?.seq ?? 0;
      args.push(String(encoded.length), String(first), batch.snapshot ? String(batch.snapshot.seq) : '', snapshot);
      for (const e of encoded) {
        args.push(e);
        bytes += e.length;
      }
      bytes += snapshot.length;
      events += encoded.length;
    }
    const sets = reminders.sets;
    const deletes = reminders.deletes;
    // The window's log entries (apps' event history): appended by the same call, after its checks.
    const logs = logArguments(
      appends,
      this.deps.logRetention ?? defaultLogRetention,
      (log) => this.deps.keys.events(shard, log),
      (log) => this.deps.keys.eventsChannel(shard, log),
    );
    bytes += logs.bytes;
    if (logs.skipped.length > 0) {
      // A bug of the caller (the host checks entries in their steps): the window is written without them.
      this.logSkipped.inc({ reason: 'encode' }, logs.skipped.length);
      this.log.error({ shard, logs: logs.skipped }, 'event log entries that cannot be encoded; skipped, the window is written');
    }
    for (const key of logs.keys) keysAndArgs.push(key);
    keysAndArgs.push(token, String(sets.length), String(deletes.length), ...logs.header);
    for (const [member, at] of sets) keysAndArgs.push(String(at), member);
    for (const member of deletes) keysAndArgs.push(member);
    for (const arg of args) keysAndArgs.push(arg);
    for (const arg of logs.args) keysAndArgs.push(arg);
    let statuses: string[];
    try {
      statuses = await this.client.fencedWrite(2 + 3 * writes.length + logs.keys.length, ...keysAndArgs);
    } catch (err) {
      // A timeout or a dropped connection says nothing about whether the script ran: ask Redis
      // (on the same connection, so after the script if it is still queued) before failing a
      // window that may be durable — failing it would drop its released effects (hub commands).
      if (fenceRejection(err) !== undefined || !(await this.landed(shard, token, writes))) throw this.failed(shard, token, err);
      this.log.warn({ err, shard }, 'window reported failed but it was written; released as written');
      statuses = writes.map(() => 'OK');
    }
    this.lastWriteFailed = false;
    const wrongType = skippedLogs(statuses, writes.length);
    if (wrongType.length > 0) {
      this.logSkipped.inc({ reason: 'wrongtype' }, wrongType.length);
      this.log.error({ shard, logs: wrongType }, 'event log keys of another type: their entries were skipped, the window is written');
    }
    const refused = statuses
      .slice(0, writes.length)
      .flatMap((status, i) => (status === 'OK' || status === 'NOT_WRITTEN' ? [] : [`${writes[i]!.actorId}: ${status}`]));
    if (refused.length > 0) {
      this.metrics.seqRejections.inc(refused.length);
      this.log.warn({ shard, refused }, "window refused: a journal moved on under its actor; the window's actors will re-read theirs");
      throw new Error(`window of shard ${shard} not written: journals are not where it expects them (${refused.join(', ')})`);
    }
    if (this.deps.replicated) await this.deps.replicated(shard);
    this.metrics.persistSeconds.observe((performance.now() - started) / 1000);
    this.metrics.windowActors.observe(writes.length);
    this.metrics.windowEvents.observe(events);
    this.metrics.bytesWritten.inc(bytes);
    if (sets.length > 0) this.metrics.reminderChanges.inc({ op: 'set' }, sets.length);
    if (deletes.length > 0) this.metrics.reminderChanges.inc({ op: 'delete' }, deletes.length);
  }

  /**
   * Every pending reminder of the shard's index, sorted by due time. Read with ZSCAN in chunks of
   * about `reminderLoadChunk` members, so neither Redis nor one reply holds a whole large shard;
   * a member seen twice (the scan may repeat one) counts once. Not a point-in-time read: a
   * reminder set or deleted by a window written during the load may or may not be in the result
   * (every reminder present throughout is). Members that are not `name@actorId` are skipped and logged.
   */
  async loadReminders(shard: number): Promise<readonly IndexedReminder[]> {
    const started = performance.now();
    const key = this.deps.keys.reminders(shard);
    const found = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, flat] = await this.deps.client.zscan(key, cursor, 'COUNT', this.reminderLoadChunk);
      for (let i = 0; i + 1 < flat.length; i += 2) found.set(flat[i]!, Number(flat[i + 1]));
      cursor = next;
    } while (cursor !== '0');
    const { reminders, skipped } = indexedReminders(found);
    if (skipped > 0) this.log.warn({ shard, key, skipped }, 'reminder index holds members that are not name@actorId; skipped');
    this.metrics.remindersLoaded.observe(reminders.length);
    this.metrics.reminderLoadSeconds.observe((performance.now() - started) / 1000);
    return reminders;
  }

  /**
   * True when the window is in Redis. The script is all or nothing and a shard has one window in
   * flight, so one actor's position tells: its last journaled seq (or snapshot seq) has reached
   * what this window wrote — and the shard's fence is still `token`, read in the same script: a
   * new owner (the lease lapsed while the call timed out) may have written the same seqs, and this
   * window's effects must not be released then. False when Redis cannot say.
   */
  private async landed(shard: number, token: string, writes: readonly ActorWrite[]): Promise<boolean> {
    const probe = writes.find((w) => w.batch.events.length > 0) ?? writes[0];
    if (!probe) return false;
    const { events, snapshot } = probe.batch;
    const [field, seq] = events.length > 0 ? ['last', events[events.length - 1]!.seq] : ['snap', snapshot?.seq ?? 0];
    try {
      const keys = [this.deps.keys.fence(shard), this.deps.keys.actorMeta(shard, probe.actorId)];
      return (await this.deps.client.eval(LANDED, 2, ...keys, token, field, String(seq))) === 1;
    } catch {
      return false;
    }
  }

  /** The error a failed window rejects with; a fence rejection also tells the node it lost the shard. */
  private failed(shard: number, token: string, err: unknown): Error {
    const current = fenceRejection(err);
    if (current === undefined) {
      this.metrics.writeFailures.inc();
      if (!this.lastWriteFailed) this.log.error({ err, shard }, 'redis write failed');
      this.lastWriteFailed = true;
      return err instanceof Error ? err : new Error(String(err));
    }
    this.metrics.fenceRejections.inc();
    this.log.error({ shard, current }, 'fenced: another owner holds this shard; its actors stop here');
    try {
      this.deps.onFenced(shard, current, token);
    } catch (e) {
      this.log.error({ err: e, shard }, 'onFenced handler threw');
    }
    return new FencedError(shard, `shard ${shard} is fenced: this node's token is stale (current ${current})`);
  }
}

/**
 * KEYS [fence, actorMeta], ARGV [token, field, seq]: 1 when the shard's fence is still `token` and
 * the actor's `field` (last journaled seq, or snapshot seq) has reached `seq` (`landed`).
 */
const LANDED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local stored = tonumber(redis.call('HGET', KEYS[2], ARGV[2]))
if stored and stored >= tonumber(ARGV[3]) then return 1 end
return 0
`;

const hasReminderOps = (e: JournalEntry): boolean => e.rem !== undefined && e.rem.length > 0;

/** A journal entry as stored: JSON of the whole entry `{seq, at, msg, rem?, sys?, from?}`. */
function encodeEntry(e: JournalEntry): string {
  return JSON.stringify(e);
}
