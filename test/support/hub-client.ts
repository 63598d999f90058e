/** A real grpc-js hub for tests: connects to the ingress, sends HubMessages, collects CloudMessages and the final status. */
import { credentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor, type StatusObject } from '@grpc/grpc-js';
import { vi } from 'vitest';
import type { Value } from '../../actors/types.ts';
import { toWireValue, type WireValue } from '../../edge-api/hub-ingress/hub-wire.ts';
import { loadProto } from '../../protos/load-proto.ts';

/** A CloudMessage as the client decodes it (defaults filled in, `body` names the set member). */
export interface Received {
  readonly body: 'welcome' | 'ack' | 'command' | 'error';
  readonly welcome?: { node_id: string; window: number; last_durable_seq: string };
  readonly ack?: { up_to_seq: string };
  readonly command?: { command_id: string; device_id: string; name: string; params: Record<string, WireValue>; expires_at_ms: string };
  readonly error?: { code: string; message: string; seq: string };
}

/** A report in test form: JS attribute values, numbers for seq and ts. */
export interface TestReport {
  readonly seq: number | string;
  readonly device: string;
  readonly attributes?: Readonly<Record<string, Value>>;
  readonly event?: string;
  readonly tsMs?: number;
}

export interface TestDevice {
  readonly deviceId: string;
  readonly type: string;
  readonly capabilities?: readonly string[];
}

const HubIngressClient = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } })
  .iot.hub.v1.HubIngress;

const WAIT = { timeout: 5_000, interval: 5 };

export class HubClient {
  readonly messages: Received[] = [];
  /** The stream's final status, once it has ended. */
  status: StatusObject | undefined;
  private readonly client: InstanceType<ServiceClientConstructor>;
  private readonly call: ClientDuplexStream<unknown, Received>;
  private readonly messageListeners: ((m: Received) => void)[] = [];
  private readonly endListeners: ((s: StatusObject) => void)[] = [];

  /** `secret` undefined sends no authorization metadata; `authorization` overrides the header verbatim. */
  constructor(address: string, secret: string | undefined, authorization?: string) {
    this.client = new HubIngressClient(address, credentials.createInsecure());
    const md = new Metadata();
    const header = authorization ?? (secret === undefined ? undefined : `Bearer ${secret}`);
    if (header !== undefined) md.set('authorization', header);
    this.call = (this.client as unknown as { Connect(md: Metadata): ClientDuplexStream<unknown, Received> }).Connect(md);
    this.call.on('data', (m: Received) => {
      this.messages.push(m);
      for (const fn of this.messageListeners) fn(m);
    });
    this.call.on('status', (s: StatusObject) => {
      this.status = s;
      for (const fn of this.endListeners) fn(s);
    });
    this.call.on('error', () => {}); // the status carries it
  }

  /** Calls `fn` with every message received from now on. */
  onMessage(fn: (m: Received) => void): void {
    this.messageListeners.push(fn);
  }

  /** Calls `fn` once with the stream's final status (at once when it has already ended). */
  onEnd(fn: (s: StatusObject) => void): void {
    if (this.status) fn(this.status);
    else this.endListeners.push(fn);
  }

  send(msg: unknown): void {
    this.call.write(msg);
  }

  hello(hubId: string, homeId: string, devices: readonly TestDevice[]): void {
    this.send({
      hello: {
        hub_id: hubId,
        home_id: homeId,
        firmware: 'test-1.0',
        devices: devices.map((d) => ({ device_id: d.deviceId, type: d.type, capabilities: d.capabilities ?? [] })),
      },
    });
  }

  reports(items: readonly TestReport[]): void {
    this.send({
      reports: {
        items: items.map((r) => ({
          seq: String(r.seq),
          device_id: r.device,
          ts_ms: String(r.tsMs ?? 1_700_000_000_000),
          attributes: Object.fromEntries(Object.entries(r.attributes ?? {}).map(([k, v]) => [k, toWireValue(v)])),
          ...(r.event === undefined ? {} : { event: r.event }),
        })),
      },
    });
  }

  /** Waits until a received message satisfies `pick` and returns what it returned. */
  waitFor<T>(pick: (m: Received) => T | undefined, what = 'a matching message'): Promise<T> {
    return vi.waitFor(() => {
      for (const m of this.messages) {
        const v = pick(m);
        if (v !== undefined) return v;
      }
      throw new Error(`no ${what} yet; received ${JSON.stringify(this.messages)} status ${JSON.stringify(this.status)}`);
    }, WAIT);
  }

  welcome(): Promise<NonNullable<Received['welcome']>> {
    return this.waitFor((m) => m.welcome, 'welcome');
  }

  /** Waits for an ack covering `seq`. */
  ackAtLeast(seq: number): Promise<number> {
    return this.waitFor((m) => (m.ack && Number(m.ack.up_to_seq) >= seq ? Number(m.ack.up_to_seq) : undefined), `ack >= ${seq}`);
  }

  errors(): NonNullable<Received['error']>[] {
    return this.messages.flatMap((m) => (m.error ? [m.error] : []));
  }

  acks(): number[] {
    return this.messages.flatMap((m) => (m.ack ? [Number(m.ack.up_to_seq)] : []));
  }

  /** Waits for the stream's final status. */
  ended(): Promise<StatusObject> {
    return vi.waitFor(() => {
      if (!this.status) throw new Error(`stream still open; received ${JSON.stringify(this.messages)}`);
      return this.status;
    }, WAIT);
  }

  /** Half-closes the stream (the hub is done sending). */
  end(): void {
    this.call.end();
  }

  /** Cancels the stream and closes the channel. */
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
