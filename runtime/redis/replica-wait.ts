/**
 * REDIS_WAIT_REPLICAS: a window's acks wait until Redis replicas hold its write (`WAIT`), one WAIT
 * per master per tick, shared by every window confirmed in that tick.
 */
import { Cluster, Command } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import { LogThrottle } from '../log-throttle.ts';
import type { Logger } from '../logger.ts';
import type { KeyLayout } from './key-layout.ts';
import type { RedisClient } from './redis-connection.ts';

export interface ReplicaWaitConfig {
  /** Replicas each write must reach; at least 1 (0 means no ReplicaWait at all). */
  readonly replicas: number;
  /** Milliseconds one WAIT waits for them (`WAIT <replicas> <timeoutMs>`). */
  readonly timeoutMs: number;
}

/** Fewer replicas than asked acknowledged the writes in time, or the WAIT could not be asked: the window is not acked. */
export class ReplicaWaitError extends Error {
  override readonly name = 'ReplicaWaitError';
  readonly code = 'REDIS_REPLICAS_SHORT';
  constructor(
    message: string,
    /** Replicas that acknowledged; undefined when the WAIT itself failed. */
    readonly reached: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The part of an ioredis connection a WAIT needs (tests pass a fake). */
export interface WaitConnection {
  /** The socket of the current connection: a WAIT only covers writes made on the same one. */
  readonly stream?: unknown;
  sendCommand(command: Command): unknown;
}

/** Milliseconds a WAIT's reply may take beyond its own timeout before the client gives up on it. */
export const WAIT_REPLY_MARGIN_MS = 2_000;

/** One WAIT being gathered: the windows confirmed in this tick on one connection. */
interface Batch {
  readonly conn: WaitConnection;
  readonly stream: unknown;
  readonly waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

/**
 * After a successful window write, `confirm(shard)` resolves once `replicas` replicas acknowledged
 * every write made so far on the connection (the master) that took it, or rejects with a
 * ReplicaWaitError. Redis' WAIT counts the replication offset of the connection that asks, so it
 * is sent on that very connection: on a Redis Cluster client, the connection to the master of the
 * shard's slot. The confirms of one tick share one WAIT per connection, sent at the end of the tick:
 * every write they confirm was answered before it was sent, so it covers them all. If the
 * connection changed in between (a reconnect, a Sentinel failover), the WAIT would say nothing
 * about them: they fail.
 */
export class ReplicaWait {
  private readonly batches = new Map<WaitConnection, Batch>();
  private scheduled = false;
  private readonly waitSeconds: Histogram;
  private readonly failures: Counter<'reason'>;
  private readonly windows: Counter;
  private readonly log: Logger;
  private readonly throttle = new LogThrottle(1, 10_000);

  constructor(
    private readonly connectionOf: (shard: number) => WaitConnection,
    private readonly config: ReplicaWaitConfig,
    registry: Registry,
    logger: Logger,
  ) {
    if (!Number.isInteger(config.replicas) || config.replicas < 1)
      throw new Error(`replicas must be an integer ≥ 1, got ${config.replicas}`);
    if (!Number.isInteger(config.timeoutMs) || config.timeoutMs < 1)
      throw new Error(`timeoutMs must be an integer ≥ 1, got ${config.timeoutMs}`);
    this.log = logger.child({ component: 'replica-wait' });
    const registers = [registry];
    this.waitSeconds = new Histogram({
      name: 'iot_redis_replica_wait_seconds',
      help: 'Time of one WAIT for REDIS_WAIT_REPLICAS replicas (shared by the windows confirmed in the same tick)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.windows = new Counter({
      name: 'iot_redis_replica_wait_windows_total',
      help: 'Windows whose acks waited for replicas (divided by iot_redis_replica_wait_seconds_count: windows per WAIT)',
      registers,
    });
    this.failures = new Counter({
      name: 'iot_redis_replica_wait_failures_total',
      help:
        'Windows (and recoveries) not acked because their replication was not confirmed: reason short = fewer than ' +
        'REDIS_WAIT_REPLICAS replicas acknowledged in time, unknown = the WAIT could not be asked or answered (connection down or changed)',
      labelNames: ['reason'],
      registers,
    });
  }

  /** Resolves once the writes of `shard` made so far reached the replicas; rejects with a ReplicaWaitError. */
  confirm(shard: number): Promise<void> {
    this.windows.inc();
    let conn: WaitConnection;
    try {
      conn = this.connectionOf(shard);
    } catch (err) {
      return Promise.reject(
        this.failed(1, new ReplicaWaitError(`no connection for shard ${shard}: ${(err as Error).message}`, undefined, { cause: err })),
      );
    }
    let batch = this.batches.get(conn);
    if (!batch || batch.stream !== conn.stream) {
      if (batch) this.send(batch); // the connection changed since: that batch learns it at once
      batch = { conn, stream: conn.stream, waiters: [] };
      this.batches.set(conn, batch);
    }
    const joined = batch;
    const done = new Promise<void>((resolve, reject) => joined.waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      // After every reply of this I/O turn: windows answered together share the WAIT.
      setImmediate(() => this.flush());
    }
    return done;
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const b of batches) this.send(b);
  }

  private send(batch: Batch): void {
    if (this.batches.get(batch.conn) === batch) this.batches.delete(batch.conn);
    const { replicas, timeoutMs } = this.config;
    const settle = (err: ReplicaWaitError | undefined): void => {
      if (err) this.failed(batch.waiters.length, err);
      for (const w of batch.waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
    };
    if (batch.conn.stream !== batch.stream) {
      settle(new ReplicaWaitError('the Redis connection changed after the write: whether replicas hold it is unknown', undefined));
      return;
    }
    const started = performance.now();
    const command = new Command('wait', [String(replicas), String(timeoutMs)], { replyEncoding: 'utf8' });
    // Its own bound (the first one set wins over the client's commandTimeout): a REDIS_WAIT_TIMEOUT_MS
    // above the command timeout is not cut short, and a WAIT on a silent socket still ends.
    command.setTimeout(timeoutMs + WAIT_REPLY_MARGIN_MS);
    // Sent straight on the connection (no auto-pipeline): the WAIT must follow the writes it covers on that socket.
    batch.conn.sendCommand(command);
    command.promise.then(
      (reply: unknown) => {
        this.waitSeconds.observe((performance.now() - started) / 1000);
        const reached = Number(reply);
        settle(
          reached >= replicas
            ? undefined
            : new ReplicaWaitError(`only ${reached} of ${replicas} Redis replicas acknowledged the write within ${timeoutMs} ms`, reached),
        );
      },
      (err: unknown) => {
        const cause = err instanceof Error ? err : new Error(String(err));
        settle(new ReplicaWaitError(`WAIT for ${replicas} Redis replicas failed: ${cause.message}`, undefined, { cause }));
      },
    );
  }

  private failed(windows: number, err: ReplicaWaitError): ReplicaWaitError {
    const short = err.reached !== undefined;
    this.failures.inc({ reason: short ? 'short' : 'unknown' }, windows);
    // Throttled: a replica that is gone fails every window until it is back.
    const suppressed = this.throttle.admit();
    if (suppressed !== undefined)
      this.log.warn(
        { err: err.message, reached: err.reached, wanted: this.config.replicas, windows, suppressed },
        short
          ? 'windows not acked: too few Redis replicas acknowledged their writes in time; hubs re-send their reports'
          : 'windows not acked: whether Redis replicas hold their writes is unknown (WAIT failed); hubs re-send their reports',
      );
    return err;
  }
}

/**
 * The connection a shard's writes go through: the client itself (one server, or the master a
 * Sentinel names), or on a Redis Cluster the connection to the master that serves the slot of the
 * shard's keys (they share one hash tag, so one slot).
 */
export function shardConnection(client: RedisClient, keys: KeyLayout): (shard: number) => WaitConnection {
  if (!(client instanceof Cluster)) return () => client;
  return (shard) => {
    const slot = keySlot(keys.fence(shard));
    const nodeKey = client.slots[slot]?.[0];
    if (nodeKey === undefined) throw new Error(`the Redis Cluster has no node for slot ${slot} yet`);
    const master = client.nodes('master').find((r) => `${r.options.host}:${r.options.port}` === nodeKey);
    if (!master) throw new Error(`no connection to ${nodeKey}, the master of slot ${slot}`);
    return master;
  };
}

/** CRC16/XMODEM table (polynomial 0x1021), as Redis Cluster hashes keys. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The Redis Cluster slot of `key` (0..16383): CRC16 of its hash tag (`{...}`, when not empty) or of the whole key. */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc & 0x3fff;
}
