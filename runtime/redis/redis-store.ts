/** The durable store: actor journals and snapshots in Redis, written by group commit through the fence script. */
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { JournalEntry, PersistencePort, Recovered, WriteBatch } from '../persistence-port.ts';
import { defineFencedWrite, fenceRejection, type FencedWriteClient } from './fenced-write.ts';
import type { KeyLayout } from './key-layout.ts';
import type { RedisClient } from './redis-connection.ts';
import { RedisStoreMetrics } from './redis-store-metrics.ts';

export interface RedisStoreConfig {
  /** Milliseconds a window stays open after its first write before it is flushed. */
  readonly windowMs: number;
  /** Actor writes that flush a window at once, and the most one round trip carries. */
  readonly maxWindowWrites: number;
}

export const defaultRedisStoreConfig: RedisStoreConfig = { windowMs: 2, maxWindowWrites: 5_000 };

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
}

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

interface PendingActorWrite {
  readonly actorId: string;
  readonly batch: WriteBatch;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * Group commit: writes from every actor during a short window go to Redis together, one fenced
 * script call per shard, all pipelined in one round trip; each caller's promise settles when its
 * shard's call returns. One window is in flight at a time; writes arriving meanwhile form the
 * next. The actor host issues at most one write per actor at a time, so a window holds at most
 * one write (and at most one snapshot) per actor.
 */
export class RedisStore implements PersistencePort {
  readonly durable = true;
  private readonly client: RedisClient & FencedWriteClient;
  private readonly config: RedisStoreConfig;
  private readonly metrics: RedisStoreMetrics;
  private readonly log: Logger;
  private window: PendingActorWrite[] = [];
  private windowOpenedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private lastWriteFailed = false;

  constructor(
    private readonly deps: RedisStoreDeps,
    config: Partial<RedisStoreConfig> = {},
  ) {
    this.config = { ...defaultRedisStoreConfig, ...config };
    this.client = defineFencedWrite(deps.client);
    this.metrics = new RedisStoreMetrics(deps.registry);
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

  async recover(actorId: string): Promise<Recovered> {
    const started = performance.now();
    const shard = this.deps.shardOf(actorId);
    const [snap, entries] = await Promise.all([
      this.deps.client.get(this.deps.keys.snapshot(shard, actorId)),
      this.deps.client.lrange(this.deps.keys.journal(shard, actorId), 0, -1),
    ]);
    const snapshot = snap === null ? undefined : (JSON.parse(snap) as { seq: number; state: unknown });
    const after = snapshot?.seq ?? 0;
    // A journal entry at or below the snapshot can only be one a trim has not removed yet.
    const events = entries.map((e) => JSON.parse(e) as JournalEntry).filter((e) => e.seq > after);
    this.metrics.recoverySeconds.observe((performance.now() - started) / 1000);
    return snapshot ? { snapshot, events } : { events };
  }

  write(actorId: string, batch: WriteBatch): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.window.length === 0) this.windowOpenedAt = performance.now();
      this.window.push({ actorId, batch, resolve, reject });
      if (this.window.length >= this.config.maxWindowWrites) this.flushSoon(0);
      else this.flushSoon(this.config.windowMs);
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined; // a stale handle would stop `flushSoon` from ever arming a timer again
    while (this.window.length > 0 || this.flushing) {
      if (!this.flushing) await this.flush();
      else await new Promise((r) => setTimeout(r, 1));
    }
  }

  private flushSoon(delayMs: number): void {
    if (this.flushing) return; // the in-flight window's completion flushes the next one
    if (delayMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, delayMs);
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.window.length === 0) return;
    this.flushing = true;
    // At most maxWindowWrites per round trip; the rest goes in the next one, at once.
    const writes = this.window.splice(0, this.config.maxWindowWrites);
    const openedAt = this.windowOpenedAt;
    try {
      await this.writeWindow(writes, openedAt);
    } catch (err) {
      // A throwing dependency (shardOf, fenceToken) before anything was sent: fail the window
      // rather than leave its callers waiting forever (settling twice is a no-op).
      this.log.error({ err }, 'group commit failed');
      const error = err instanceof Error ? err : new Error(String(err));
      for (const w of writes) w.reject(error);
    } finally {
      this.flushing = false;
      if (this.window.length > 0) this.flushSoon(this.window.length >= this.config.maxWindowWrites ? 0 : this.config.windowMs);
    }
  }

  private async writeWindow(writes: PendingActorWrite[], openedAt: number): Promise<void> {
    const byShard = new Map<number, PendingActorWrite[]>();
    for (const w of writes) {
      const shard = this.deps.shardOf(w.actorId);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(w);
    }
    let bytes = 0;
    let events = 0;
    // Everything that can throw (encoding, the deps) runs before the first call is sent: a
    // caller is never told "failed" while its write may still land in Redis.
    const scripts: { shard: number; token: string; sent: PendingActorWrite[]; keysAndArgs: string[] }[] = [];
    for (const [shard, list] of byShard) {
      const token = this.deps.fenceToken(shard);
      if (token === undefined) {
        const err = new FencedError(shard, `this node holds no lease on shard ${shard}`);
        for (const w of list) w.reject(err);
        continue;
      }
      const keys: string[] = [this.deps.keys.fence(shard)];
      const args: string[] = [token];
      const sent: PendingActorWrite[] = [];
      for (const w of list) {
        let encoded: string[];
        let snapshot: string;
        try {
          encoded = w.batch.events.map((e) => JSON.stringify(e));
          snapshot = w.batch.snapshot ? JSON.stringify(w.batch.snapshot) : '';
        } catch (err) {
          // Only this actor's write fails (as in the memory store); the rest of the window goes on.
          w.reject(new Error(`cannot encode the write of ${w.actorId} as JSON: ${(err as Error).message}`, { cause: err }));
          continue;
        }
        sent.push(w);
        keys.push(
          this.deps.keys.journal(shard, w.actorId),
          this.deps.keys.snapshot(shard, w.actorId),
          this.deps.keys.actorMeta(shard, w.actorId),
        );
        const first = w.batch.events[0]?.seq ?? 0;
        args.push(String(encoded.length), String(first), w.batch.snapshot ? String(w.batch.snapshot.seq) : '', snapshot, ...encoded);
        for (const e of encoded) bytes += e.length;
        bytes += snapshot.length;
        events += encoded.length;
      }
      if (sent.length > 0) scripts.push({ shard, token, sent, keysAndArgs: [...keys, ...args] });
    }
    const calls = scripts.map(({ shard, token, sent, keysAndArgs }) =>
      this.client.fencedWrite(1 + 3 * sent.length, ...keysAndArgs).then(
        (statuses) => {
          this.lastWriteFailed = false;
          sent.forEach((w, i) => {
            const status = statuses[i];
            if (status === 'OK') w.resolve();
            else {
              this.metrics.seqRejections.inc();
              this.log.warn({ actor: w.actorId, status }, 'write refused: the journal moved on under this actor; it will re-read it');
              w.reject(new Error(`journal of ${w.actorId} is not where this write expects it (${String(status)})`));
            }
          });
        },
        (err: unknown) => this.failShard(shard, token, sent, err),
      ),
    );
    await Promise.all(calls);
    this.metrics.persistSeconds.observe((performance.now() - openedAt) / 1000);
    this.metrics.windowActors.observe(writes.length);
    this.metrics.windowEvents.observe(events);
    this.metrics.bytesWritten.inc(bytes);
  }

  private failShard(shard: number, token: string, list: PendingActorWrite[], err: unknown): void {
    const current = fenceRejection(err);
    if (current === undefined) {
      this.metrics.writeFailures.inc();
      if (!this.lastWriteFailed) this.log.error({ err, shard }, 'redis write failed');
      this.lastWriteFailed = true;
      const error = err instanceof Error ? err : new Error(String(err));
      for (const w of list) w.reject(error);
      return;
    }
    this.metrics.fenceRejections.inc();
    this.log.error({ shard, current }, 'fenced: another owner holds this shard; its actors stop here');
    const error = new FencedError(shard, `shard ${shard} is fenced: this node's token is stale (current ${current})`);
    for (const w of list) w.reject(error);
    try {
      this.deps.onFenced(shard, current, token);
    } catch (err) {
      this.log.error({ err, shard }, 'onFenced handler threw');
    }
  }
}
