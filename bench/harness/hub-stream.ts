/** The hub side of `HubIngress.Connect` for load hubs: one channel per address, one stream per connection, wire values. */
import { credentials as grpcCredentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor, type StatusObject } from '@grpc/grpc-js';
import { loadProto } from '../../protos/load-proto.ts';

export const HubIngressClient = (loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: ServiceClientConstructor } } } }).iot.hub.v1.HubIngress;

/**
 * A load hub sends what is due at most every this many ms (a hub batching the radio messages of a
 * short window): at 100 reports/s per hub that is 2 reports a message, not one message each.
 */
export const FLUSH_MS = 20;

export type WireValue = { number?: number; flag?: boolean; text?: string };
export type PlainValue = number | boolean | string;

/** A CloudMessage as proto-loader decodes it. */
export interface CloudMessage {
  readonly welcome?: { node_id: string; window: number; last_durable_seq: string };
  readonly ack?: { up_to_seq: string };
  readonly command?: { command_id: string; device_id: string; name: string; params: Record<string, WireValue>; expires_at_ms: string };
  readonly error?: { code: string; message: string; seq: string };
}

export interface WireReport {
  readonly seq: string;
  readonly device_id: string;
  readonly ts_ms: string;
  readonly attributes: Record<string, WireValue>;
  readonly event?: string;
}

export const toWire = (v: PlainValue): WireValue => (typeof v === 'number' ? { number: v } : typeof v === 'boolean' ? { flag: v } : { text: v });
export const fromWire = (v: WireValue): PlainValue => v.number ?? v.flag ?? v.text ?? '';

export function wireAttributes(attrs: Readonly<Record<string, PlainValue>>): Record<string, WireValue> {
  const out: Record<string, WireValue> = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = toWire(v);
  return out;
}

type Client = InstanceType<ServiceClientConstructor>;
const channels = new Map<string, Client>();

/** The (shared) channel to `address`: grpc-js multiplexes every hub stream of this process to one address over it. */
export function channelTo(address: string): Client {
  let c = channels.get(address);
  if (!c) {
    c = new HubIngressClient(address, grpcCredentials.createInsecure(), { 'grpc.max_send_message_length': 8 << 20 });
    channels.set(address, c);
  }
  return c;
}

/** Closes every channel this process opened. */
export function closeChannels(): void {
  for (const c of channels.values()) c.close();
  channels.clear();
}

export interface HubDevice {
  readonly deviceId: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

/** Opens a stream, authenticates with the hub secret and says hello. */
export function openHubStream(
  address: string,
  secret: string,
  hello: { hubId: string; homeId: string; firmware: string; devices: readonly HubDevice[] },
  on: { message: (m: CloudMessage) => void; end: (status: StatusObject) => void },
): ClientDuplexStream<unknown, CloudMessage> {
  const md = new Metadata();
  md.set('authorization', `Bearer ${secret}`);
  const stream = (channelTo(address) as unknown as { Connect(md: Metadata): ClientDuplexStream<unknown, CloudMessage> }).Connect(md);
  let ended = false;
  stream.on('data', on.message);
  stream.on('status', (s: StatusObject) => {
    if (ended) return;
    ended = true;
    on.end(s);
  });
  stream.on('error', () => {}); // the status carries it
  stream.write({
    hello: {
      hub_id: hello.hubId,
      home_id: hello.homeId,
      firmware: hello.firmware,
      devices: hello.devices.map((d) => ({ device_id: d.deviceId, type: d.type, capabilities: [...d.capabilities] })),
    },
  });
  return stream;
}
