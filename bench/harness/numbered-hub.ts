/**
 * A resilient load hub for resize and failover: streams numbered reports at a steady rate (report
 * `seq` goes to device d(seq % 10) and sets n = seq, so every applied report bumps that device's
 * shadow version by exactly one), keeps at most `window` unacked, and whenever its stream ends or
 * stalls reconnects — to the next address in its list — and re-sends everything after its highest
 * ack. Records each report's ack latency (first send → covering ack) in a timeline, and every
 * command delivery by id (it answers each delivery; a real hub executes an id once).
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { LatencyRecorder } from './hdr.ts';
import { FLUSH_MS, openHubStream, wireAttributes, type CloudMessage, type HubDevice, type WireReport } from './hub-stream.ts';
import type { HubSpec, NumberedHubResult } from './load-protocol.ts';
import type { Timeline } from './timeline.ts';

export const NUMBERED_DEVICES = 10;
export const numberedDevices: readonly HubDevice[] = Array.from({ length: NUMBERED_DEVICES }, (_, i) => ({ deviceId: `d${i}`, type: 'plug', capabilities: ['n'] }));
/** The device and value of report `seq`. */
export const numberedReport = (seq: number): { device: string; n: number } => ({ device: `d${seq % NUMBERED_DEVICES}`, n: seq });

const STALL_MS = 10_000;
const RECONNECT_DELAY_MS = 100;

export class NumberedHub {
  produced = 0;
  highestAck = 0;
  reportsSent = 0;
  streams = 0;
  readonly errors: string[] = [];
  /** Per command id, the stream (1, 2, … in connection order) of each of its deliveries. */
  readonly deliveries = new Map<string, number[]>();
  private readonly firstSent: number[] = [0];
  private readonly marks: { produced: number; at: number; servedAt: number | null }[] = [];
  private stream: ClientDuplexStream<unknown, CloudMessage> | undefined;
  private window = 0;
  private nextSeq = 1;
  private lastProgress = 0;
  private startedAt = 0;
  private finishing = false;
  private stopped = false;
  private attempt = 0;
  private nextFlush = 0;

  constructor(
    readonly spec: HubSpec,
    private readonly perSec: number,
    private readonly batch: number,
    private readonly timeline: Timeline,
    private readonly latency: LatencyRecorder,
  ) {}

  start(): void {
    this.startedAt = performance.now();
    this.nextFlush = this.startedAt + Math.random() * FLUSH_MS;
    this.connect();
  }

  get caughtUp(): boolean {
    return this.highestAck >= this.produced;
  }

  /** Stops producing new reports; re-sends go on until everything produced is acked. */
  finishProducing(): void {
    this.finishing = true;
  }

  /** Remembers what was produced at `at` (epoch ms). */
  mark(at: number): void {
    this.marks.push({ produced: this.produced, at, servedAt: null });
  }

  /** Called by the worker's ticker: every FLUSH_MS sends what the rate allows; drops a stalled stream. */
  tick(now: number): void {
    if (this.stopped || !this.stream || this.window === 0) return;
    if (this.nextSeq - 1 > this.highestAck && Date.now() - this.lastProgress > STALL_MS) {
      this.errors.push(`stream to ${this.address()} stalled (no ack for ${STALL_MS} ms): reconnecting`);
      this.drop();
      return;
    }
    if (now < this.nextFlush) return;
    this.nextFlush = now + FLUSH_MS;
    const allowed = this.finishing ? this.produced : Math.floor(((now - this.startedAt) / 1000) * this.perSec);
    const limit = Math.max(allowed, this.produced);
    while (this.nextSeq <= limit) {
      const n = Math.min(this.batch, limit - this.nextSeq + 1, this.window - (this.nextSeq - 1 - this.highestAck));
      if (n <= 0) return;
      const items: WireReport[] = [];
      for (let i = 0; i < n; i++) {
        const seq = this.nextSeq + i;
        const r = numberedReport(seq);
        items.push({ seq: String(seq), device_id: r.device, ts_ms: String(1_700_000_000_000 + seq), attributes: wireAttributes({ n: r.n }) });
        if (seq > this.produced) {
          this.produced = seq;
          this.firstSent[seq] = now;
        }
      }
      this.stream.write({ reports: { items } });
      this.nextSeq += n;
      this.reportsSent += n;
    }
  }

  stop(): void {
    this.stopped = true;
    this.stream?.cancel();
    this.stream = undefined;
  }

  result(): NumberedHubResult {
    return {
      homeId: this.spec.homeId,
      produced: this.produced,
      highestAck: this.highestAck,
      reportsSent: this.reportsSent,
      streams: this.streams,
      errors: this.errors.slice(0, 5).concat(this.errors.length > 5 ? [`… ${this.errors.length - 5} more`] : []),
      servedAfterMs: this.marks.map((m) => (m.servedAt === null ? null : m.servedAt - m.at)),
    };
  }

  private address(): string {
    const a = this.spec.addresses;
    return a[(this.spec.first + this.attempt) % a.length]!;
  }

  private connect(): void {
    if (this.stopped) return;
    this.streams++;
    this.window = 0;
    this.nextSeq = this.highestAck + 1;
    this.lastProgress = Date.now();
    const address = this.address();
    const stream = openHubStream(
      address,
      this.spec.secret,
      { hubId: this.spec.hubId, homeId: this.spec.homeId, firmware: 'bench-numbered', devices: numberedDevices },
      {
        message: (m) => this.onMessage(stream, m),
        end: (status) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          if (this.stopped) return;
          if (status.code !== 0) this.errors.push(`stream to ${address} ended: ${status.code} ${status.details}`);
          if (this.finishing && this.caughtUp) return;
          this.attempt++;
          setTimeout(() => this.connect(), RECONNECT_DELAY_MS);
        },
      },
    );
    this.stream = stream;
  }

  private drop(): void {
    const s = this.stream;
    if (!s) return;
    // The status (CANCELLED) that follows reconnects.
    s.cancel();
  }

  private onMessage(stream: ClientDuplexStream<unknown, CloudMessage>, m: CloudMessage): void {
    if (this.stream !== stream) return;
    if (m.welcome) {
      this.window = m.welcome.window;
      this.lastProgress = Date.now();
    } else if (m.ack) {
      const ack = Number(m.ack.up_to_seq);
      if (ack <= this.highestAck) return;
      const now = performance.now();
      const epoch = Date.now();
      for (let seq = this.highestAck + 1; seq <= ack; seq++) {
        const sentAt = this.firstSent[seq];
        if (sentAt === undefined) continue;
        this.timeline.record(epoch, now - sentAt);
        this.latency.record(now - sentAt);
      }
      for (const mk of this.marks) if (mk.servedAt === null && ack > mk.produced) mk.servedAt = epoch;
      this.highestAck = ack;
      this.lastProgress = Date.now();
      if (this.finishing && this.caughtUp) stream.end(); // the node ends the stream with OK
    } else if (m.command) {
      const id = m.command.command_id;
      const seen = this.deliveries.get(id);
      if (seen) seen.push(this.streams);
      else this.deliveries.set(id, [this.streams]);
      stream.write({ command_result: { command_id: id, ok: true, error: '' } });
    } else if (m.error) {
      this.errors.push(`${m.error.code} ${m.error.message}${m.error.seq !== '0' ? ` (seq ${m.error.seq})` : ''}`);
    }
  }
}
