/** Unit tests of the device actor's shadow: report ordering, delta, versions, validation, JSON state. */
import { describe, expect, it } from 'vitest';
import { errorOf, valueOf } from '../support/outcome.ts';
import { deviceBehavior } from '../../actors/device.ts';
import type { DeviceMsg, DeviceState, ReportAck, Shadow } from '../../actors/device-state.ts';
import { deviceActorId } from '../../actors/actor-id.ts';
import type { DeviceChanged, Value } from '../../actors/types.ts';

const ID = deviceActorId('h1', 'lamp');
const fresh = (): DeviceState => deviceBehavior.initial(ID);
const run = (s: DeviceState, msg: DeviceMsg, now = 1_000) => deviceBehavior.receive(s, msg, { id: ID, now, replaying: false });
const report = (seq: number, attributes: Record<string, Value>, event?: string): DeviceMsg => ({
  type: 'report',
  seq,
  tsMs: 500 + seq,
  attributes,
  ...(event === undefined ? {} : { event }),
});
const attached = (): DeviceState =>
  run(fresh(), { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on', 'brightness'] }).state;
/** Applies messages in order, returning the last state. */
const apply = (s: DeviceState, msgs: DeviceMsg[], now = 1_000): DeviceState => msgs.reduce((acc, m) => run(acc, m, now).state, s);

describe('deviceBehavior', () => {
  it('applies a report batch in seq order as one step: per-item outcomes, one message to the home', () => {
    const step = run(fresh(), {
      type: 'report.batch',
      items: [
        { seq: 1, tsMs: 501, attributes: { n: 1 } },
        { seq: 1, tsMs: 501, attributes: { n: 1 } },
        { seq: 3, tsMs: 503, attributes: { n: 3 }, event: 'single' },
        { seq: 2, tsMs: 502, attributes: { n: 2 } },
        { seq: -1, tsMs: 504, attributes: { n: 4 } },
      ],
    });
    const { results } = valueOf<{ results: { ok: boolean; value?: ReportAck; error?: { field?: string } }[] }>(step.reply);
    expect(results.map((r) => (r.ok ? r.value : r.error?.field))).toEqual([
      { applied: true, version: 1 },
      { applied: false, reason: 'duplicate', version: 1 },
      { applied: true, version: 2 },
      { applied: false, reason: 'stale', version: 2 },
      'seq',
    ]);
    expect(step.journal).toBe(true);
    expect(step.state).toMatchObject({ lastSeq: 3, version: 2, reported: { n: { value: 3, ts: 503 } } });
    const toHome = (step.effects ?? []).filter((e) => e.type === 'tell');
    expect(toHome).toHaveLength(1);
    expect(toHome[0]).toMatchObject({
      to: 'home:h1',
      msg: { type: 'device.changes', changes: [{ changed: { n: 1 } }, { changed: { n: 3 }, event: 'single' }] },
    });
  });

  it('answers not_found for the shadow of a device no hub has announced and that never reported', () => {
    expect(errorOf(run(fresh(), { type: 'shadow.get' }).reply).code).toBe('not_found');
    const patch = run(fresh(), { type: 'shadow.setDesired', desired: { on: true } });
    expect(errorOf(patch.reply).code).toBe('not_found');
    expect(patch.journal).toBe(false);
  });

  it('parses homeId and deviceId from its id and starts empty', () => {
    expect(fresh()).toMatchObject({ homeId: 'h1', deviceId: 'lamp', version: 0, lastSeq: 0, online: false, commands: {} });
    expect(() => deviceBehavior.initial('home:h1')).toThrow(/not a device actor id/);
  });

  it('journals attach only when hub, type or capabilities change', () => {
    const msg: DeviceMsg = { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on', 'brightness'] };
    const first = run(fresh(), msg);
    expect(first.journal).toBe(true);
    expect(first.state).toMatchObject({ hubId: 'hub1', type: 'light', capabilities: ['on', 'brightness'] });
    const again = run(first.state, msg);
    expect(again.journal).toBe(false);
    expect(again.state).toBe(first.state);
  });

  it('ignores a report older than the highest applied seq: latest = highest seq, not last arrived', () => {
    const s1 = run(attached(), report(5, { on: true })).state;
    const older = run(s1, report(3, { on: false }));
    expect(valueOf<ReportAck>(older.reply)).toEqual({ applied: false, reason: 'stale', version: 1 });
    expect(older.journal).toBe(false);
    expect(older.state).toBe(s1);
    expect(older.state.reported.on?.value).toBe(true);
    expect(older.state.lastSeq).toBe(5);
  });

  it('acknowledges a duplicate report without applying it again', () => {
    const s1 = run(attached(), report(1, { on: true })).state;
    const dup = run(s1, report(1, { on: true }));
    expect(valueOf<ReportAck>(dup.reply)).toEqual({ applied: false, reason: 'duplicate', version: 1 });
    expect(dup.journal).toBe(false);
    expect(dup.effects ?? []).toEqual([]);
    expect(dup.state).toBe(s1);
  });

  it('increments version only when a reported value changes, but always moves lastSeq and lastSeen', () => {
    const s1 = run(attached(), report(1, { on: true, brightness: 10 }), 1_000).state;
    expect(s1.version).toBe(1);
    const same = run(s1, report(2, { on: true }), 2_000);
    expect(same.journal).toBe(true);
    expect(same.effects ?? []).toEqual([]);
    expect(same.state).toMatchObject({ version: 1, lastSeq: 2, lastSeen: 2_000 });
    expect(same.state.reported.on).toEqual({ value: true, ts: 502 });
    const changed = run(same.state, report(3, { brightness: 20 }), 3_000);
    expect(valueOf<ReportAck>(changed.reply)).toEqual({ applied: true, version: 2 });
  });

  it('tells the home what changed and publishes the shadow', () => {
    const s1 = run(attached(), report(1, { on: true, brightness: 10 })).state;
    const step = run(s1, report(2, { on: true, brightness: 40 }));
    const [tell, publish] = step.effects ?? [];
    expect(tell).toEqual({
      type: 'tell',
      to: 'home:h1',
      msg: {
        type: 'device.changed',
        deviceId: 'lamp',
        deviceType: 'light',
        changed: { brightness: 40 },
        attributes: { on: true, brightness: 40 },
        depth: 0,
        tsMs: 502,
      } satisfies DeviceChanged,
    });
    expect(publish).toMatchObject({ type: 'publish', homeId: 'h1', topic: 'device.shadow', data: { deviceId: 'lamp', version: 2 } });
  });

  it('tells the home about an event even when no value changed', () => {
    const s1 = run(attached(), report(1, { battery: 90 })).state;
    const step = run(s1, report(2, { battery: 90 }, 'double'));
    expect(step.state.version).toBe(1);
    expect(step.effects?.[0]).toMatchObject({ type: 'tell', msg: { event: 'double', changed: {}, attributes: { battery: 90 } } });
  });

  it('computes the delta from desired and reported instead of storing it', () => {
    let s = run(attached(), report(1, { on: true, brightness: 30 })).state;
    s = run(s, { type: 'shadow.setDesired', desired: { on: true, brightness: 60, color_temp: 2700 } }).state;
    expect(valueOf<Shadow>(run(s, { type: 'shadow.get' }).reply).delta).toEqual({ brightness: 60, color_temp: 2700 });
    s = run(s, report(2, { brightness: 60, color_temp: 2700 })).state;
    const shadow = valueOf<Shadow>(run(s, { type: 'shadow.get' }).reply);
    expect(shadow.delta).toEqual({});
    expect(shadow).toMatchObject({ deviceId: 'lamp', type: 'light', online: true, lastSeen: 1_000, version: 3 });
    expect('delta' in s).toBe(false);
  });

  it('rejects setDesired with a stale ifVersion as version_conflict', () => {
    const s1 = run(attached(), report(1, { on: true })).state;
    const stale = run(s1, { type: 'shadow.setDesired', desired: { on: false }, ifVersion: 0 });
    expect(errorOf(stale.reply).code).toBe('version_conflict');
    expect(stale.state).toBe(s1);
    const fine = run(s1, { type: 'shadow.setDesired', desired: { on: false }, ifVersion: 1 });
    expect(valueOf<Shadow>(fine.reply)).toMatchObject({ version: 2, desired: { on: false } });
    expect(fine.effects?.[0]).toMatchObject({ type: 'publish', topic: 'device.shadow' });
  });

  it('removes a desired key on null and leaves the version alone when nothing changes', () => {
    const s1 = run(attached(), { type: 'shadow.setDesired', desired: { on: true, brightness: 50 } }).state;
    const removed = run(s1, { type: 'shadow.setDesired', desired: { brightness: null } });
    expect(removed.state.desired).toEqual({ on: true });
    expect(removed.state.version).toBe(2);
    const noop = run(removed.state, { type: 'shadow.setDesired', desired: { brightness: null, on: true } });
    expect(noop.journal).toBe(false);
    expect(noop.state).toBe(removed.state);
  });

  it.each([
    [{ ...report(0, { on: true }) }, 'seq'],
    [{ ...report(1, { on: true }), seq: 1.5 }, 'seq'],
    [{ ...report(1, { on: true }), tsMs: Number.NaN }, 'tsMs'],
    [report(1, { '': 1 }), 'attributes.'],
    [report(1, { ['x'.repeat(65)]: 1 }), `attributes.${'x'.repeat(65)}`],
    [report(1, { temp: Number.POSITIVE_INFINITY }), 'attributes.temp'],
    [report(1, { label: 'y'.repeat(1025) }), 'attributes.label'],
    [report(1, { nested: {} as unknown as Value }), 'attributes.nested'],
    [report(1, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, i]))), 'attributes'],
    [report(1, { on: true }, ''), 'event'],
    [{ type: 'shadow.setDesired', desired: { on: [] as unknown as Value } }, 'desired.on'],
    [{ type: 'shadow.setDesired', desired: {}, ifVersion: -1 }, 'ifVersion'],
    [{ type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on', ''] }, 'capabilities[1]'],
  ] as [DeviceMsg, string][])('rejects invalid input naming the field (%#: %s)', (msg, field) => {
    const s = attached();
    const step = run(s, msg);
    expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field });
    expect(errorOf(step.reply).message).toContain(field);
    expect(step.state).toBe(s);
    expect(step.journal).toBe(false);
  });

  it('rejects an unknown message type', () => {
    const step = run(fresh(), { type: 'nope' } as unknown as DeviceMsg);
    expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field: 'type' });
  });

  it('never mutates the state it was given', () => {
    const s = attached();
    const frozen = JSON.stringify(s);
    apply(s, [report(1, { on: true }), { type: 'shadow.setDesired', desired: { on: false } }]);
    run(s, report(1, { on: true }));
    expect(JSON.stringify(s)).toBe(frozen);
  });

  it('behaves identically after a JSON round trip of its state', () => {
    const script: [DeviceMsg, number][] = [
      [{ type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] }, 1_000],
      [report(1, { on: true, brightness: 5 }), 1_100],
      [
        {
          type: 'command.issue',
          commandId: 'c1',
          name: 'set',
          params: { on: false },
          ttlMs: 1_000,
          depth: 2,
          source: { kind: 'rule', ruleId: 'r1' },
        },
        1_200,
      ],
      [{ type: 'hub.connection', online: true, hubId: 'hub1' }, 1_300],
      [{ type: 'command.result', commandId: 'c1', ok: true }, 1_400],
      [report(3, { on: false }), 1_500],
      [report(2, { on: true }), 1_600],
      [report(3, { on: false }), 1_650],
      [{ type: 'shadow.setDesired', desired: { brightness: 50, on: null }, ifVersion: 2 }, 1_700],
      [{ type: 'command.issue', commandId: 'c2', name: 'set', params: {}, ttlMs: 10, depth: 0, source: { kind: 'app' } }, 1_800],
      [{ type: 'hub.connection', online: false }, 1_900],
      [{ type: 'command.expire' }, 9_000],
      [report(4, { on: true }), 9_100],
      [{ type: 'shadow.get' }, 9_200],
    ];
    let direct = fresh();
    let viaJson = fresh();
    for (const [msg, now] of script) {
      const a = run(direct, msg, now);
      const b = run(JSON.parse(JSON.stringify(viaJson)) as DeviceState, msg, now);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      direct = a.state;
      viaJson = b.state;
    }
    expect(JSON.parse(JSON.stringify(direct))).toEqual(direct);
  });
});
