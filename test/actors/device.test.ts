/** Unit tests of the device actor's shadow: report ordering, delta, versions, validation, JSON state. */
import { describe, expect, it } from 'vitest';
import { errorOf, valueOf } from '../support/outcome.ts';
import { deviceBehavior } from '../../actors/device.ts';
import { DEVICE_LIMITS, type DeviceMsg, type DeviceState, type ReportAck, type Shadow } from '../../actors/device-state.ts';
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
  it('keeps at most DEVICE_LIMITS.reportedAttributes reported attributes: a report adding past it is refused, updates still apply, a replay applies as journaled', () => {
    const names = Array.from({ length: DEVICE_LIMITS.reportedAttributes }, (_, i) => `a${i}`);
    let s = attached();
    for (let i = 0; i < names.length; i += 64)
      s = apply(s, [report(i / 64 + 1, Object.fromEntries(names.slice(i, i + 64).map((n) => [n, 1])))]);
    expect(Object.keys(s.reported)).toHaveLength(DEVICE_LIMITS.reportedAttributes);
    const extra = report(100, { a0: 2, brandNew: 1 });
    const refused = run(s, extra);
    expect(errorOf(refused.reply)).toMatchObject({ code: 'invalid_argument', field: 'attributes' });
    expect(refused.state.reported.a0?.value).toBe(1); // all or nothing per report
    const updated = run(s, report(101, { a0: 2 }));
    expect(valueOf(updated.reply)).toMatchObject({ applied: true });
    // A report journaled before the limit existed replays as it was decided.
    const replayed = deviceBehavior.receive(s, extra, { id: ID, now: 1_000, replaying: true });
    expect(Object.keys(replayed.state.reported)).toHaveLength(DEVICE_LIMITS.reportedAttributes + 1);
  });

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

  it('lets a device that was never written leave memory after answering not_found, and keeps every other', () => {
    const issue = (source: { kind: 'app' } | { kind: 'rule'; ruleId: string }): DeviceMsg => ({
      type: 'command.issue',
      commandId: 'c1',
      name: 'set',
      params: {},
      ttlMs: 10_000,
      depth: 0,
      source,
    });
    const reads: DeviceMsg[] = [
      { type: 'shadow.get' },
      { type: 'shadow.setDesired', desired: { on: true } },
      { type: 'command.get', commandId: 'lamp~c1' },
      { type: 'command.result', commandId: 'lamp~c1', ok: true },
      issue({ kind: 'app' }),
    ];
    for (const msg of reads) {
      const step = run(fresh(), msg);
      expect(errorOf(step.reply).code, msg.type).toBe('not_found');
      expect(step.passivate, msg.type).toBe(true);
    }
    // Not announced, but it holds something: a rule's queued command, or its home's watch.
    const queued = run(fresh(), issue({ kind: 'rule', ruleId: 'r1' })).state;
    const watched = run(fresh(), { type: 'device.watch', attributes: ['on'], events: [], values: [] }).state;
    for (const s of [queued, watched]) {
      const step = run(s, { type: 'shadow.get' });
      expect(errorOf(step.reply).code).toBe('not_found');
      expect(step.passivate).toBeFalsy();
    }
    // A known device stays, even when what it is asked for is not found.
    expect(run(attached(), { type: 'command.get', commandId: 'lamp~c9' }).passivate).toBeFalsy();
    expect(run(attached(), { type: 'shadow.get' }).passivate).toBeFalsy();
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

  describe('seq order of the serving hub', () => {
    const attach = (hubId: string, hubIncarnation?: number): DeviceMsg => ({
      type: 'device.attach',
      hubId,
      deviceType: 'light',
      capabilities: ['on', 'brightness'],
      ...(hubIncarnation === undefined ? {} : { hubIncarnation }),
    });
    const ack = (s: DeviceState, seq: number, on: boolean) => valueOf<ReportAck>(run(s, report(seq, { on })).reply);
    /** Attached to hub1 (incarnation 0) with seqs 1..5 applied. */
    const served = (): DeviceState => apply(fresh(), [attach('hub1', 0), ...[1, 2, 3, 4, 5].map((n) => report(n, { on: n % 2 === 1 }))]);

    it('restarts when its hub comes back as a new incarnation (removed, registered anew): seq 1 applies again', () => {
      const s = served();
      expect(s).toMatchObject({ lastSeq: 5, hubIncarnation: 0 });
      const step = run(s, attach('hub1', 1));
      expect(step.journal).toBe(true);
      expect(step.state).toMatchObject({ hubId: 'hub1', hubIncarnation: 1, lastSeq: 0, recentSeqs: [], version: s.version });
      expect(step.state.reported).toEqual(s.reported); // only the order restarts, the shadow stays
      expect(ack(step.state, 1, false)).toEqual({ applied: true, version: s.version + 1 });
    });

    it('keeps it when the same incarnation attaches again (a plain reconnect): re-sent reports stay duplicates', () => {
      const s = served();
      const again = run(s, attach('hub1', 0));
      expect(again).toMatchObject({ journal: false, state: s });
      expect(ack(again.state, 5, true)).toEqual({ applied: false, reason: 'duplicate', version: s.version });
      expect(ack(again.state, 3, true)).toMatchObject({ applied: false });
    });

    it('restarts when another hub serves it (each hub counts its own seqs), and keeps it when the hub comes back unchanged', () => {
      const moved = run(served(), attach('hub2', 0));
      expect(moved.state).toMatchObject({ hubId: 'hub2', hubIncarnation: 0, lastSeq: 0, recentSeqs: [] });
      const s = run(moved.state, report(2, { on: false })).state;
      expect(s.lastSeq).toBe(2);
      expect(run(s, attach('hub2', 0)).state).toBe(s);
    });

    it('replays an attach of an older release (no incarnation) as it ran: the order is kept, the incarnation only for the same hub', () => {
      const s = served();
      const sameHub = run(s, attach('hub1'));
      expect(sameHub).toMatchObject({ journal: false, state: s });
      const otherHub = run(s, attach('hub2')).state;
      expect(otherHub).toMatchObject({ hubId: 'hub2', lastSeq: 5, recentSeqs: [1, 2, 3, 4, 5] });
      expect(otherHub.hubIncarnation).toBeUndefined(); // hub1's count says nothing of hub2
    });

    it('for a state from before incarnations were kept, restarts only for a later incarnation of its hub', () => {
      const { hubIncarnation: _, ...legacy } = served();
      const same = run(legacy, attach('hub1', 0));
      expect(same.journal).toBe(true); // records the incarnation once
      expect(same.state).toMatchObject({ hubIncarnation: 0, lastSeq: 5 });
      expect(run(legacy, attach('hub1', 3)).state).toMatchObject({ hubIncarnation: 3, lastSeq: 0, recentSeqs: [] });
    });

    it('refuses an incarnation that is not a non-negative integer', () => {
      for (const bad of [-1, 1.5, Number.NaN]) {
        const step = run(served(), attach('hub1', bad));
        expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field: 'hubIncarnation' });
        expect(step.journal).toBe(false);
      }
    });
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

describe('deviceBehavior: removal', () => {
  const busy = (): DeviceState =>
    apply(attached(), [
      report(1, { on: true }),
      { type: 'shadow.setDesired', desired: { brightness: 40 } },
      { type: 'device.watch', attributes: ['on'], events: [], values: [] },
    ]);

  it('erases the device and keeps only the removed mark (with the version, one past the last), once', () => {
    const before = busy();
    expect(before.version).toBe(2);
    const step = run(before, { type: 'device.remove' });
    expect(step.journal).toBe(true);
    // Nothing left to serve: the actor leaves memory once the mark is written.
    expect(step.passivate).toBe(true);
    expect(step.state).toEqual({ ...fresh(), version: 3, removed: true });
    expect(deviceBehavior.nextWakeAt?.(step.state)).toBeUndefined();
    const again = run(step.state, { type: 'device.remove' });
    expect(again.journal).toBe(false);
    expect(again.state).toBe(step.state);
  });

  it('refuses a late report, batch, read or command instead of bringing the device back', () => {
    const removed = run(busy(), { type: 'device.remove' }).state;
    const late: DeviceMsg[] = [
      report(2, { on: false }),
      { type: 'report.batch', items: [{ seq: 3, tsMs: 1, attributes: { on: true } }] },
      { type: 'shadow.get' },
      { type: 'shadow.setDesired', desired: { on: true } },
      {
        type: 'command.issue',
        commandId: 'lamp~r-1',
        name: 'on',
        params: {},
        ttlMs: 1_000,
        depth: 1,
        source: { kind: 'rule', ruleId: 'r' },
      },
      { type: 'command.result', commandId: 'lamp~x', ok: true },
    ];
    for (const msg of late) {
      const step = run(removed, msg);
      expect(errorOf(step.reply).code, msg.type).toBe('not_found');
      expect(step.state).toBe(removed);
      expect(step.journal).toBeFalsy();
      // A read of a removed device keeps no actor resident.
      expect(step.passivate, msg.type).toBe(true);
    }
    for (const msg of [
      { type: 'hub.connection', online: true, hubId: 'hub1' },
      { type: 'device.watch', attributes: ['on'], events: [], values: [] },
    ] as DeviceMsg[]) {
      const step = run(removed, msg);
      expect(step.reply).toEqual({ ok: true, value: null });
      expect(step.state).toBe(removed);
      expect(step.passivate, msg.type).toBe(true);
    }
  });

  it('starts afresh when a hub attaches it again (a home created anew), and keeps the mark on a bad attach', () => {
    const removed = run(busy(), { type: 'device.remove' }).state;
    const bad = run(removed, { type: 'device.attach', hubId: '', deviceType: 'light', capabilities: [] });
    expect(bad.reply).toMatchObject({ ok: false });
    expect(bad.state).toBe(removed);
    const step = run(removed, { type: 'device.attach', hubId: 'hub9', deviceType: 'plug', capabilities: ['on'] });
    expect(step.journal).toBe(true);
    expect(step.state).toEqual({ ...fresh(), version: 3, hubId: 'hub9', type: 'plug', capabilities: ['on'] });
    const shadow = valueOf<Shadow>(run(step.state, { type: 'shadow.get' }).reply);
    expect(shadow).toMatchObject({ version: 3, reported: {}, desired: {} });
    // Its hub's seqs start over too; its version goes on.
    expect(valueOf<ReportAck>(run(step.state, report(1, { on: true })).reply)).toEqual({ applied: true, version: 4 });
  });

  it('never gives a version lower than the removed device had: removed and created anew, again and again', () => {
    // A hub may ignore a desired delta older than one it applied: a device created anew must not count from 0.
    let s = busy();
    let last = s.version;
    for (let round = 0; round < 3; round++) {
      s = run(s, { type: 'device.remove' }).state;
      expect(s.version).toBeGreaterThan(last);
      s = apply(s, [
        { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] },
        { type: 'hub.connection', online: true, hubId: 'hub1' },
      ]);
      const step = run(s, { type: 'shadow.setDesired', desired: { on: round % 2 === 0 } });
      const sent = step.effects?.find((e) => e.type === 'hub.desired');
      expect(sent).toMatchObject({ version: s.version + 1 });
      expect(step.state.version).toBeGreaterThan(last + 1);
      s = step.state;
      last = s.version;
    }
  });
});
