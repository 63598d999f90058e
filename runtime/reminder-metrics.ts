/** Metrics of durable reminders and the outbox, created once per host. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type OutboxOutcome = 'delivered' | 'retried' | 'duplicate' | 'dropped';

export class ReminderMetrics {
  readonly fired: Counter<'kind'>;
  /** Due → handled by its actor, seconds (a takeover or a node down makes it late). */
  readonly lateness: Histogram<'kind'>;
  /** Deliveries dropped because the reminder was cancelled or moved meanwhile. */
  readonly stale: Counter;
  readonly outbox: Counter<'outcome'>;
  /** Reminders deleted because handling them crashed their actor on every attempt. */
  readonly crashed: Counter;

  /** @param pending read at scrape time: reminders scheduled on this node. */
  constructor(registry: Registry, pending: () => number) {
    const registers = [registry];
    this.fired = new Counter({
      name: 'iot_reminders_fired_total',
      help: 'Reminders (and wake-ups) delivered to their actor',
      labelNames: ['kind'],
      registers,
    });
    this.lateness = new Histogram({
      name: 'iot_reminder_lateness_seconds',
      help: 'How late a reminder reached its actor after it was due',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 3600],
      registers,
    });
    this.stale = new Counter({
      name: 'iot_reminders_stale_total',
      help: 'Reminder deliveries dropped because the reminder was cancelled or moved before it came due',
      registers,
    });
    this.crashed = new Counter({
      name: 'iot_reminders_crashed_total',
      help: 'Reminders deleted because handling them crashed their actor on every attempt',
      registers,
    });
    this.outbox = new Counter({
      name: 'iot_outbox_deliveries_total',
      help: 'Outbox entries (messages to actors elsewhere) by outcome: delivered, retried, duplicate (dropped by the receiver), dropped (refused for good)',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'iot_reminders_pending',
      help: 'Reminders pending on the shards this node serves',
      registers,
      collect() {
        this.set(pending());
      },
    });
  }
}
