import { describe, expect, it } from 'vitest';
import {
  commandMessage,
  fromWireAttributes,
  fromWireValue,
  helloDevices,
  parseSeq,
  toWireValue,
} from '../../../edge-api/hub-ingress/hub-wire.ts';

describe('hub wire conversions', () => {
  it.each([
    [1, 1],
    [42, 42],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [0, undefined],
    [-1, undefined],
    [1.5, undefined],
    [9007199254740992n, undefined],
    [18446744073709551615n, undefined],
  ])('takes seq %s as %s', (wire, seq) => {
    expect(parseSeq(wire)).toBe(seq);
  });

  it('converts Values both ways and refuses a Value with no kind', () => {
    for (const v of [0, -1.5, true, false, '', 'on'])
      expect(fromWireValue({ ...toWireValue(v), kind: Object.keys(toWireValue(v))[0] as 'number' })).toBe(v);
    expect(fromWireValue({})).toBeUndefined();
    // Decoded Values: the member set is the own property.
    expect(fromWireAttributes({ a: { number: 1 }, b: { flag: false }, c: { text: '' } })).toEqual({
      ok: true,
      value: { a: 1, b: false, c: '' },
    });
    expect(fromWireAttributes({ a: { number: 1 }, b: {} })).toEqual({
      ok: false,
      message: 'attributes.b has no value set (number, flag or text)',
    });
    expect(fromWireAttributes({ a: null })).toEqual({ ok: false, message: 'attributes.a has no value set (number, flag or text)' });
  });

  it('keeps an attribute named __proto__ as data for the device actor to refuse', () => {
    const r = fromWireAttributes(JSON.parse('{"__proto__": {"flag": true}}'));
    expect(r.ok && Object.keys(r.value)).toEqual(['__proto__']);
    expect(r.ok && Object.getPrototypeOf(r.value)).toBe(Object.prototype);
  });

  it('checks a hello device list and names bad fields as the hub wrote them', () => {
    const dev = (id: string) => ({ device_id: id, type: 'light', capabilities: ['on'] });
    const hello = (devices: ReturnType<typeof dev>[]) => ({ hub_id: 'hub1', home_id: 'h1', firmware: '', devices });
    expect(helloDevices(hello([dev('a'), dev('b')]))).toEqual({
      ok: true,
      value: [
        { deviceId: 'a', type: 'light', capabilities: ['on'] },
        { deviceId: 'b', type: 'light', capabilities: ['on'] },
      ],
    });
    expect(helloDevices(hello([dev('a'), dev('')]))).toEqual({
      ok: false,
      message: 'hello.devices[1].device_id must be a string of 1-128 characters',
    });
    expect(helloDevices(hello([dev('a'), dev('a')]))).toEqual({ ok: false, message: 'hello.devices[1].device_id repeats a' });
    // An id the HTTP edge could never name in a path (found probing: q\u0001 was registered, then unreachable).
    expect(helloDevices(hello([dev('a'), dev('q\u0001')]))).toEqual({
      ok: false,
      message: 'hello.devices[1].device_id must not contain control characters',
    });
    expect(helloDevices(hello([dev('x~y'), dev('a/b'), dev('é')])).ok).toBe(true);
  });

  it('writes a command with Value params and a decimal expiry', () => {
    expect(
      commandMessage({
        commandId: 'light1~1',
        deviceId: 'light1',
        name: 'set',
        params: { on: true, level: 3, mode: 'warm' },
        expiresAtMs: 1_700_000_000_123,
      }),
    ).toEqual({
      command: {
        command_id: 'light1~1',
        device_id: 'light1',
        name: 'set',
        params: { on: { flag: true }, level: { number: 3 }, mode: { text: 'warm' } },
        expires_at_ms: '1700000000123',
      },
    });
  });
});
