/**
 * A typed client of `protos/hub.proto`: one hub stream (authenticate, hello, reports, command
 * results) and everything the cloud sent on it. Used by tests, benchmarks and the hub simulator;
 * it imports no test framework, so a user can script a hub with it.
 */
import {
  credentials,
  Metadata,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ServiceClientConstructor,
  type StatusObject,
} from '@grpc/grpc-js';
import type { Value } from '../../actors/types.ts';
import {
  toWireAttributes,
  toWireValue,
  type CloudMessage,
  type HubMessage,
  type WireReport,
  type WireValue,
} from '../../edge-api/hub-ingress/hub-wire.ts';
import { loadProto } from '../../protos/load-proto.ts';

type CloudBody = CloudMessage extends infer M ? (M extends unknown ? keyof M : never) : never;
type CloudMember<K extends CloudBody> = Extract<CloudMessage, Record<K, unknown>>[K];

/** A CloudMessage as the client decodes it: `body` names the member that is set. */
export type Received = { readonly body: CloudBody } & { readonly [K in CloudBody]?: CloudMember<K> };
export type Welcome = CloudMember<'welcome'>;
export type Command = CloudMember<'command'>;
/** A device's desired delta (`version` a decimal string, `delta` Values in wire form). */
export type Desired = CloudMember<'desired'>;
export type CloudError = CloudMember<'error'>;

/** A device as the hub declares it in its hello. */
export interface HelloDevice {
  readonly deviceId: string;
  readonly type: string;
  readonly capabilities?: readonly string[];
}

/** A report with JS attribute values; `tsMs` defaults to a fixed epoch ms. */
export interface HubReport {
  readonly seq: number | string;
  readonly device: string;
  readonly attributes?: Readonly<Record<string, Value>>;
  readonly event?: string;
  readonly tsMs?: number;
}

export interface HubClientOptions {
  /** The `authorization` header verbatim, instead of `Bearer <secret>`. */
  readonly authorization?: string;
  /**
   * Share one channel per address with every other client made with `shared` (load hubs: many
   * streams to a few nodes over one HTTP/2 connection each); `closeSharedChannels` closes them.
   */
  readonly shared?: boolean;
  /** Keep every received message in `messages` (default true; a long-lived load hub reads them through `onMessage`). */
  readonly keepMessages?: boolean;
  /**
   * Channel credentials, e.g. `credentials.createSsl(ca, key, cert)` for a node serving TLS
   * (HUB_TLS_*); default plaintext. Not with `shared` (shared channels are plaintext).
   */
  readonly credentials?: ChannelCredentials;
}

type Client = InstanceType<ServiceClientConstructor>;

const HubIngressClient = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } }).iot.hub
  .v1.HubIngress;
const CHANNEL_OPTIONS = { 'grpc.max_send_message_length': 8 << 20 };
const sharedChannels = new Map<string, Client>();

function sharedChannel(address: string): Client {
  let c = sharedChannels.get(address);
  if (!c) {
    c = new HubIngressClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
    sharedChannels.set(address, c);
  }
  return c;
}

/** Closes every shared channel this process opened. */
export function closeSharedChannels(): void {
  for (const c of sharedChannels.values()) c.close();
  sharedChannels.clear();
}

/** A report in wire form (on a load hub's hot path: plain loops, no intermediate arrays). */
export function wireReport(r: HubReport): WireReport {
  const attributes: Record<string, WireValue> = {};
  const values = r.attributes;
  if (values) for (const k in values) attributes[k] = toWireValue(values[k]!);
  const wire = { seq: String(r.seq), device_id: r.device, ts_ms: String(r.tsMs ?? 1_700_000_000_000), attributes };
  return r.event === undefined ? wire : { ...wire, event: r.event };
}

/** Milliseconds `waitFor` and the waits built on it give up after, unless told otherwise. */
const DEFAULT_WAIT_MS = 5_000;

export class HubClient {
  /** Every message received, in order (none with `keepMessages: false`). */
  readonly messages: Received[] = [];
  /** The stream's final status, once it has ended. */
  status: StatusObject | undefined;
  private readonly channel: Client;
  private readonly ownChannel: boolean;
  private readonly call: ClientDuplexStream<HubMessage, Received>;
  private readonly messageListeners = new Set<(m: Received) => void>();
  private readonly endListeners = new Set<(s: StatusObject) => void>();

  /** Opens a stream to `address`; `secret` undefined sends no authorization metadata. */
  constructor(address: string, secret: string | undefined, options: HubClientOptions = {}) {
    this.ownChannel = !options.shared;
    if (options.shared && options.credentials) throw new Error('shared channels are plaintext: credentials cannot be set with shared');
    this.channel = options.shared
      ? sharedChannel(address)
      : new HubIngressClient(address, options.credentials ?? credentials.createInsecure(), CHANNEL_OPTIONS);
    const md = new Metadata();
    const header = options.authorization ?? (secret === undefined ? undefined : `Bearer ${secret}`);
    if (header !== undefined) md.set('authorization', header);
    this.call = (this.channel as unknown as { Connect(md: Metadata): ClientDuplexStream<HubMessage, Received> }).Connect(md);
    const keep = options.keepMessages ?? true;
    this.call.on('data', (m: Received) => {
      if (keep) this.messages.push(m);
      for (const fn of this.messageListeners) fn(m);
    });
    this.call.on('status', (s: StatusObject) => {
      if (this.status) return;
      this.status = s;
      for (const fn of this.endListeners) fn(s);
    });
    this.call.on('error', () => {}); // the status carries it
  }

  /** Calls `fn` with every message received from now on; the result unsubscribes it. */
  onMessage(fn: (m: Received) => void): () => void {
    this.messageListeners.add(fn);
    return () => this.messageListeners.delete(fn);
  }

  /** Calls `fn` once with the stream's final status (at once when it has already ended); the result unsubscribes it. */
  onEnd(fn: (s: StatusObject) => void): () => void {
    if (this.status) fn(this.status);
    else this.endListeners.add(fn);
    return () => this.endListeners.delete(fn);
  }

  send(msg: HubMessage): void {
    this.call.write(msg);
  }

  hello(hubId: string, homeId: string, devices: readonly HelloDevice[], firmware = 'hub-client-1.0'): void {
    this.send({
      hello: {
        hub_id: hubId,
        home_id: homeId,
        firmware,
        devices: devices.map((d) => ({ device_id: d.deviceId, type: d.type, capabilities: d.capabilities ?? [] })),
      },
    });
  }

  reports(items: readonly HubReport[]): void {
    this.send({ reports: { items: items.map(wireReport) } });
  }

  /** `result`: what the command produced, sent as the optional `result` map (omitted when undefined). */
  commandResult(commandId: string, ok: boolean, error = '', result?: Readonly<Record<string, Value>>): void {
    const wire = result === undefined ? {} : { result: toWireAttributes(result) };
    this.send({ command_result: { command_id: commandId, ok, error, ...wire } });
  }

  /**
   * Resolves with what `pick` returns for the first message (received so far or later) it returns
   * something for; rejects after `timeoutMs`, or when the stream ends first, with what was received.
   */
  waitFor<T>(pick: (m: Received) => T | undefined, what = 'a matching message', timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    for (const m of this.messages) {
      const v = pick(m);
      if (v !== undefined) return Promise.resolve(v);
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        offMessage();
        offEnd();
        fn();
      };
      const fail = (why: string): void =>
        settle(() =>
          reject(new Error(`no ${what} ${why}; received ${JSON.stringify(this.messages)} status ${JSON.stringify(this.status)}`)),
        );
      const timer = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      const offMessage = this.onMessage((m) => {
        const v = pick(m);
        if (v !== undefined) settle(() => resolve(v));
      });
      // A turn later: a message read together with the status is delivered first.
      const offEnd = this.onEnd(() => setImmediate(() => fail('before the stream ended')));
    });
  }

  welcome(timeoutMs?: number): Promise<Welcome> {
    return this.waitFor((m) => m.welcome, 'welcome', timeoutMs);
  }

  /** Waits for an ack covering `seq`; resolves with its `up_to_seq`. */
  ackAtLeast(seq: number, timeoutMs?: number): Promise<number> {
    return this.waitFor((m) => (m.ack && Number(m.ack.up_to_seq) >= seq ? Number(m.ack.up_to_seq) : undefined), `ack >= ${seq}`, timeoutMs);
  }

  /** The desired deltas received so far, in order. */
  desired(): Desired[] {
    return this.messages.flatMap((m) => (m.desired ? [m.desired] : []));
  }

  errors(): CloudError[] {
    return this.messages.flatMap((m) => (m.error ? [m.error] : []));
  }

  acks(): number[] {
    return this.messages.flatMap((m) => (m.ack ? [Number(m.ack.up_to_seq)] : []));
  }

  /** Waits for the stream's final status. */
  ended(timeoutMs = DEFAULT_WAIT_MS): Promise<StatusObject> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`stream still open after ${timeoutMs} ms; received ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      const off = this.onEnd((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  /** Half-closes the stream (the hub is done sending). */
  end(): void {
    this.call.end();
  }

  /** Cancels the stream, and closes the channel unless it is shared. */
  close(): void {
    this.call.cancel();
    if (this.ownChannel) this.channel.close();
  }
}
