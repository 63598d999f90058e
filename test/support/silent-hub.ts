/**
 * A hostile hub for the ingress's limits: a raw grpc-js stream with no `data` listener, so it never
 * reads what the node sends (grpc-js then stops taking HTTP/2 data and the node's writes back up),
 * while it keeps writing as fast as its own stream lets it.
 */
import { credentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor, type StatusObject } from '@grpc/grpc-js';
import type { HubMessage, WireReport } from '../../edge-api/hub-ingress/hub-wire.ts';
import { loadProto } from '../../protos/load-proto.ts';

const HubIngressClient = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } }).iot.hub
  .v1.HubIngress;

export class SilentHub {
  status: StatusObject | undefined;
  /** Messages written. */
  written = 0;
  private readonly client: InstanceType<ServiceClientConstructor>;
  private readonly call: ClientDuplexStream<HubMessage, unknown>;
  private readonly ended: Promise<StatusObject>;

  constructor(address: string, secret: string) {
    this.client = new HubIngressClient(address, credentials.createInsecure(), { 'grpc.max_send_message_length': 8 << 20 });
    const md = new Metadata();
    md.set('authorization', `Bearer ${secret}`);
    this.call = (this.client as unknown as { Connect(md: Metadata): ClientDuplexStream<HubMessage, unknown> }).Connect(md);
    this.call.on('error', () => {}); // the status carries it
    this.ended = new Promise((resolve) =>
      this.call.on('status', (s: StatusObject) => {
        this.status ??= s;
        resolve(s);
      }),
    );
  }

  hello(hubId: string, homeId: string, deviceId: string): void {
    this.call.write({
      hello: {
        hub_id: hubId,
        home_id: homeId,
        firmware: 'silent',
        devices: [{ device_id: deviceId, type: 'light', capabilities: ['on'] }],
      },
    });
  }

  /**
   * Writes `reports` batches (each `make(i)`) until the stream ends or `maxMs` passes, waiting for
   * its own stream's drain (it floods the node, not its own memory). Resolves the final status, or
   * undefined when the stream was still open after `maxMs`.
   */
  async flood(make: (i: number) => readonly WireReport[], maxMs: number): Promise<StatusObject | undefined> {
    const until = Date.now() + maxMs;
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), maxMs).unref());
    for (let i = 0; this.status === undefined && Date.now() < until; i++) {
      this.written++;
      if (!this.call.write({ reports: { items: make(i) } }))
        await Promise.race([new Promise((resolve) => this.call.once('drain', resolve)), this.ended, timeout]);
    }
    return this.status;
  }

  /** The final status, waiting at most `ms`. */
  end(ms: number): Promise<StatusObject | undefined> {
    return Promise.race([this.ended, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
