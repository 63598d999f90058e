/**
 * The hub contract's messages in proto-loader's object form (what hub clients write and read, what
 * the node writes down), and the conversion of decoded up-stream messages (hub-codec.ts) to
 * domain values.
 */
import type { ServerDuplexStream, StatusObject } from '@grpc/grpc-js';
import { checkHubDevices, type HubDevice } from '../../actors/hub.ts';
import { hasControlCharacter } from '../../actors/validation.ts';
import type { CommandDelivery, DesiredDelivery, Value } from '../../actors/types.ts';
import { grpcStatusOf, grpcStatusNameOf, type ErrorCode } from '../error-codes.ts';
import { decodedValue, type DecodedHello, type DecodedHubMessage, type DecodedValue, type Int64 } from './hub-codec.ts';

/** `Value` oneof `kind`; `kind` names the field that is set (absent when none is). */
export interface WireValue {
  readonly kind?: 'number' | 'flag' | 'text';
  readonly number?: number;
  readonly flag?: boolean;
  readonly text?: string;
}

export interface WireDeviceInfo {
  readonly device_id: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

export interface WireHello {
  readonly hub_id: string;
  readonly home_id: string;
  readonly firmware: string;
  readonly devices: readonly WireDeviceInfo[];
}

/** uint64/int64 arrive as decimal strings; `event` is absent unless the hub set it. */
export interface WireReport {
  readonly seq: string;
  readonly device_id: string;
  readonly ts_ms: string;
  readonly attributes: Readonly<Record<string, WireValue>>;
  readonly event?: string;
}

export interface WireCommandResult {
  readonly command_id: string;
  readonly ok: boolean;
  readonly error: string;
  /** What the command produced; optional (absent and empty read the same). */
  readonly result?: Readonly<Record<string, WireValue>>;
}

/** What the hub sends, as a proto-loader client writes it; `body` names the oneof member that is set. */
export interface HubMessage {
  readonly body?: 'hello' | 'reports' | 'command_result' | 'ping';
  readonly hello?: WireHello;
  readonly reports?: { readonly items: readonly WireReport[] };
  readonly command_result?: WireCommandResult;
  readonly ping?: Record<string, never>;
}

/** What the cloud sends; 64-bit fields are written as decimal strings. */
export type CloudMessage =
  | { readonly welcome: { readonly node_id: string; readonly window: number; readonly last_durable_seq: string } }
  | { readonly ack: { readonly up_to_seq: string } }
  | {
      readonly command: {
        readonly command_id: string;
        readonly device_id: string;
        readonly name: string;
        readonly params: Record<string, WireValue>;
        readonly expires_at_ms: string;
      };
    }
  | { readonly error: { readonly code: string; readonly message: string; readonly seq: string } }
  | { readonly desired: { readonly device_id: string; readonly version: string; readonly delta: Record<string, WireValue> } };

/** A hub's stream on the node: up-stream messages are decoded by hub-codec.ts. */
export type HubCall = ServerDuplexStream<DecodedHubMessage, CloudMessage>;

/** A conversion that failed with a message naming the bad field (snake_case, as the hub wrote it). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

/** A report seq: a safe integer >= 1, else undefined. */
export function parseSeq(seq: Int64): number | undefined {
  return typeof seq === 'number' && seq >= 1 && Number.isSafeInteger(seq) ? seq : undefined;
}

/** A Value oneof as proto-loader decodes it (`kind` set) as a JS value; undefined when no kind is set. */
export function fromWireValue(v: WireValue): Value | undefined {
  switch (v.kind) {
    case 'number':
      return v.number;
    case 'flag':
      return v.flag;
    case 'text':
      return v.text;
    default:
      return undefined;
  }
}

/** A JS value as a Value oneof. */
export const toWireValue = (v: Value): WireValue =>
  typeof v === 'number' ? { number: v } : typeof v === 'boolean' ? { flag: v } : { text: v };

/**
 * A decoded map of Values (a report's `attributes`, a command result's `result`) as JS values; a
 * Value with nothing set is an error naming `field.key`.
 */
export function fromWireAttributes(
  attributes: Readonly<Record<string, DecodedValue | null>>,
  field = 'attributes',
): Parsed<Record<string, Value>> {
  const out: Record<string, Value> = {};
  // for-in, not Object.entries: no array of pairs per report. The decoded map is a plain object
  // whose keys are all its own.
  for (const key in attributes) {
    const v = decodedValue(attributes[key] ?? null);
    if (v === undefined) return { ok: false, message: `${field}.${key} has no value set (number, flag or text)` };
    // A key such as `__proto__` must become data, never the prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return { ok: true, value: out };
}

/**
 * A map of JS values (a command's params, a desired delta, a command result) as a map of Value
 * oneofs. Object.fromEntries defines each key, so a key such as `__proto__` stays data.
 */
export const toWireAttributes = (values: Readonly<Record<string, Value>>): Record<string, WireValue> =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toWireValue(v)]));

/** The hello's device list in domain form, checked as the hub actor checks it. */
export function helloDevices(hello: DecodedHello | WireHello): Parsed<HubDevice[]> {
  const devices = hello.devices.map((d) => ({ deviceId: d.device_id, type: d.type, capabilities: [...d.capabilities] }));
  // The HTTP edge refuses such ids in paths: a device registered with one could not be read or managed.
  const odd = devices.findIndex((d) => typeof d.deviceId === 'string' && hasControlCharacter(d.deviceId));
  if (odd >= 0) return { ok: false, message: `hello.devices[${odd}].device_id must not contain control characters` };
  const e = checkHubDevices(devices);
  if (!e) return { ok: true, value: devices };
  return { ok: false, message: `hello.${toSnakeCase(e.message)}` };
}

/** The down-stream form of a command. */
export const commandMessage = (c: CommandDelivery): CloudMessage => ({
  command: {
    command_id: c.commandId,
    device_id: c.deviceId,
    name: c.name,
    params: toWireAttributes(c.params),
    expires_at_ms: String(c.expiresAtMs),
  },
});

/** The down-stream form of a device's desired delta. */
export const desiredMessage = (d: DesiredDelivery): CloudMessage => ({
  desired: {
    device_id: d.deviceId,
    version: String(d.version),
    delta: toWireAttributes(d.delta),
  },
});

/** An in-stream `error` about one report (`seq`, a decimal string, '0' when about none). */
export const errorMessage = (code: ErrorCode, message: string, seq = '0'): CloudMessage => ({
  error: { code: grpcStatusNameOf(code), message, seq },
});

/**
 * Ends a call with a status. grpc-js turns an `error` event on a server stream into the call's
 * status once the writes queued before it are flushed; a call that is already over is left alone.
 */
export function endCall(call: HubCall, code: ErrorCode, details: string): void {
  if (call.cancelled || call.destroyed || call.writableEnded) return;
  const status: Partial<StatusObject> = { code: grpcStatusOf(code), details };
  call.emit('error', status);
}

/**
 * Resets the call's HTTP/2 stream with `rstCode` (RST_STREAM), dropping whatever is queued to the
 * hub: the one way to end a stream whose hub does not read, since a status (trailers) waits
 * behind the queued messages. `NGHTTP2_ENHANCE_YOUR_CALM` reads as RESOURCE_EXHAUSTED in gRPC
 * clients. grpc-js keeps the HTTP/2 stream private (the call's `call`, through interceptors'
 * `nextCall`, holds `stream`); false when it cannot be found (another grpc-js), and the caller
 * falls back to a status.
 */
export function resetCall(call: HubCall, rstCode: number): boolean {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && typeof link === 'object' && link !== null; depth++) {
    const { stream, nextCall } = link as { stream?: { close?: unknown; destroyed?: boolean; rstCode?: unknown }; nextCall?: unknown };
    if (stream && typeof stream.close === 'function' && 'rstCode' in stream) {
      if (!stream.destroyed) (stream.close as (code: number) => void).call(stream, rstCode);
      return true;
    }
    link = nextCall;
  }
  return false;
}

const toSnakeCase = (s: string): string => s.replace(/deviceId/g, 'device_id');
