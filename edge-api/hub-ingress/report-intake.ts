/** The report path of one hub stream: credit window, per-report checks, ordered device asks with retry, cumulative acks. */
import { deviceActorId } from '../../actors/actor-id.ts';
import type { Report, ReportBatch } from '../../actors/device-state.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import {
  carrierOf,
  endSpan,
  runWithCarrier,
  SpanKind,
  startSpanFrom,
  tracingOn,
  type Span,
  type TraceCarrier,
} from '../../runtime/tracing.ts';
import { askActor } from '../ask-actor.ts';
import type { ErrorCode } from '../error-codes.ts';
import { AckTracker, type PendingReport } from './ack-tracker.ts';
import { DeviceLanes, type RetryPolicy } from './device-lanes.ts';
import type { DecodedReport } from './hub-codec.ts';
import type { HubMetrics } from './hub-metrics.ts';
import { errorMessage, fromWireAttributes, parseSeq, type CloudMessage } from './hub-wire.ts';

export interface ReportIntakeDeps {
  readonly homeId: string;
  /** The hub's id (span attributes). */
  readonly hubId?: string;
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

/**
 * A report received on this stream: the ack tracker's entry and, once it passed the checks here,
 * what goes to its device actor. One object per report from receipt to ack.
 */
interface Job extends PendingReport {
  readonly deviceId: string;
  msg: Omit<Report, 'type'> | undefined;
  /** The span of the `reports` message it came in (tracing on only). */
  trace?: ReportTrace;
}

/**
 * The `hub report` span of one `reports` message: from receipt until the ack covers its last
 * report; the device steps that apply them are its children (on whichever node owns the home).
 */
interface ReportTrace {
  readonly span: Span;
  readonly carrier: TraceCarrier | undefined;
  /** Its reports not yet acked. */
  open: number;
}

/**
 * How far ahead of the node's clock a report's `ts_ms` may be: a day covers any hub clock skew; a
 * later time is a hub bug that would corrupt time-ordered views. The earliest accepted is 1 (the
 * epoch itself and anything before is not a reading's time).
 */
export const MAX_TS_AHEAD_MS = 24 * 60 * 60 * 1000;

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
  /**
   * Reports refused before they were tracked (a bad or repeated seq) since the last ack: they count
   * against the credit window as unacked reports do, so a hub sending only those is bounded too
   * (each costs the node an error message down) and its stream ends with RESOURCE_EXHAUSTED.
   */
  private rejectedSinceAck = 0;
  private readonly tracker: AckTracker<Job>;
  private readonly lanes: DeviceLanes<Job>;
  /** Report spans not ended yet (tracing on only): ended when the stream stops. */
  private traces: Set<ReportTrace> | undefined;

  constructor(private readonly deps: ReportIntakeDeps) {
    this.tracker = new AckTracker<Job>({ onAck: (upToSeq, covered) => this.onAck(upToSeq, covered) });
    this.lanes = new DeviceLanes<Job>({
      run: (jobs) => this.ask(jobs),
      onGiveUp: (jobs, reason) =>
        deps.fail(
          'unavailable',
          `report seq ${jobs[0]!.seq} of device ${jobs[0]!.deviceId} failed for ${deps.retry.giveUpAfterMs} ms (${reason}); reconnect and re-send`,
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
  accept(items: readonly DecodedReport[]): void {
    const inFlight = this.tracker.inFlight;
    const rejected = this.rejectedSinceAck;
    if (inFlight + rejected + items.length > this.deps.window) {
      this.deps.fail(
        'resource_exhausted',
        `a batch of ${items.length} reports with ${inFlight} unacked and ${rejected} refused since the last ack exceeds the window of ${this.deps.window}`,
      );
      return;
    }
    this.deps.metrics.reportsReceived.inc(items.length);
    if (tracingOn) return this.acceptTraced(items);
    for (const item of items) this.one(item, undefined);
  }

  /** `accept` with a `hub report` span around the message: its reports' asks carry it. */
  private acceptTraced(items: readonly DecodedReport[]): void {
    const span = startSpanFrom(undefined, 'hub report', SpanKind.CONSUMER, {
      'iot.home.id': this.deps.homeId,
      ...(this.deps.hubId === undefined ? {} : { 'iot.hub.id': this.deps.hubId }),
      'iot.reports': items.length,
    });
    if (!span.isRecording()) {
      // Not sampled: nothing of it would be exported, so the reports take the untraced path (no
      // trace object per message, no context switch per ask).
      span.end();
      for (const item of items) this.one(item, undefined);
      return;
    }
    // `open` starts at one for this loop: an ack while it runs (a duplicate completes at once) cannot end the span early.
    const trace: ReportTrace = { span, carrier: carrierOf(span), open: 1 };
    for (const item of items) this.one(item, trace);
    if (--trace.open === 0)
      endSpan(span); // nothing left to wait for: all acked already, refused or duplicates
    else (this.traces ??= new Set()).add(trace);
  }

  /** No more asks, retries or acks (the stream is ending). */
  stop(): void {
    this.lanes.stop();
    this.tracker.stop();
    if (this.traces) for (const t of this.traces) endSpan(t.span, 'stream ended before the ack');
    this.traces = undefined;
  }

  /** Reads the decoded report in place: seq and ts_ms are numbers already (hub-codec.ts). */
  private one(r: DecodedReport, trace: ReportTrace | undefined): void {
    const seq = parseSeq(r.seq);
    if (seq === undefined) {
      this.rejectedSinceAck++;
      this.reject('invalid_argument', `seq ${r.seq} must be an integer in 1..${Number.MAX_SAFE_INTEGER}`, String(r.seq));
      return;
    }
    if (seq <= this.lastSeq) {
      this.rejectedSinceAck++;
      this.reject(
        'invalid_argument',
        `seq ${seq} is not greater than ${this.lastSeq}, the highest seq received on this stream: ignored`,
        String(seq),
      );
      return;
    }
    this.lastSeq = seq;
    const now = this.deps.clock();
    const job: Job = { seq, receivedAt: now, done: false, deviceId: r.device_id, msg: undefined };
    if (trace !== undefined) {
      job.trace = trace;
      trace.open++;
    }
    this.tracker.receive(job);
    if (seq <= this.deps.lastDurableSeq) {
      this.deps.metrics.reportsDuplicate.inc();
      this.tracker.complete(job);
      return;
    }
    if (!this.deps.devices.has(r.device_id)) {
      this.settle(job, 'permission_denied', `device ${JSON.stringify(r.device_id)} is not one this hub listed in its hello`);
      return;
    }
    const tsMs = r.ts_ms;
    if (typeof tsMs !== 'number' || !Number.isSafeInteger(tsMs) || tsMs < 1 || tsMs > now + MAX_TS_AHEAD_MS) {
      this.settle(job, 'invalid_argument', `ts_ms ${tsMs} of seq ${seq} must be epoch milliseconds in 1..now + 24 h`);
      return;
    }
    const attributes = fromWireAttributes(r.attributes);
    if (!attributes.ok) {
      this.settle(job, 'invalid_argument', attributes.message);
      return;
    }
    // Two literal shapes rather than a spread: no throw-away object per report.
    job.msg =
      r.event === null || r.event === undefined
        ? { seq, tsMs, attributes: attributes.value }
        : { seq, tsMs, attributes: attributes.value, event: r.event };
    this.lanes.push(r.device_id, job);
  }

  /**
   * One device ask for a batch of its reports; resolves a reason to retry, or undefined when they
   * are processed. Never rejects: a bug ends this stream only (no `.catch` closure per batch).
   */
  private async ask(jobs: readonly Job[]): Promise<string | undefined> {
    try {
      const items = new Array<Omit<Report, 'type'>>(jobs.length);
      for (let i = 0; i < jobs.length; i++) items[i] = jobs[i]!.msg!;
      const msg: ReportBatch = { type: 'report.batch', items };
      const ask = () => askActor(this.deps.router, deviceActorId(this.deps.homeId, jobs[0]!.deviceId), msg);
      // A traced batch's ask runs in the span of its first report message (a device batch may span
      // several messages: its step joins the first one's trace). An untraced one (tracing off, or
      // its message not sampled) runs as it is: the intake never leaves a context active.
      const carrier = jobs[0]!.trace?.carrier;
      const r = await (carrier === undefined ? ask() : runWithCarrier(carrier, ask));
      if (!r.ok) {
        const { code, message } = r.error;
        if (TRANSIENT.has(code)) return `${code}: ${message}`;
        if (code === 'stopping') {
          this.deps.fail('stopping', 'node shutting down');
          return undefined;
        }
        for (const job of jobs) this.settle(job, code, message); // a domain error, or actor_crashed: retrying will not help
        return undefined;
      }
      const { results } = r.value;
      let applied = 0;
      let duplicate = 0;
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i]!;
        const result = results[i];
        if (result === undefined) throw new Error(`report.batch answered ${results.length} results for ${jobs.length} reports`);
        if (!result.ok) this.settle(job, result.error.code, result.error.message);
        else {
          if (result.value.applied) applied++;
          else duplicate++;
          this.tracker.complete(job);
        }
      }
      // Counted once per batch: prom-client label lookups per report showed in profiles.
      if (applied > 0) this.deps.metrics.reportsApplied.inc(applied);
      if (duplicate > 0) this.deps.metrics.reportsDuplicate.inc(duplicate);
      return undefined;
    } catch (err) {
      return this.crashed(err, jobs);
    }
  }

  /** A bug in the ask or in handling its reply, not the hub's fault: end this stream only. */
  private crashed(err: unknown, jobs: readonly Job[]): undefined {
    this.deps.log.error({ err, deviceId: jobs[0]!.deviceId, seq: jobs[0]!.seq }, 'report batch failed');
    this.deps.fail('internal', 'internal error');
    return undefined;
  }

  /** A report that will not be applied: tell the hub why, and let the ack cover it. */
  private settle(entry: Job, code: ErrorCode, message: string): void {
    this.reject(code, message, String(entry.seq));
    this.tracker.complete(entry);
  }

  private reject(code: ErrorCode, message: string, seq: string): void {
    this.deps.metrics.reportsRejected.inc();
    this.deps.send(errorMessage(code, message, seq));
  }

  /** Ends the report spans whose last report the ack covers. */
  private ackedTraces(covered: readonly Job[]): void {
    for (const p of covered) {
      const t = p.trace;
      if (t === undefined || --t.open > 0) continue;
      endSpan(t.span);
      this.traces?.delete(t);
    }
  }

  private onAck(upToSeq: number, covered: readonly Job[]): void {
    const { metrics, clock } = this.deps;
    const now = clock();
    for (const p of covered) metrics.ackLatency.observe((now - p.receivedAt) / 1000);
    if (tracingOn) this.ackedTraces(covered);
    metrics.acks.inc();
    this.rejectedSinceAck = 0;
    this.deps.send({ ack: { up_to_seq: String(upToSeq) } });
    this.deps.acked(upToSeq, this.tracker.inFlight);
  }
}
