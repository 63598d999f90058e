/** Prometheus metrics of the hub ingress, created once per ingress; hot paths use pre-bound children. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

interface Inc {
  inc(n?: number): void;
}

/**
 * One set per registry: constructing a second `HubMetrics` on the same registry throws (prom-client
 * refuses duplicate names), which is what "created once" means here.
 */
export class HubMetrics {
  /** Streams currently open on this node, authenticated or not yet. */
  readonly streams: Gauge;
  readonly reportsReceived: Inc;
  /** Reports the device actor applied (durable). */
  readonly reportsApplied: Inc;
  /** Reports already applied: at or below the welcome's last_durable_seq, or older than the device's lastSeq. */
  readonly reportsDuplicate: Inc;
  /** Reports answered with an `error` (bad seq, unlisted device, bad value, domain rejection). */
  readonly reportsRejected: Inc;
  /** Device asks retried after overloaded / timeout / unavailable. */
  readonly reportRetries: Inc;
  readonly acks: Inc;
  readonly commandsSent: Inc;
  /** Desired deltas written to hub streams. */
  readonly desiredSent: Inc;
  /** Commands not written because their stream already carried (or holds waiting) the same command id. */
  readonly commandsSkipped: Inc;
  /** Desired deltas not written because their stream already carried a newer version for the device. */
  readonly desiredSkipped: Inc;
  /** Streams reset because the hub does not read (hub-outbound.ts: a bound passed, or no drain for the stall time). */
  readonly outboundOverflows: Inc;
  /** Hub connections (TCP) open on this node. */
  readonly connections: Gauge;
  /** Hub connections refused at the per-node cap, or closed because they opened no gRPC call in time. */
  readonly connectionsRefused: Counter<'reason'>;
  /** Seconds from the first receipt of a report on a stream to the ack that covers it. */
  readonly ackLatency: Histogram;
  private readonly streamEnds: Counter<'status'>;
  private readonly endsByStatus = new Map<string, Inc>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.streams = new Gauge({ name: 'iot_hub_streams', help: 'Hub streams open on this node', registers });
    const reports = new Counter({
      name: 'iot_hub_reports_total',
      help: 'Hub reports by outcome: received, applied, duplicate (already durable), rejected (answered with an error)',
      labelNames: ['outcome'],
      registers,
    });
    this.reportsReceived = reports.labels('received');
    this.reportsApplied = reports.labels('applied');
    this.reportsDuplicate = reports.labels('duplicate');
    this.reportsRejected = reports.labels('rejected');
    this.reportRetries = new Counter({
      name: 'iot_hub_report_retries_total',
      help: 'Device asks for hub reports retried after overloaded, timeout or unavailable',
      registers,
    });
    this.acks = new Counter({ name: 'iot_hub_acks_total', help: 'Cumulative acks sent to hubs', registers });
    this.commandsSent = new Counter({ name: 'iot_hub_commands_sent_total', help: 'Commands written to hub streams', registers });
    this.desiredSent = new Counter({ name: 'iot_hub_desired_sent_total', help: 'Desired deltas written to hub streams', registers });
    const skipped = new Counter({
      name: 'iot_hub_down_skipped_total',
      help: 'Messages not written to a hub stream: a command whose id the stream already carried or holds waiting (a re-send on reconnect racing the first send), a desired delta older than one the stream already carried',
      labelNames: ['kind'],
      registers,
    });
    this.commandsSkipped = skipped.labels('command');
    this.desiredSkipped = skipped.labels('desired');
    this.outboundOverflows = new Counter({
      name: 'iot_hub_outbound_overflows_total',
      help: 'Hub streams reset because the hub does not read: more acks and errors waiting than HUB_OUTBOUND_QUEUE, more commands and deltas than its devices can have pending, or nothing drained for the stall time while messages wait',
      registers,
    });
    this.connections = new Gauge({ name: 'iot_hub_connections', help: 'Hub connections (TCP) open on this node', registers });
    this.connectionsRefused = new Counter({
      name: 'iot_hub_connections_refused_total',
      help: 'Hub connections refused at HUB_MAX_CONNECTIONS (cap), or closed because they opened no gRPC call within HUB_HELLO_TIMEOUT_MS (silent)',
      labelNames: ['reason'],
      registers,
    });
    this.streamEnds = new Counter({
      name: 'iot_hub_stream_ends_total',
      help: 'Hub streams ended, by gRPC status (CANCELLED when the hub or the transport ended it)',
      labelNames: ['status'],
      registers,
    });
    this.ackLatency = new Histogram({
      name: 'iot_hub_ack_latency_seconds',
      help: 'Time from the first receipt of a report on a stream to the ack that covers it',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** Counts a stream end; `status` is a gRPC status name. */
  streamEnded(status: string): void {
    let child = this.endsByStatus.get(status);
    if (!child) {
      child = this.streamEnds.labels(status);
      this.endsByStatus.set(status, child);
    }
    child.inc();
  }
}
