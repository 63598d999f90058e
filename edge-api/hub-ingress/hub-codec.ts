/**
 * The hub stream's codec on the node, protobufjs without proto-loader's object conversions. Up:
 * `HubMessage` bytes decode straight into protobufjs message objects, which the session and the
 * report intake read in place — no `toObject` copy of every report, no `Long` per 64-bit field, no
 * decimal string per seq (measured on the ingest bench: the copy and its `Long.toString` were ~6 %
 * of the node's CPU, plus their garbage). Down: `CloudMessage` objects are encoded as they are,
 * without a `fromObject` copy first (~1.5 %, one per ack).
 */
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { PROTO_DIR } from '../../protos/load-proto.ts';
import type { CloudMessage } from './hub-wire.ts';

/**
 * A `Value` as decoded: the member the hub set is an *own* property (the others read as their
 * defaults from the prototype). A map entry without a value decodes as `null`.
 */
export interface DecodedValue {
  readonly number?: number;
  readonly flag?: boolean;
  readonly text?: string;
}

/**
 * A 64-bit field: a number while it is a safe integer, else an exact bigint, so that an
 * out-of-range seq is refused naming the value the hub sent.
 */
export type Int64 = number | bigint;

/** A `Report` as decoded; an absent seq or ts_ms reads 0, an absent event `null`. */
export interface DecodedReport {
  readonly seq: Int64;
  readonly device_id: string;
  readonly ts_ms: Int64;
  readonly attributes: Readonly<Record<string, DecodedValue | null>>;
  readonly event: string | null;
}

export interface DecodedDeviceInfo {
  readonly device_id: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

export interface DecodedHello {
  readonly hub_id: string;
  readonly home_id: string;
  readonly firmware: string;
  readonly devices: readonly DecodedDeviceInfo[];
}

/** A `CommandResult` as decoded; `result` is an empty map when the hub sent none. */
export interface DecodedCommandResult {
  readonly command_id: string;
  readonly ok: boolean;
  readonly error: string;
  readonly result: Readonly<Record<string, DecodedValue | null>>;
}

/**
 * A `HubMessage` as decoded: members of the `body` oneof that are not set read `null`.
 * `malformed` is set (and nothing else) when the bytes are not a valid HubMessage.
 */
export interface DecodedHubMessage {
  readonly hello: DecodedHello | null;
  readonly reports: { readonly items: readonly DecodedReport[] } | null;
  readonly command_result: DecodedCommandResult | null;
  readonly ping: object | null;
  readonly malformed?: string;
}

export type HubMessageBody = 'hello' | 'reports' | 'command_result' | 'ping';

/** Which member of `body` is set; when a (non-conforming) hub set several, the last in field order wins, as in proto-loader. */
export function bodyOf(m: DecodedHubMessage): HubMessageBody | undefined {
  if (m.ping !== null) return 'ping';
  if (m.command_result !== null) return 'command_result';
  if (m.reports !== null) return 'reports';
  if (m.hello !== null) return 'hello';
  return undefined;
}

/** Whether a decoded Value has `key` set (own property; the prototype holds the defaults). */
const has = (v: DecodedValue, key: keyof DecodedValue): boolean => Object.prototype.hasOwnProperty.call(v, key);

/**
 * The JS value of a decoded Value; undefined when none of its members is set (or the entry had no
 * value). Should a hub set several, the last in field order wins, as in proto-loader.
 */
export function decodedValue(v: DecodedValue | null): number | boolean | string | undefined {
  if (v === null) return undefined;
  if (has(v, 'text')) return v.text;
  if (has(v, 'flag')) return v.flag;
  if (has(v, 'number')) return v.number;
  return undefined;
}

// ---- 64-bit varints as numbers -----------------------------------------------------------------

/**
 * A varint of up to 10 bytes ending at `end` (exclusive), exactly, as protobuf reads 64-bit
 * integers: the low 64 bits, two's complement when `signed`. Only for values past 2^53 (rare).
 */
function exactVarint(buf: Uint8Array, start: number, end: number, signed: boolean): Int64 {
  let big = 0n;
  for (let i = end - 1; i >= start; i--) big = (big << 7n) | BigInt(buf[i]! & 0x7f);
  big = signed ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big);
  return big >= -BigInt(Number.MAX_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** Reads a 64-bit varint: plain float arithmetic is exact below 2^53, the common case. */
function readVarint64(r: protobuf.Reader, signed: boolean): Int64 {
  const { buf, len } = r;
  const start = r.pos;
  let pos = start;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= len) throw new RangeError(`index out of range: ${pos} + 1 > ${len}`);
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      r.pos = pos;
      return value <= Number.MAX_SAFE_INTEGER ? value : exactVarint(buf, start, pos, signed);
    }
    scale *= 128;
  }
  throw new Error('invalid varint encoding');
}

/**
 * protobufjs' Node reader with uint64/int64 read as numbers (bigints past 2^53) instead of `Long`
 * objects. The generated decoders call `r.uint64()` on whatever reader they are given.
 */
class NumericReader extends protobuf.BufferReader {}
Object.assign(NumericReader.prototype, {
  uint64(this: protobuf.Reader): Int64 {
    return readVarint64(this, false);
  },
  int64(this: protobuf.Reader): Int64 {
    return readVarint64(this, true);
  },
});

// ---- the HubMessage type -----------------------------------------------------------------------

/** Our own Root (never shared with proto-loader's), so the defaults set below stay ours. */
const ROOT = new protobuf.Root().loadSync(join(PROTO_DIR, 'hub.proto'), { keepCase: true });

function loadHubMessageType(root: protobuf.Root): protobuf.Type {
  const report = root.lookupType('iot.hub.v1.Report');
  // Defaults live on the prototype; for 64-bit fields protobufjs puts a `Long` there. An absent
  // seq or ts_ms must read 0, like one that was sent as 0.
  const proto = report.ctor.prototype as unknown as Record<string, unknown>;
  proto.seq = 0;
  proto.ts_ms = 0;
  const type = root.lookupType('iot.hub.v1.HubMessage');
  type.setup(); // its decoder now; nested types generate theirs on first use
  return type;
}

const HUB_MESSAGE = loadHubMessageType(ROOT);
const CLOUD_MESSAGE = ROOT.lookupType('iot.hub.v1.CloudMessage');
CLOUD_MESSAGE.setup();

/**
 * The request deserializer of `HubIngress.Connect`. Never throws: bytes that are not a valid
 * HubMessage come back as `{malformed}` so the session ends the stream with INVALID_ARGUMENT
 * (grpc-js would answer a throwing deserializer with INTERNAL).
 */
export function decodeHubMessage(bytes: Buffer): DecodedHubMessage {
  try {
    return HUB_MESSAGE.decode(new NumericReader(bytes)) as unknown as DecodedHubMessage;
  } catch (err) {
    return { hello: null, reports: null, command_result: null, ping: null, malformed: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The response serializer of `HubIngress.Connect`. The `CloudMessage` type guarantees the field
 * types that `fromObject` would otherwise coerce; 64-bit fields may be decimal strings or numbers.
 */
export function encodeCloudMessage(m: CloudMessage): Buffer {
  // In Node, protobufjs writes into a Buffer.
  return CLOUD_MESSAGE.encode(m).finish() as Buffer;
}
