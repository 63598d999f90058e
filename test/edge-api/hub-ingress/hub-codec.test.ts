/** The node's hub codec: HubMessage decoded to protobufjs objects read in place (64-bit fields as numbers, bad bytes as a value); CloudMessage encoded as it is. */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { bodyOf, decodedValue, decodeHubMessage, encodeCloudMessage, type DecodedReport } from '../../../edge-api/hub-ingress/hub-codec.ts';
import {
  commandMessage,
  desiredMessage,
  errorMessage,
  fromWireAttributes,
  type CloudMessage,
} from '../../../edge-api/hub-ingress/hub-wire.ts';
import { PROTO_LOADER_OPTIONS } from '../../../protos/load-proto.ts';
import { PROTO_DIR } from '../../../protos/load-proto.ts';

/** The codec a hub would use (its own protobufjs root; 64-bit fields as decimal strings). */
const hubRoot = new protobuf.Root().loadSync(join(PROTO_DIR, 'hub.proto'), { keepCase: true });
const HubMessage = hubRoot.lookupType('iot.hub.v1.HubMessage');
const CloudMessageType = hubRoot.lookupType('iot.hub.v1.CloudMessage');
const encode = (m: Record<string, unknown>): Buffer => Buffer.from(HubMessage.encode(HubMessage.fromObject(m)).finish());
const reportOf = (item: Record<string, unknown>): DecodedReport =>
  decodeHubMessage(encode({ reports: { items: [item] } })).reports!.items[0]!;

describe('decodeHubMessage', () => {
  it('decodes a report batch with seq and ts_ms as numbers and Values read through their set member', () => {
    const m = decodeHubMessage(
      encode({
        reports: {
          items: [
            {
              seq: '7',
              device_id: 'lamp',
              ts_ms: '1700000000123',
              attributes: { on: { flag: false }, level: { number: 0 }, mode: { text: '' } },
            },
            { seq: '8', device_id: 'pir', ts_ms: '5', event: 'motion_detected' },
          ],
        },
      }),
    );
    expect(bodyOf(m)).toBe('reports');
    expect(m.malformed).toBeUndefined();
    const [a, b] = m.reports!.items;
    expect([a!.seq, a!.device_id, a!.ts_ms, a!.event]).toEqual([7, 'lamp', 1_700_000_000_123, null]);
    // Members set to their default value still count as set (proto3 oneof presence).
    expect(fromWireAttributes(a!.attributes)).toEqual({ ok: true, value: { on: false, level: 0, mode: '' } });
    expect([b!.seq, b!.event, Object.keys(b!.attributes)]).toEqual([8, 'motion_detected', []]);
  });

  it('reads absent 64-bit fields as 0, and keeps the exact value of ones past 2^53 as bigints', () => {
    expect(reportOf({ device_id: 'lamp' })).toMatchObject({ seq: 0, ts_ms: 0 });
    expect(reportOf({ seq: String(Number.MAX_SAFE_INTEGER), ts_ms: '-5' })).toMatchObject({ seq: Number.MAX_SAFE_INTEGER, ts_ms: -5 });
    expect(reportOf({ seq: '9007199254740993', ts_ms: '-9007199254740993' })).toMatchObject({
      seq: 9007199254740993n,
      ts_ms: -9007199254740993n,
    });
    expect(reportOf({ seq: '18446744073709551615' }).seq).toBe(18446744073709551615n);
  });

  it('decodes a map entry without a value as null, and a Value with nothing set as no value', () => {
    const r = reportOf({ seq: '1', attributes: { a: {} } });
    expect(decodedValue(r.attributes['a']!)).toBeUndefined();
    // A map entry of key only: field 4, length 3, (key = field 1, length 1, 'k').
    const raw = Buffer.from([0x12, 0x07, 0x0a, 0x05, 0x22, 0x03, 0x0a, 0x01, 0x6b]);
    const item = decodeHubMessage(raw).reports!.items[0]!;
    expect(item.attributes['k']).toBeNull();
    expect(fromWireAttributes(item.attributes)).toEqual({ ok: false, message: 'attributes.k has no value set (number, flag or text)' });
  });

  it('keeps an attribute named __proto__ as data', () => {
    const raw = encode({ reports: { items: [{ seq: '1', attributes: { ['__proto__']: { flag: true } } }] } });
    const attributes = decodeHubMessage(raw).reports!.items[0]!.attributes;
    expect(Object.keys(attributes)).toEqual(['__proto__']);
    const converted = fromWireAttributes(attributes);
    expect(converted.ok && Object.getPrototypeOf(converted.value)).toBe(Object.prototype);
    expect(converted.ok && Object.keys(converted.value)).toEqual(['__proto__']);
  });

  it('decodes a command result with its result map, and one from a hub that sends none as an empty map', () => {
    const withResult = decodeHubMessage(
      encode({
        command_result: { command_id: 'l~1', ok: true, result: { level: { number: 42 }, applied: { flag: true }, note: { text: 'ok' } } },
      }),
    ).command_result!;
    expect(fromWireAttributes(withResult.result, 'result')).toEqual({ ok: true, value: { level: 42, applied: true, note: 'ok' } });
    const without = decodeHubMessage(encode({ command_result: { command_id: 'l~1', ok: false, error: 'busy' } })).command_result!;
    expect([without.ok, without.error, fromWireAttributes(without.result, 'result')]).toEqual([false, 'busy', { ok: true, value: {} }]);
    // A result Value with nothing set is refused naming result.<key>.
    const empty = decodeHubMessage(encode({ command_result: { command_id: 'l~1', ok: true, result: { level: {} } } })).command_result!;
    expect(fromWireAttributes(empty.result, 'result')).toEqual({
      ok: false,
      message: 'result.level has no value set (number, flag or text)',
    });
  });

  it('decodes a command result written by a hub built before `result` existed (field 4 absent) unchanged', () => {
    // command_id "x~1" (field 1), ok true (field 2), error "e" (field 3): the bytes of the older contract.
    const old = Buffer.from([0x1a, 0x0a, 0x0a, 0x03, 0x78, 0x7e, 0x31, 0x10, 0x01, 0x1a, 0x01, 0x65]);
    const cr = decodeHubMessage(old).command_result!;
    expect([cr.command_id, cr.ok, cr.error, Object.keys(cr.result)]).toEqual(['x~1', true, 'e', []]);
  });

  it('names the body that is set, or none', () => {
    expect(bodyOf(decodeHubMessage(encode({ hello: { hub_id: 'hub1', home_id: 'h1' } })))).toBe('hello');
    expect(bodyOf(decodeHubMessage(encode({ ping: {} })))).toBe('ping');
    expect(bodyOf(decodeHubMessage(encode({ command_result: { command_id: 'x~1', ok: true } })))).toBe('command_result');
    expect(bodyOf(decodeHubMessage(Buffer.alloc(0)))).toBeUndefined();
  });

  it.each([
    ['a truncated length', Buffer.from([0x12, 0x10, 0x0a])],
    ['an unterminated varint', Buffer.from([0x12, 0x0b, 0x0a, 0x09, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['an invalid wire type', Buffer.from([0x0f])],
  ])('returns bytes with %s as malformed instead of throwing', (_what, bytes) => {
    const m = decodeHubMessage(bytes);
    expect(m.malformed).toEqual(expect.any(String));
    expect(bodyOf(m)).toBeUndefined();
  });
});

describe('encodeCloudMessage', () => {
  it.each<[string, CloudMessage]>([
    ['welcome', { welcome: { node_id: 'n1', window: 500, last_durable_seq: '9007199254740993' } }],
    ['ack', { ack: { up_to_seq: '42' } }],
    ['error', errorMessage('invalid_argument', 'seq 0 must be an integer', '0')],
    [
      'command',
      commandMessage({
        commandId: 'l~1',
        deviceId: 'l',
        name: 'set',
        params: { on: true, level: 0.5, mode: '' },
        expiresAtMs: 1_700_000_000_123,
      }),
    ],
    ['desired', desiredMessage({ deviceId: 'l', version: 9_007_199_254_740_991, delta: { on: true, level: 0, mode: 'eco' } })],
  ])('writes a %s that a hub reads back as it was written', (_what, m) => {
    const back = CloudMessageType.toObject(CloudMessageType.decode(encodeCloudMessage(m)), PROTO_LOADER_OPTIONS);
    expect(back).toMatchObject(m);
    expect(Buffer.isBuffer(encodeCloudMessage(m))).toBe(true);
  });

  it('writes desired as body member 5 with the delta in wire form, which a hub that predates it skips as an unknown field', () => {
    const bytes = encodeCloudMessage(desiredMessage({ deviceId: 'lamp', version: 12, delta: { on: false } }));
    expect(bytes[0]).toBe((5 << 3) | 2); // field 5, length-delimited
    const back = CloudMessageType.toObject(CloudMessageType.decode(bytes), PROTO_LOADER_OPTIONS);
    expect(back).toMatchObject({ body: 'desired', desired: { device_id: 'lamp', version: '12', delta: { on: { flag: false } } } });
    // The contract before `desired`: the same message without field 5 decodes with no body set.
    const older = new protobuf.Root().loadSync(join(PROTO_DIR, 'hub.proto'), { keepCase: true });
    const cloud = older.lookupType('iot.hub.v1.CloudMessage');
    cloud.oneofs.body!.remove(cloud.fields.desired!);
    cloud.remove(cloud.fields.desired!);
    expect(cloud.toObject(cloud.decode(bytes), PROTO_LOADER_OPTIONS)).toEqual({});
  });
});
