/**
 * Hub streams for fuzzing the hub ingress: a grpc-js client whose request serializer passes raw
 * bytes through (so a fuzzer can send any bytes as a HubMessage), the encoding of well-typed
 * HubMessages with arbitrary field values, and the contract every stream must keep: it ends with a
 * documented status or stays open, and every `error` it carries is coded — never INTERNAL or UNKNOWN.
 */
import { Client, credentials, Metadata, status as GrpcStatus, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { PROTO_DIR } from '../../protos/load-proto.ts';

const ROOT = new protobuf.Root().loadSync(join(PROTO_DIR, 'hub.proto'), { keepCase: true });
const HUB_MESSAGE = ROOT.lookupType('iot.hub.v1.HubMessage');
const CLOUD_MESSAGE = ROOT.lookupType('iot.hub.v1.CloudMessage');

/** A 64-bit field as the fuzzer writes it: any value of the field's wire range, as a bigint. */
export type Wide = bigint;

export type FuzzValue = { readonly number: number } | { readonly flag: boolean } | { readonly text: string } | Record<string, never>;

export interface FuzzReport {
  readonly seq: Wide;
  readonly device_id: string;
  readonly ts_ms: Wide;
  readonly attributes: Readonly<Record<string, FuzzValue>>;
  readonly event?: string;
}

export interface FuzzDevice {
  readonly device_id: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

/** A HubMessage with arbitrary field values, or bytes sent as they are. */
export type FuzzHubMessage =
  | {
      readonly hello: {
        readonly hub_id: string;
        readonly home_id: string;
        readonly firmware: string;
        readonly devices: readonly FuzzDevice[];
      };
    }
  | { readonly reports: { readonly items: readonly FuzzReport[] } }
  | { readonly command_result: { readonly command_id: string; readonly ok: boolean; readonly error: string } }
  | { readonly ping: Record<string, never> }
  | { readonly empty: true }
  | { readonly raw: Uint8Array };

/** protobufjs' `Long` (the `long` package): its typings declare only the constructor. */
const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): unknown };

/** A bigint as the `Long` protobufjs writes: the low 64 bits, as the wire keeps them. */
const toLong = (v: Wide, unsigned: boolean): unknown =>
  Long.fromString((unsigned ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v)).toString(), unsigned);

/** The protobufjs object form of `m` (64-bit fields as `Long`s). */
function wireObject(m: Exclude<FuzzHubMessage, { raw: Uint8Array }>): Record<string, unknown> {
  if ('empty' in m) return {};
  if ('reports' in m) {
    return {
      reports: {
        items: m.reports.items.map((r) => ({
          ...r,
          seq: toLong(r.seq, true),
          ts_ms: toLong(r.ts_ms, false),
        })),
      },
    };
  }
  return m;
}

/** The bytes of `m` on the wire. */
export function encodeFuzzMessage(m: FuzzHubMessage): Buffer {
  if ('raw' in m) return Buffer.from(m.raw);
  const message = HUB_MESSAGE.fromObject(wireObject(m));
  return Buffer.from(HUB_MESSAGE.encode(message).finish());
}

/** What the node sent down, with `body` naming the member that is set. */
export interface CloudDown {
  readonly body?: string;
  readonly error?: { readonly code: string; readonly message: string; readonly seq?: string };
  readonly ack?: { readonly up_to_seq: string };
  readonly [other: string]: unknown;
}

const decodeCloud = (b: Buffer): CloudDown =>
  CLOUD_MESSAGE.toObject(CLOUD_MESSAGE.decode(b), { longs: String, oneofs: true, defaults: true });

/**
 * gRPC statuses a hub stream may end with: OK, and those of the stable error codes
 * (edge-api/error-codes.ts) except INTERNAL. UNKNOWN, INTERNAL and statuses of no code are breaches.
 */
export const DOCUMENTED_STATUSES: ReadonlySet<string> = new Set([
  'OK',
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'ABORTED',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
]);

/** One raw hub stream and what came down it. */
export class RawHubStream {
  readonly received: CloudDown[] = [];
  status: StatusObject | undefined;
  private readonly call: ClientDuplexStream<Buffer, CloudDown>;
  private readonly ended: Promise<StatusObject>;

  /** Opens a stream on `client`; `authorization` undefined sends no metadata. */
  constructor(client: Client, authorization: string | undefined) {
    const md = new Metadata();
    if (authorization !== undefined) md.set('authorization', authorization);
    this.call = client.makeBidiStreamRequest<Buffer, CloudDown>('/iot.hub.v1.HubIngress/Connect', (b) => b, decodeCloud, md);
    this.call.on('data', (m: CloudDown) => this.received.push(m));
    this.call.on('error', () => {}); // the status carries it
    this.ended = new Promise((resolve) =>
      this.call.on('status', (s: StatusObject) => {
        this.status ??= s;
        resolve(s);
      }),
    );
  }

  /** Writes each message's bytes; stops at the first write the stream refuses (it ended). */
  send(messages: readonly FuzzHubMessage[]): void {
    for (const m of messages) {
      if (this.status || !this.call.writable) return;
      this.call.write(encodeFuzzMessage(m));
    }
  }

  /**
   * Half-closes and waits up to `timeoutMs` for the final status; undefined when the node keeps
   * the stream open (then it is cancelled here).
   */
  async finish(timeoutMs: number): Promise<StatusObject | undefined> {
    if (!this.status && this.call.writable) this.call.end();
    let timer: NodeJS.Timeout | undefined;
    const status = await Promise.race([
      this.ended,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (status === undefined) this.call.cancel();
    return status;
  }
}

/** A client (one HTTP/2 connection) to the hub ingress at `address`. */
export const rawHubClient = (address: string): Client =>
  new Client(address, credentials.createInsecure(), {
    'grpc.max_send_message_length': 8 << 20,
    'grpc.max_receive_message_length': 8 << 20,
  });

/** Why a stream broke the hub contract (its final status, or `undefined` when it stayed open), or undefined when it kept it. */
export function streamBreach(status: StatusObject | undefined, received: readonly CloudDown[]): string | undefined {
  for (const m of received) {
    if (!m.error) continue;
    const { code, message } = m.error;
    if (!DOCUMENTED_STATUSES.has(code) || code === 'OK') return `an error message with code ${JSON.stringify(code)}: ${message}`;
    if (typeof message !== 'string' || message === '') return `an error message ${code} without a message`;
  }
  if (status === undefined) return undefined; // stayed open: fine while its errors are coded
  const name = GrpcStatus[status.code] ?? `status ${status.code}`;
  if (!DOCUMENTED_STATUSES.has(name)) return `ended with ${name}: ${status.details}`;
  return undefined;
}
