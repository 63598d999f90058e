/** The report path of one hub stream: credit window, per-report checks, ordered device asks with retry, cumulative acks. */
import { deviceActorId } from '../../actors/actor-id.ts';
import type { Report, ReportBatch } from '../../actors/device-state.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { askActor } from '../ask-actor.ts';
import type { ErrorCode } from '../error-codes.ts';
import { AckTracker, type PendingReport } from './ack-tracker.ts';
import { DeviceLanes, type RetryPolicy } from './device-lanes.ts';
import type { HubMetrics } from './hub-metrics.ts';
import { errorMessage, fromWireAttributes, parseSeq, type CloudMessage, type WireReport } from './hub-wire.ts';

export interface ReportIntakeDeps {
  readonly homeId: string;
  /** Device ids the hub listed in its hello: the only ones it may report for. */
  readonly devices: ReadonlySet<string>;
  /** From the welcome: every report with seq <= it is already applied and durable. */
  readonly lastDurableSeq: number;
  /** Credit window: most reports received and not yet acked. */
  readonly window: number;
  readonly router: ActorRouter;
  readonly metrics: HubMetrics;
  /** Epoch ms. */
  readonly clock: () => number;
  readonly retry: RetryPolicy;
  readonly log: Logger;
  /** Writes to the hub (a no-op once the stream is ending). */
  readonly send: (msg: CloudMessage) => void;
  /** Ends the stream with a status. */
  readonly fail: (code: ErrorCode, details: string) => void;
  /** An ack went out; `inFlight` reports remain unacked. */
  readonly acked: (upToSeq: number, inFlight: number) => void;
}

interface Job {
  readonly entry: PendingReport;
  readonly deviceId: string;
  readonly msg: Omit<Report, 'type'>;
}

/** Runtime failures worth retrying: the report may succeed a moment later. */
const TRANSIENT: ReadonlySet<string> = new Set(['overloaded', 'timeout', 'unavailable']);

/**
 * A report is *processed* once its device actor replied (the reply comes only when the step is
 * durable) or once it was answered with an `error` naming its seq. The ack is the highest seq
 * below which every report received on this stream is processed.
 */
export class ReportIntake {
  /** Highest seq received on this stream; a report must exceed it. */
  private lastSeq = 0;
  private readonly tracker: AckTracker;
  private readonly lanes: DeviceLanes<Job>;

  constructor(private readonly deps: ReportIntakeDeps) {
    this.tracker = new AckTracker({ onAck: (upToSeq, covered) => this.onAck(upToSeq, covered) });
    this.lanes = new DeviceLanes<Job>({
      run: (jobs) => this.ask(jobs).catch((err: unknown) => this.crashed(err, jobs)),
      onGiveUp: (jobs, reason) =>
        deps.fail(
          'unavailable',
          `report seq ${jobs[0]!.msg.seq} of device ${jobs[0]!.deviceId} failed for ${deps.retry.giveUpAfterMs} ms (${reason}); reconnect and re-send`,
        ),
      onRetry: () => deps.metrics.reportRetries.inc(),
      retry: deps.retry,
      clock: deps.clock,
    });
  }

  /** Reports received and not yet acked. */
  get inFlight(): number {
    return this.tracker.inFlight;
  }

  /** Takes one `reports` batch; a batch that would overrun the credit window ends the stream. */
  accept(items: readonly WireReport[]): void {
    const inFlight = this.tracker.inFlight;
    if (inFlight + items.length > this.deps.window) {
      this.deps.fail(
        'resource_exhausted',
        `a batch of ${items.length} reports with ${inFlight} unacked exceeds the window of ${this.deps.window}`,
      );
      return;
    }
    this.deps.metrics.reportsReceived.inc(items.length);
    for (const item of items) this.one(item);
  }

  /** No more asks, retries or acks (the stream is ending). */
  stop(): void {
    this.lanes.stop();
    this.tracker.stop();
  }

  private one(r: WireReport): void {
    const { metrics } = this.deps;
    const seq = parseSeq(r.seq);
    if (seq === undefined) {
      this.reject('invalid_argument', `seq ${r.seq} must be an integer in 1..${Number.MAX_SAFE_INTEGER}`, r.seq);
      return;
    }
    if (seq <= this.lastSeq) {
      this.reject(
        'invalid_argument',
        `seq ${seq} is not greater than ${this.lastSeq}, the highest seq received on this stream: ignored`,
        r.seq,
      );
      return;
    }
    this.lastSeq = seq;
    const entry = this.tracker.receive(seq, this.deps.clock());
    if (seq <= this.deps.lastDurableSeq) {
      metrics.reportsDuplicate.inc();
      this.tracker.complete(entry);
      return;
    }
    if (!this.deps.devices.has(r.device_id)) {
      this.settle(entry, 'permission_denied', `device ${JSON.stringify(r.device_id)} is not one this hub listed in its hello`);
      return;
    }
    const tsMs = Number(r.ts_ms);
    if (!Number.isSafeInteger(tsMs)) {
      this.settle(entry, 'invalid_argument', `ts_ms ${r.ts_ms} must be epoch milliseconds`);
      return;
    }
    const attributes = fromWireAttributes(r.attributes);
    if (!attributes.ok) {
      this.settle(entry, 'invalid_argument', attributes.message);
      return;
    }
    const msg: Omit<Report, 'type'> = {
      seq,
      tsMs,
      attributes: attributes.value,
      ...(r.event === undefined ? {} : { event: r.event }),
    };
    this.lanes.push(r.device_id, { entry, deviceId: r.device_id, msg });
  }

  /** One device ask for a batch of its reports; resolves a reason to retry, or undefined when they are processed. */
  private async ask(jobs: readonly Job[]): Promise<string | undefined> {
    const deviceId = jobs[0]!.deviceId;
    const msg: ReportBatch = { type: 'report.batch', items: jobs.map((j) => j.msg) };
    const r = await askActor(this.deps.router, deviceActorId(this.deps.homeId, deviceId), msg);
    if (!r.ok) {
      const { code, message } = r.error;
      if (TRANSIENT.has(code)) return `${code}: ${message}`;
      if (code === 'stopping') {
        this.deps.fail('stopping', 'node shutting down');
        return undefined;
      }
      for (const job of jobs) this.settle(job.entry, code, message); // a domain error, or actor_crashed: retrying will not help
      return undefined;
    }
    let applied = 0;
    let duplicate = 0;
    r.value.results.forEach((result, i) => {
      const job = jobs[i]!;
      if (!result.ok) this.settle(job.entry, result.error.code, result.error.message);
      else {
        if (result.value.applied) applied++;
        else duplicate++;
        this.tracker.complete(job.entry);
      }
    });
    // Counted once per batch: prom-client label lookups per report showed in profiles.
    if (applied > 0) this.deps.metrics.reportsApplied.inc(applied);
    if (duplicate > 0) this.deps.metrics.reportsDuplicate.inc(duplicate);
    return undefined;
  }

  /** A bug in the ask or in handling its reply, not the hub's fault: end this stream only. */
  private crashed(err: unknown, jobs: readonly Job[]): undefined {
    this.deps.log.error({ err, deviceId: jobs[0]!.deviceId, seq: jobs[0]!.msg.seq }, 'report batch failed');
    this.deps.fail('internal', 'internal error');
    return undefined;
  }

  /** A report that will not be applied: tell the hub why, and let the ack cover it. */
  private settle(entry: PendingReport, code: ErrorCode, message: string): void {
    this.reject(code, message, String(entry.seq));
    this.tracker.complete(entry);
  }

  private reject(code: ErrorCode, message: string, seq: string): void {
    this.deps.metrics.reportsRejected.inc();
    this.deps.send(errorMessage(code, message, seq));
  }

  private onAck(upToSeq: number, covered: readonly PendingReport[]): void {
    const { metrics, clock } = this.deps;
    const now = clock();
    for (const p of covered) metrics.ackLatency.observe((now - p.receivedAt) / 1000);
    metrics.acks.inc();
    this.deps.send({ ack: { up_to_seq: String(upToSeq) } });
    this.deps.acked(upToSeq, this.tracker.inFlight);
  }
}
