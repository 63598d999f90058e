/** The node's hub codec: HubMessage decoded to protobufjs objects read in place (64-bit fields as numbers, bad bytes as a value); CloudMessage encoded as it is. */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { bodyOf, decodedValue, decodeHubMessage, encodeCloudMessage, type DecodedReport } from '../../../edge-api/hub-ingress/hub-codec.ts';
import { commandMessage, errorMessage, fromWireAttributes, type CloudMessage } from '../../../edge-api/hub-ingress/hub-wire.ts';
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
  ])('writes a %s that a hub reads back as it was written', (_what, m) => {
    const back = CloudMessageType.toObject(CloudMessageType.decode(encodeCloudMessage(m)), PROTO_LOADER_OPTIONS);
    expect(back).toMatchObject(m);
    expect(Buffer.isBuffer(encodeCloudMessage(m))).toBe(true);
  });
});
