/** A load-generating hub: keeps its credit window full (or paces to a rate) and times every report to its ack. */
import { credentials as grpcCredentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProto } from '../../protos/load-proto.ts';

const HubIngress = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } }).iot.hub.v1.HubIngress;

type Cloud = { welcome?: { window: number }; ack?: { up_to_seq: string }; error?: { code: string; message: string } };

export interface BenchHubOptions {
  readonly address: string;
  readonly homeId: string;
  readonly hubId: string;
  readonly secret: string;
  readonly devices: number;
  /** Reports per message. */
  readonly batch: number;
}

/** Latencies are recorded into `latenciesMs` only while `recording` is true. */
export class BenchHub {
  acked = 0;
  errors = 0;
  recording = false;
  readonly latenciesMs: number[] = [];
  private readonly client: InstanceType<ServiceClientConstructor>;
  private stream!: ClientDuplexStream<unknown, Cloud>;
  private window = 0;
  private seq = 0;
  private ackedSeq = 0;
  /** Send times (performance.now) of unacked reports, indexed by seq - ackedSeq - 1. */
  private sentAt: number[] = [];
  private ready!: Promise<void>;
  private onAck: (() => void) | undefined;

  constructor(private readonly opts: BenchHubOptions) {
    this.client = new HubIngress(opts.address, grpcCredentials.createInsecure(), { 'grpc.max_send_message_length': 8 << 20 });
  }

  connect(): Promise<void> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.opts.secret}`);
    this.stream = (this.client as unknown as { Connect(md: Metadata): ClientDuplexStream<unknown, Cloud> }).Connect(md);
    this.ready = new Promise((resolve, reject) => {
      this.stream.on('data', (m: Cloud) => {
        if (m.welcome) {
          this.window = m.welcome.window;
          resolve();
        } else if (m.ack) this.ack(Number(m.ack.up_to_seq));
        else if (m.error) this.errors++;
      });
      this.stream.on('error', (err: Error) => reject(err));
    });
    this.stream.on('error', () => {});
    this.stream.write({
      hello: {
        hub_id: this.opts.hubId,
        home_id: this.opts.homeId,
        firmware: 'bench',
        devices: Array.from({ length: this.opts.devices }, (_, i) => ({ device_id: `d${i}`, type: 'climate_sensor', capabilities: ['temperature'] })),
      },
    });
    return this.ready;
  }

  /** Keeps the window full until `until` (performance.now ms). */
  async flood(until: number): Promise<void> {
    while (performance.now() < until) {
      const room = this.window - (this.seq - this.ackedSeq);
      if (room >= this.opts.batch) this.send(this.opts.batch);
      else await new Promise<void>((r) => (this.onAck = r));
    }
  }

  /**
   * Sends `perSecond` reports per second in batches until `until`. Each hub starts at a random
   * phase of its batch interval: hubs that all sent at the same instant would measure the queue
   * of a synchronised burst, not the latency of a steady rate.
   */
  async paced(perSecond: number, until: number): Promise<void> {
    const start = performance.now() + Math.random() * ((1000 * this.opts.batch) / perSecond);
    let sent = 0;
    while (performance.now() < until) {
      const due = Math.max(0, Math.floor(((performance.now() - start) / 1000) * perSecond) + this.opts.batch);
      while (sent + this.opts.batch <= due && this.seq - this.ackedSeq + this.opts.batch <= this.window) {
        this.send(this.opts.batch);
        sent += this.opts.batch;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Waits until everything sent is acked (or `timeoutMs` passes). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.ackedSeq < this.seq && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /** Sends one batch now (window permitting): with `batch` = devices, every device gets one report. */
  sendOnce(): void {
    if (this.seq - this.ackedSeq + this.opts.batch <= this.window) this.send(this.opts.batch);
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }

  private send(n: number): void {
    const now = performance.now();
    const ts = String(Date.now());
    const items = [];
    for (let i = 0; i < n; i++) {
      const seq = ++this.seq;
      items.push({ seq: String(seq), device_id: `d${seq % this.opts.devices}`, ts_ms: ts, attributes: { temperature: { number: 20 + (seq % 100) / 10 } } });
      this.sentAt.push(now);
    }
    this.stream.write({ reports: { items } });
  }

  private ack(upTo: number): void {
    if (upTo <= this.ackedSeq) return;
    const now = performance.now();
    const n = upTo - this.ackedSeq;
    if (this.recording) for (let i = 0; i < n; i++) this.latenciesMs.push(now - this.sentAt[i]!);
    this.sentAt.splice(0, n);
    this.acked += n;
    this.ackedSeq = upTo;
    const wake = this.onAck;
    this.onAck = undefined;
    wake?.();
  }
}
