/** One simulated hub: a gRPC stream that says hello, streams report batches within its credit window, runs commands. */
import { credentials as grpcCredentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProto } from '../../protos/load-proto.ts';
import { applyCommand, nextReading, simDevices, type SimDevice, type SimValue } from './sim-home.ts';

type WireValue = { number?: number; flag?: boolean; text?: string };
type CloudMessage = {
  body?: 'welcome' | 'ack' | 'command' | 'error';
  welcome?: { node_id: string; window: number; last_durable_seq: string };
  ack?: { up_to_seq: string };
  command?: { command_id: string; device_id: string; name: string; params: Record<string, WireValue>; expires_at_ms: string };
  error?: { code: string; message: string; seq: string };
};

const HubIngress = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } }).iot.hub.v1.HubIngress;

const toWire = (v: SimValue): WireValue => (typeof v === 'number' ? { number: v } : typeof v === 'boolean' ? { flag: v } : { text: v });
const fromWire = (v: WireValue): SimValue => v.number ?? v.flag ?? v.text ?? '';

export interface SimHubStats {
  sent: number;
  acked: number;
  commands: number;
  errors: number;
  /** Sum and count of ack latencies (first send → ack), milliseconds. */
  ackLatencySumMs: number;
  reconnects: number;
}

export interface SimHubOptions {
  readonly address: string;
  readonly homeId: string;
  readonly hubId: string;
  readonly secret: string;
  /** Reports per second this hub sends. */
  readonly rate: number;
  /** Reports per message. */
  readonly batch: number;
  readonly rand: () => number;
  readonly onError?: (message: string) => void;
}

export class SimHub {
  readonly stats: SimHubStats = { sent: 0, acked: 0, commands: 0, errors: 0, ackLatencySumMs: 0, reconnects: 0 };
  private readonly devices: SimDevice[] = simDevices();
  private readonly client: InstanceType<ServiceClientConstructor>;
  private stream: ClientDuplexStream<unknown, CloudMessage> | undefined;
  /** Reports sent and not yet acked, in seq order: re-sent after a reconnect. */
  private unacked: { seq: number; msg: unknown; sentAt: number }[] = [];
  private seq = 0;
  private window = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: SimHubOptions) {
    this.client = new HubIngress(opts.address, grpcCredentials.createInsecure());
  }

  start(): void {
    this.connect();
    const everyMs = Math.max(5, (1000 * this.opts.batch) / this.opts.rate);
    this.timer = setInterval(() => this.tick(), everyMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.stream?.end();
    this.client.close();
  }

  private connect(): void {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.opts.secret}`);
    const stream = (this.client as unknown as { Connect(md: Metadata): ClientDuplexStream<unknown, CloudMessage> }).Connect(md);
    this.stream = stream;
    this.window = 0;
    stream.on('data', (m: CloudMessage) => this.onMessage(m));
    stream.on('error', (err: Error) => {
      this.opts.onError?.(`${this.opts.hubId}: stream ended: ${err.message}`);
      this.reconnect();
    });
    stream.on('end', () => this.reconnect());
    stream.write({
      hello: {
        hub_id: this.opts.hubId,
        home_id: this.opts.homeId,
        firmware: 'sim-1.0',
        devices: this.devices.map((d) => ({ device_id: d.deviceId, type: d.type, capabilities: d.capabilities })),
      },
    });
  }

  private reconnect(): void {
    if (this.stopped || !this.stream) return;
    this.stream = undefined;
    this.stats.reconnects++;
    setTimeout(() => this.connect(), 500).unref();
  }

  private onMessage(m: CloudMessage): void {
    if (m.welcome) {
      const durable = Number(m.welcome.last_durable_seq);
      this.unacked = this.unacked.filter((u) => u.seq > durable);
      this.seq = Math.max(this.seq, durable);
      this.window = m.welcome.window;
      for (const u of this.unacked) this.stream?.write(u.msg);
    } else if (m.ack) {
      const upTo = Number(m.ack.up_to_seq);
      const now = Date.now();
      while (this.unacked.length > 0 && this.unacked[0]!.seq <= upTo) {
        this.stats.ackLatencySumMs += now - this.unacked.shift()!.sentAt;
        this.stats.acked++;
      }
    } else if (m.command) {
      this.stats.commands++;
      const c = m.command;
      const device = this.devices.find((d) => d.deviceId === c.device_id);
      const params = Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, fromWire(v)]));
      this.stream?.write({ command_result: { command_id: c.command_id, ok: device !== undefined, error: device ? '' : 'unknown device' } });
      if (device) this.send([{ device, attributes: applyCommand(device, params) }]);
    } else if (m.error) {
      this.stats.errors++;
      this.opts.onError?.(`${this.opts.hubId}: ${m.error.code} ${m.error.message}`);
    }
  }

  private tick(): void {
    if (!this.stream || this.window === 0) return;
    const room = this.window - this.unacked.length;
    const n = Math.min(this.opts.batch, room);
    if (n <= 0) return;
    const sensors = this.devices.filter((d) => d.type !== 'light');
    const items = Array.from({ length: n }, () => {
      const device = sensors[Math.floor(this.opts.rand() * sensors.length)]!;
      return { device, ...nextReading(device, this.opts.rand) };
    });
    this.send(items);
  }

  private send(items: { device: SimDevice; attributes: Record<string, SimValue>; event?: string }[]): void {
    const now = Date.now();
    const reports = items.map((it) => ({
      seq: String(++this.seq),
      device_id: it.device.deviceId,
      ts_ms: String(now),
      attributes: Object.fromEntries(Object.entries(it.attributes).map(([k, v]) => [k, toWire(v)])),
      ...(it.event ? { event: it.event } : {}),
    }));
    // Each report is remembered with the message it went in, so a reconnect re-sends it.
    const msg = { reports: { items: reports } };
    for (const r of reports) this.unacked.push({ seq: Number(r.seq), msg: { reports: { items: [r] } }, sentAt: now });
    this.stats.sent += reports.length;
    this.stream?.write(msg);
  }
}
