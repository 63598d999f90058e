/** Metrics of the Redis store: write latency, window sizes, bytes, fence rejections, recovery time, reminder index. */
import { Counter, Histogram, type Registry } from 'prom-client';

export class RedisStoreMetrics {
  readonly persistSeconds: Histogram;
  readonly windowActors: Histogram;
  readonly windowEvents: Histogram;
  readonly bytesWritten: Counter;
  readonly fenceRejections: Counter;
  readonly writeFailures: Counter;
  readonly seqRejections: Counter;
  readonly recoverySeconds: Histogram;
  readonly reminderChanges: Counter<'op'>;
  readonly remindersLoaded: Histogram;
  readonly reminderLoadSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.persistSeconds = new Histogram({
      name: 'iot_persist_seconds',
      help: 'Time from a write entering the group-commit window to Redis confirming it',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.windowActors = new Histogram({
      name: 'iot_persist_window_actors',
      help: 'Actors written together in one group-commit window',
      buckets: [1, 5, 20, 100, 500, 2000, 10000],
      registers,
    });
    this.windowEvents = new Histogram({
      name: 'iot_persist_window_events',
      help: 'Journal entries written together in one group-commit window',
      buckets: [1, 5, 20, 100, 500, 2000, 10000, 50000],
      registers,
    });
    this.bytesWritten = new Counter({
      name: 'iot_persist_bytes_total',
      help: 'Bytes of journal entries and snapshots written to Redis',
      registers,
    });
    this.fenceRejections = new Counter({
      name: 'iot_persist_fence_rejections_total',
      help: "Writes Redis rejected because this node's fence token for the shard is stale",
      registers,
    });
    this.writeFailures = new Counter({
      name: 'iot_persist_write_failures_total',
      help: 'Windows whose Redis write failed (connection, timeout)',
      registers,
    });
    this.seqRejections = new Counter({
      name: 'iot_persist_seq_rejections_total',
      help: 'Actor writes Redis refused because the journal had moved on (a late write landed); the actor re-reads it',
      registers,
    });
    this.recoverySeconds = new Histogram({
      name: 'iot_persist_recovery_seconds',
      help: "Time to read an actor's snapshot and journal from Redis",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    this.reminderChanges = new Counter({
      name: 'iot_reminder_index_changes_total',
      help: "Net changes written to the shards' reminder indexes (op: set or delete), with their windows",
      labelNames: ['op'],
      registers,
    });
    this.remindersLoaded = new Histogram({
      name: 'iot_reminders_loaded',
      help: "Pending reminders read from a shard's reminder index at takeover",
      buckets: [0, 10, 100, 1000, 5000, 20000, 100000],
      registers,
    });
    this.reminderLoadSeconds = new Histogram({
      name: 'iot_reminders_load_seconds',
      help: "Time to read a shard's reminder index from Redis",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
  }
}
