/** Desired state down to the hub: when the device actor emits `hub.desired`, with which delta and version, and when it does not. */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { computeDelta, deviceBehavior } from '../../actors/device.ts';
import type { DeviceMsg, DeviceState } from '../../actors/device-state.ts';
import { deviceActorId } from '../../actors/actor-id.ts';
import type { DomainEffect, Value } from '../../actors/types.ts';
import { valueOf } from '../support/outcome.ts';
import { mulberry32, randomInt } from '../support/prng.ts';

const ID = deviceActorId('h1', 'lamp');
const run = (s: DeviceState, msg: DeviceMsg, now = 1_000) => deviceBehavior.receive(s, msg, { id: ID, now, replaying: false });
const apply = (s: DeviceState, msgs: DeviceMsg[]): DeviceState => msgs.reduce((acc, m) => run(acc, m).state, s);
const attach: DeviceMsg = { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on', 'level'] };
const online: DeviceMsg = { type: 'hub.connection', online: true, hubId: 'hub1' };
const offline: DeviceMsg = { type: 'hub.connection', online: false, hubId: 'hub1' };
const setDesired = (desired: Record<string, Value | null>): DeviceMsg => ({ type: 'shadow.setDesired', desired });
let seq = 0;
const report = (attributes: Record<string, Value>): DeviceMsg => ({ type: 'report', seq: ++seq, tsMs: 500, attributes });
const desiredOf = (effects: readonly DomainEffect[] | undefined) =>
  (effects ?? []).filter((e): e is Extract<DomainEffect, { type: 'hub.desired' }> => e.type === 'hub.desired');

/** Attached to hub1, reported {on:false, level:10}, hub stream open. */
const connected = (): DeviceState => apply(deviceBehavior.initial(ID), [attach, report({ on: false, level: 10 }), online]);

describe('device twin: desired state down to the hub', () => {
  it('sends the whole current delta with the new version when an app changes desired while the hub is connected', () => {
    const step = run(connected(), setDesired({ on: true }));
    const shadow = valueOf<{ version: number }>(step.reply);
    expect(desiredOf(step.effects)).toEqual([
      { type: 'hub.desired', homeId: 'h1', hubId: 'hub1', deviceId: 'lamp', version: shadow.version, delta: { on: true } },
    ]);
    // A second change sends the delta as it now is (both keys), not only the key that changed.
    const next = run(step.state, setDesired({ level: 80, mode: 'warm' }));
    expect(desiredOf(next.effects)).toEqual([
      expect.objectContaining({ version: step.state.version + 1, delta: { on: true, level: 80, mode: 'warm' } }),
    ]);
  });

  it('sends nothing while the hub is offline, for a device without a hub, or when the change leaves the delta as it was', () => {
    const down = run(connected(), offline).state;
    expect(desiredOf(run(down, setDesired({ on: true })).effects)).toEqual([]);
    const unserved = apply(deviceBehavior.initial(ID), [report({ on: false }), { type: 'hub.connection', online: true }]);
    expect(unserved.hubOnline).toBe(true);
    expect(desiredOf(run(unserved, setDesired({ on: true })).effects)).toEqual([]);
    // Desired equal to what was reported: the delta stays empty, nothing for the hub to do.
    const same = run(connected(), setDesired({ on: false, level: 10 }));
    expect(same.state.desired).toEqual({ on: false, level: 10 });
    expect(desiredOf(same.effects)).toEqual([]);
    // A change that leaves a non-empty delta as it was (a key set to its reported value).
    const pending = run(connected(), setDesired({ on: true })).state;
    const unchangedDelta = run(pending, setDesired({ level: 10 }));
    expect(unchangedDelta.state.version).toBe(pending.version + 1);
    expect(desiredOf(unchangedDelta.effects)).toEqual([]);
  });

  it('sends the emptied delta when an app changes desired back to the reported value or removes the key with null, so the hub stops heading for the old target', () => {
    const pending = run(connected(), setDesired({ on: true, level: 80 }));
    expect(pending.state.hubHasDelta).toBe(true);
    // Back to the reported value: the delta shrinks; then the last key removed with null: it is empty.
    const back = run(pending.state, setDesired({ level: 10 }));
    expect(desiredOf(back.effects)).toEqual([expect.objectContaining({ version: back.state.version, delta: { on: true } })]);
    const removed = run(back.state, setDesired({ on: null }));
    expect(desiredOf(removed.effects)).toEqual([
      { type: 'hub.desired', homeId: 'h1', hubId: 'hub1', deviceId: 'lamp', version: removed.state.version, delta: {} },
    ]);
    expect(removed.state.hubHasDelta).toBeUndefined();
    // Told once: a reconnect now has nothing to send.
    expect(desiredOf(run(run(removed.state, offline).state, online).effects)).toEqual([]);
  });

  it('on connect, sends an empty delta once to a hub that was told a target which was taken back while it was away', () => {
    let s = run(connected(), setDesired({ on: true })).state;
    s = run(s, offline).state;
    s = run(s, setDesired({ on: null })).state; // nothing can be sent now
    const back = run(s, online);
    expect(desiredOf(back.effects)).toEqual([expect.objectContaining({ version: s.version, delta: {} })]);
    expect(back.journal).toBe(true); // the hub holds no target now: recorded
    expect(back.state.hubHasDelta).toBeUndefined();
    expect(desiredOf(run(run(back.state, offline).state, online).effects)).toEqual([]);
  });

  it('sends a non-empty delta once per connect of the hub, after the commands it re-sends', () => {
    let s = run(connected(), offline).state;
    s = run(s, setDesired({ on: true, level: 50 })).state;
    s = run(s, {
      type: 'command.issue',
      commandId: 'lamp~c1',
      name: 'blink',
      params: {},
      ttlMs: 60_000,
      depth: 0,
      source: { kind: 'app' },
    }).state;
    const back = run(s, online);
    expect(back.effects?.filter((e) => e.type === 'hub.command' || e.type === 'hub.desired').map((e) => e.type)).toEqual([
      'hub.command',
      'hub.desired',
    ]);
    expect(desiredOf(back.effects)).toEqual([expect.objectContaining({ version: s.version, delta: { on: true, level: 50 } })]);
    // Each hello tells the device once: a new stream (even one superseding a stream never seen to
    // close) gets the delta again, once.
    const again = run(back.state, online);
    expect(desiredOf(again.effects)).toHaveLength(1);
    // Going offline, and a connection change of a hub the device left, send nothing.
    expect(desiredOf(run(back.state, offline).effects)).toEqual([]);
    expect(desiredOf(run(back.state, { type: 'hub.connection', online: true, hubId: 'hub2' }).effects)).toEqual([]);
  });

  it('clears the delta once the hub reports matching values: nothing more is sent, and desired keeps the target', () => {
    let s = run(connected(), setDesired({ on: true, level: 50 })).state;
    const partly = run(s, report({ on: true }));
    expect(desiredOf(partly.effects)).toEqual([]); // reports never send desired
    expect(desiredOf(run(partly.state, online).effects)).toEqual([expect.objectContaining({ delta: { level: 50 } })]);
    s = run(partly.state, report({ level: 50 })).state;
    expect(computeDelta(s.reported, s.desired)).toEqual({});
    expect(desiredOf(run(run(s, offline).state, online).effects)).toEqual([]);
    expect(s.desired).toEqual({ on: true, level: 50 });
    // The device drifting away from the target makes the delta non-empty again: the next connect re-sends it.
    s = run(s, report({ level: 20 })).state;
    expect(desiredOf(run(s, online).effects)).toEqual([expect.objectContaining({ delta: { level: 50 } })]);
  });

  it('with random changes, reports and reconnects (fixed seeds): every delta sent is the current one, sent exactly when due, and a hub that applies them converges', () => {
    const keys = ['on', 'level', 'mode'];
    const value = (rand: () => number): Value => [true, false, 0, 50, 'eco', 'warm'][randomInt(rand, 6)]!;
    for (let trial = 0; trial < 200; trial++) {
      const rand = mulberry32(0xde51 + trial);
      const ctx = `trial ${trial} (seed ${0xde51 + trial})`;
      let s = connected();
      /** What the hub was last told (it applies deltas and reports them back), and whether it still heads for a target. */
      let told: Record<string, Value> | undefined;
      let heading = false;
      for (let i = 0; i < 40; i++) {
        const pick = randomInt(rand, 10);
        let msg: DeviceMsg;
        if (pick < 4) msg = setDesired({ [keys[randomInt(rand, 3)]!]: rand() < 0.2 ? null : value(rand) });
        else if (pick < 6) msg = report({ [keys[randomInt(rand, 3)]!]: value(rand) });
        else if (pick < 8 && told !== undefined && Object.keys(told).length > 0 && s.hubOnline) msg = report(told);
        else msg = rand() < 0.5 ? online : offline;
        const before = s;
        const step = run(s, msg);
        s = step.state;
        const sent = desiredOf(step.effects);
        const delta = computeDelta(s.reported, s.desired);
        const deltaBefore = computeDelta(before.reported, before.desired);
        const deltaChanged = !isDeepStrictEqual(deltaBefore, delta);
        // A report that meets the whole delta ends the hub's target.
        if (msg.type === 'report' && Object.keys(deltaBefore).length > 0 && Object.keys(delta).length === 0) heading = false;
        const connect = msg.type === 'hub.connection' && msg.online;
        const due =
          s.hubOnline && ((connect && (Object.keys(delta).length > 0 || heading)) || (msg.type === 'shadow.setDesired' && deltaChanged));
        expect(sent, `${ctx} step ${i} ${JSON.stringify(msg)}`).toEqual(
          due ? [{ type: 'hub.desired', homeId: 'h1', hubId: 'hub1', deviceId: 'lamp', version: s.version, delta }] : [],
        );
        if (sent.length > 0) {
          told = { ...sent[0]!.delta };
          heading = Object.keys(told).length > 0;
        }
        expect(s.hubHasDelta === true, `${ctx} step ${i}`).toBe(heading);
      }
      // The hub applies what it was told last and reports it: the delta clears, a reconnect sends nothing.
      s = run(s, online).state;
      const last = computeDelta(s.reported, s.desired);
      if (Object.keys(last).length > 0) s = run(s, report(last)).state;
      expect(desiredOf(run(run(s, offline).state, online).effects), ctx).toEqual([]);
    }
  });
});
