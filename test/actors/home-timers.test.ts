import { describe, expect, it } from 'vitest';
import type { DeviceChanged, Value } from '../../actors/types.ts';
import { HomeSim } from './home-reminder-sim.ts';

const T0 = Date.parse('2024-03-04T10:00:00Z'); // a Monday
const S = 1_000;
const M = 60 * S;

function change(deviceId: string, changed: Record<string, Value>, attributes: Record<string, Value> = changed, depth = 0): DeviceChanged {
  return { type: 'device.changed', deviceId, deviceType: 'sensor', changed, attributes, depth, tsMs: 0, filtered: true };
}

const doorOpen = {
  id: 'door-open',
  name: 'Door left open',
  when: [{ type: 'attribute', device: 'door1', attribute: 'contact', to: 'open', for: '2m' }],
  then: [{ type: 'command', device: 'siren1', name: 'beep', params: {} }],
};

function errorOf(step: { reply?: unknown }) {
  const reply = step.reply as { ok: boolean; error?: { code: string; field?: string } };
  expect(reply.ok).toBe(false);
  return reply.error!;
}

describe('home: attribute triggers with for', () => {
  it('fires once the value has held for the duration, not when it changes', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: doorOpen });
    const step = h.send(change('door1', { contact: 'open' }, { contact: 'open' }, 2));
    expect(step.journal).toBe(true);
    expect(step.reminders).toEqual([{ op: 'set', name: 'for.door-open.0', at: T0 + 2 * M, payload: { value: 'open', depth: 2 } }]);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toEqual([]);
    h.advance(T0 + 2 * M - 1);
    expect(h.issued).toEqual([]);
    h.advance(T0 + 2 * M);
    expect(h.issued).toEqual([{ at: T0 + 2 * M, device: 'device:h1:siren1', name: 'beep', commandId: 'siren1~r-door-open-1' }]);
    expect(h.decisions()).toMatchObject([
      {
        outcome: 'fired',
        at: T0 + 2 * M,
        depth: 2,
        trigger: { type: 'attribute', device: 'door1', attribute: 'contact', value: 'open', for: '2m' },
      },
    ]);
    expect(h.names()).toEqual([]);
  });

  it('is cancelled by a change to another value before it is due', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: doorOpen });
    h.send(change('door1', { contact: 'open' }));
    const closed = h.send(change('door1', { contact: 'closed' }), T0 + M);
    expect(closed.reminders).toEqual([{ op: 'cancel', name: 'for.door-open.0' }]);
    h.advance(T0 + 10 * M);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toEqual([]);
    // Opened again: the hold starts from that change.
    h.send(change('door1', { contact: 'open' }), T0 + 11 * M);
    h.advance(T0 + 13 * M);
    expect(h.issued.map((c) => c.at)).toEqual([T0 + 13 * M]);
  });

  it('keeps its time when the same value is re-reported, and restarts on a new value without `to`', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: doorOpen });
    h.send(change('door1', { contact: 'open' }));
    const again = h.send(change('door1', { contact: 'open' }), T0 + M);
    expect(again.reminders).toBeUndefined();
    expect(h.pending.get('for.door-open.0')?.at).toBe(T0 + 2 * M);
    const other = h.send(change('door1', { battery: 40 }), T0 + M);
    expect(other.reminders).toBeUndefined();

    const anyValue = { ...doorOpen, id: 'mode-held', when: [{ type: 'attribute', device: 'thermo1', attribute: 'mode', for: '5m' }] };
    h.ok('rules.put', { type: 'rules.put', rule: anyValue });
    h.send(change('thermo1', { mode: 'heat' }), T0);
    h.send(change('thermo1', { mode: 'cool' }), T0 + M);
    expect(h.pending.get('for.mode-held.0')).toEqual({ at: T0 + 6 * M, payload: { value: 'cool', depth: 0 }, setNo: expect.any(Number) });
    h.advance(T0 + 6 * M);
    expect(h.decisions().filter((d) => d.ruleId === 'mode-held')).toMatchObject([{ trigger: { value: 'cool' }, outcome: 'fired' }]);
  });

  it('checks conditions when it fires, and logs condition_false with what they saw', () => {
    const h = new HomeSim(T0);
    const rule = { ...doorOpen, if: [{ device: 'alarm1', attribute: 'armed', op: '==', value: true }] };
    h.ok('rules.put', { type: 'rules.put', rule });
    h.send({ type: 'device.values', deviceId: 'alarm1', attributes: { armed: true } });
    h.send(change('door1', { contact: 'open' }));
    h.send(change('alarm1', { armed: false }), T0 + M);
    h.advance(T0 + 2 * M);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toMatchObject([{ outcome: 'condition_false', conditions: [{ saw: false, passed: false }], actions: [] }]);
  });

  it('runs when it fires late within misfireGrace and is missed beyond it', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...doorOpen, misfireGrace: '1m' } });
    h.send(change('door1', { contact: 'open' }));
    h.fire('for.door-open.0', T0 + 3 * M);
    expect(h.issued).toHaveLength(1);
    h.send(change('door1', { contact: 'closed' }), T0 + 4 * M);
    h.send(change('door1', { contact: 'open' }), T0 + 5 * M);
    h.fire('for.door-open.0', T0 + 7 * M + M + 1);
    expect(h.issued).toHaveLength(1);
    expect(h.decisions().at(-1)).toMatchObject({ outcome: 'missed', lateMs: M + 1, actions: [] });
    expect(h.decisions().at(-1)?.reason).toBe("missed: due 1m1ms before it could run, more than the rule's misfireGrace of 1m");
  });

  it('does not start while its rule is suspended, and a disabled rule holds no timer', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...doorOpen, enabled: false } });
    expect(h.send(change('door1', { contact: 'open' })).reminders).toBeUndefined();
    h.ok('rules.put', { type: 'rules.put', rule: doorOpen });
    h.send(change('door1', { contact: 'open' }, { contact: 'open' }, 9), T0 + M);
    h.advance(T0 + 3 * M);
    // Depth 9 is past the storm limit: the firing suspends the rule instead of acting.
    expect(h.decisions().at(-1)).toMatchObject({ outcome: 'suspended' });
    h.send(change('door1', { contact: 'closed' }), T0 + 4 * M);
    expect(h.send(change('door1', { contact: 'open' }), T0 + 5 * M).reminders).toBeUndefined();
  });
});

const wakeUp = {
  id: 'wake-up',
  name: 'Wake up',
  when: [{ type: 'time', at: '07:00' }],
  then: [{ type: 'command', device: 'blind1', name: 'open', params: {} }],
};

describe('home: schedule triggers', () => {
  it('holds one reminder at the next time, fires, and sets the next from the time due', () => {
    const h = new HomeSim(T0);
    const put = h.send({ type: 'rules.put', rule: wakeUp });
    const first = Date.parse('2024-03-05T07:00:00Z');
    expect(put.reminders).toEqual([{ op: 'set', name: 'at.wake-up.0', at: first }]);
    h.fire('at.wake-up.0', first + 5 * M); // 5 minutes late, within the default grace of 10m
    expect(h.issued).toHaveLength(1);
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', trigger: { type: 'time', dueAt: first }, depth: 0 }]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(first + 24 * 60 * M);
  });

  it('catches up on a late cron occurrence within grace without skipping or repeating one', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * *' }] } });
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + M);
    h.fire('at.wake-up.0', T0 + 3 * M + 30 * S);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 2 * M);
    h.advance(T0 + 3 * M + 30 * S);
    expect(h.decisions().map((d) => (d.trigger as { dueAt: number }).dueAt)).toEqual([T0 + M, T0 + 2 * M, T0 + 3 * M]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 4 * M);
  });

  it('logs missed beyond misfireGrace and sets the next time after now', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * *' }], misfireGrace: '30s' } });
    h.fire('at.wake-up.0', T0 + 5 * M + 10 * S);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toMatchObject([{ outcome: 'missed', lateMs: 4 * M + 10 * S, trigger: { type: 'cron', dueAt: T0 + M } }]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 6 * M);
  });

  it('checks conditions at the time it fires', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, if: [{ device: 'presence1', attribute: 'home', op: '==', value: true }] } });
    h.advance(Date.parse('2024-03-05T07:00:00Z'));
    expect(h.decisions()).toMatchObject([{ outcome: 'condition_false', conditions: [{ saw: null, passed: false }] }]);
    expect(h.names()).toEqual(['at.wake-up.0']);
  });

  it('is cancelled when its rule is disabled or deleted, and set again when enabled', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: wakeUp });
    expect(h.send({ type: 'rules.put', rule: { ...wakeUp, enabled: false } }).reminders).toEqual([{ op: 'cancel', name: 'at.wake-up.0' }]);
    expect(h.names()).toEqual([]);
    h.ok('rules.put', { type: 'rules.put', rule: wakeUp });
    expect(h.names()).toEqual(['at.wake-up.0']);
    expect(h.send({ type: 'rules.delete', ruleId: 'wake-up' }).reminders).toEqual([{ op: 'cancel', name: 'at.wake-up.0' }]);
    expect(h.sets.every((s) => s.fired === 0)).toBe(true);
  });

  it("moves every schedule when the home's time zone changes", () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: wakeUp });
    h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' });
    expect(h.pending.get('at.wake-up.0')?.at).toBe(Date.parse('2024-03-05T06:00:00Z'));
    // Renaming alone moves nothing.
    expect(h.send({ type: 'home.upsert', name: 'Flat 2' }).reminders).toBeUndefined();
  });

  it('cancels every rule timer when the home is deleted', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: wakeUp });
    h.ok('rules.put', { type: 'rules.put', rule: doorOpen });
    h.send(change('door1', { contact: 'open' }));
    expect(h.names()).toEqual(['at.wake-up.0', 'for.door-open.0']);
    h.ok('home.delete', { type: 'home.delete' });
    expect(h.names()).toEqual([]);
  });
});

const dusk = {
  id: 'dusk',
  name: 'Lights at dusk',
  when: [
    { type: 'event', device: 'button1', event: 'single' },
    { type: 'sun', event: 'sunset', offset: '-30m' },
  ],
  then: [{ type: 'command', device: 'light1', name: 'on', params: {} }],
};
const BERLIN = { latitude: 52.52, longitude: 13.405 };

describe('home: location and sun triggers', () => {
  it('refuses a sun rule in a home without a location, naming the trigger', () => {
    const h = new HomeSim(T0);
    const step = h.send({ type: 'rules.put', rule: dusk });
    expect(errorOf(step)).toMatchObject({ code: 'invalid_argument', field: 'when[1]' });
    expect(step.reminders).toBeUndefined();
    expect(step.journal).toBe(false);
  });

  it('keeps the location when omitted, arms sun rules from it and moves them when it changes', () => {
    const h = new HomeSim(T0);
    const home = h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', location: BERLIN });
    expect(home.home.location).toEqual(BERLIN);
    expect(h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' }).home.location).toEqual(BERLIN);
    h.ok('rules.put', { type: 'rules.put', rule: dusk });
    const berlin = h.pending.get('at.dusk.1')!.at;
    // Sunset in Berlin on 4 March 2024 is about 17:55 UTC+1: 30 minutes before, about 16:25 UTC.
    expect(Math.abs(berlin - Date.parse('2024-03-04T16:25:00Z'))).toBeLessThan(10 * M);
    h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', location: { latitude: 40.71, longitude: -74.0 } });
    expect(h.pending.get('at.dusk.1')!.at).toBeGreaterThan(berlin + 5 * 60 * M);
  });

  it('refuses a bad location naming the field, and removing one a sun rule needs', () => {
    const h = new HomeSim(T0);
    expect(errorOf(h.send({ type: 'home.upsert', name: 'Flat', location: { latitude: 91, longitude: 0 } })).field).toBe(
      'location.latitude',
    );
    expect(errorOf(h.send({ type: 'home.upsert', name: 'Flat', location: 'here' })).field).toBe('location');
    h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', location: BERLIN });
    h.ok('rules.put', { type: 'rules.put', rule: dusk });
    expect(errorOf(h.send({ type: 'home.upsert', name: 'Flat', location: null }))).toMatchObject({ field: 'location' });
    h.ok('rules.delete', { type: 'rules.delete', ruleId: 'dusk' });
    const removed = h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', location: null });
    expect(removed.home.location).toBeUndefined();
    expect(h.state.location).toBeUndefined();
  });
});

describe('home: decision log filters', () => {
  it('filters by rule and outcome, newest first, and names a bad filter', () => {
    const h = new HomeSim(T0);
    const lit = {
      id: 'lit',
      name: 'Lit',
      when: [{ type: 'event', device: 'b1', event: 'single' }],
      then: [{ type: 'notify', message: 'x' }],
    };
    h.ok('rules.put', { type: 'rules.put', rule: lit });
    h.ok('rules.put', { type: 'rules.put', rule: { ...lit, id: 'dark', if: [{ device: 'lux1', attribute: 'lux', op: '<', value: 5 }] } });
    for (let i = 0; i < 3; i++) h.send({ ...change('b1', {}), event: 'single' }, T0 + i * S);
    const list = (msg: object) => h.ok('decisions.list', { type: 'decisions.list', ...msg });
    expect(list({}).map((d) => d.outcome)).toEqual(['condition_false', 'fired', 'condition_false', 'fired', 'condition_false', 'fired']);
    expect(list({ rule: 'dark' }).map((d) => d.seq)).toEqual([6, 4, 2]);
    expect(list({ outcome: 'fired', limit: 2 }).map((d) => d.seq)).toEqual([5, 3]);
    expect(list({ rule: 'dark', outcome: 'fired' })).toEqual([]);
    expect(list({ rule: 'gone' })).toEqual([]);
    expect(errorOf(h.send({ type: 'decisions.list', rule: 'a b' })).field).toBe('rule');
    expect(errorOf(h.send({ type: 'decisions.list', outcome: 'nope' })).field).toBe('outcome');
  });
});
