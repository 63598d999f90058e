import { describe, expect, it } from 'vitest';
import type { DeviceChanged, Value } from '../../actors/types.ts';
import { CONDITION_FALSE_LOG_SIZE, type DecisionEntry } from '../../actors/rules/decision-log.ts';
import { CATCH_UP_LIMIT } from '../../actors/rules/rule-timers.ts';
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

  it('runs once for the newest occurrence after an outage, saying how many it skipped, and sets the next after now', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * *' }] } });
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + M);
    const step = h.fire('at.wake-up.0', T0 + 3 * M + 30 * S);
    expect(step.reminders).toEqual([{ op: 'set', name: 'at.wake-up.0', at: T0 + 4 * M }]);
    h.advance(T0 + 3 * M + 30 * S);
    expect(h.issued).toHaveLength(1);
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', trigger: { type: 'cron', dueAt: T0 + 3 * M }, skipped: 2 }]);
    // On time again: no skipped field.
    h.advance(T0 + 4 * M);
    expect(h.decisions()[1]).toMatchObject({ outcome: 'fired', trigger: { dueAt: T0 + 4 * M } });
    expect(h.decisions()[1]).not.toHaveProperty('skipped');
  });

  it('runs the newest occurrence when only it is within misfireGrace', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * *' }], misfireGrace: '30s' } });
    h.fire('at.wake-up.0', T0 + 5 * M + 10 * S);
    expect(h.issued).toHaveLength(1);
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', trigger: { type: 'cron', dueAt: T0 + 5 * M }, skipped: 4 }]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 6 * M);
  });

  it('logs one missed, with how many came due, when even the newest is beyond misfireGrace, and sets the next after now', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * *' }], misfireGrace: '30s' } });
    h.fire('at.wake-up.0', T0 + 5 * M + 40 * S);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toEqual([
      expect.objectContaining({
        outcome: 'missed',
        lateMs: 40 * S,
        skipped: 5,
        trigger: { type: 'cron', dueAt: T0 + 5 * M },
        reason: expect.stringMatching(/^missed: 5 occurrences came due since 2024-03-04T10:01:00.000Z, the newest 40s /),
      }),
    ]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 6 * M);
    // A single occurrence missed says so plainly.
    h.fire('at.wake-up.0', T0 + 7 * M - S);
    expect(h.decisions()[1]).toMatchObject({ outcome: 'missed', lateMs: 59 * S, skipped: 1, trigger: { dueAt: T0 + 6 * M } });
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 7 * M);
  });

  it('does not replay an outage into storm control: a healthy rule stays enabled', () => {
    // Every 30 s, down 9 minutes (within the default grace of 10m): 18 occurrences, one run.
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '*/30 * * * * *' }] } });
    h.fire('at.wake-up.0', T0 + 9 * M);
    h.advance(T0 + 9 * M);
    expect(h.issued).toHaveLength(1);
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', trigger: { dueAt: T0 + 9 * M }, skipped: 17 }]);
    expect(h.state.ruleStatus['wake-up']?.suspended).toBeUndefined();
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 9 * M + 30 * S);
  });

  it(`stops walking after ${CATCH_UP_LIMIT} occurrences: missed once, and the next is after now`, () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: { ...wakeUp, when: [{ type: 'cron', expression: '* * * * * *' }], misfireGrace: '24h' } });
    h.fire('at.wake-up.0', T0 + 2 * 60 * M + 500);
    expect(h.issued).toEqual([]);
    expect(h.decisions()).toMatchObject([
      {
        outcome: 'missed',
        skipped: CATCH_UP_LIMIT + 1,
        reason: `missed: more than ${CATCH_UP_LIMIT} occurrences came due since 2024-03-04T10:00:01.000Z before it could run`,
      },
    ]);
    expect(h.pending.get('at.wake-up.0')?.at).toBe(T0 + 2 * 60 * M + S);
    h.expectReplayIdentical();
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
    // A minute apart: each condition_false is logged (see below for those in between).
    for (let i = 0; i < 3; i++) h.send({ ...change('b1', {}), event: 'single' }, T0 + i * M);
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

describe('home: editing a rule with timers', () => {
  const withFor = (extra: object = {}) => ({ ...doorOpen, when: [...doorOpen.when, { type: 'time', at: '07:00' }], ...extra });

  it('changes nothing when the same rule is saved again: the hold and the schedule keep their times', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: withFor() });
    h.send(change('door1', { contact: 'open' }));
    const pending = new Map(h.pending);
    const again = h.send({ type: 'rules.put', rule: withFor() }, T0 + M);
    expect(again).toMatchObject({ journal: false, reply: { ok: true, value: { created: false } } });
    expect(again.reminders).toBeUndefined();
    expect(h.pending).toEqual(pending);
    h.advance(T0 + 2 * M);
    expect(h.issued.map((c) => c.at)).toEqual([T0 + 2 * M]);
  });

  it('keeps a hold and a schedule whose trigger is unchanged through an edit of anything else', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: withFor() });
    h.send(change('door1', { contact: 'open' }));
    const edit = h.send({ type: 'rules.put', rule: withFor({ name: 'Door left open (renamed)', misfireGrace: '1h' }) }, T0 + M);
    expect(edit.journal).toBe(true);
    expect(edit.reminders).toBeUndefined();
    h.advance(T0 + 2 * M);
    expect(h.issued.map((c) => c.at)).toEqual([T0 + 2 * M]);
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', ruleName: 'Door left open (renamed)' }]);
    h.expectReplayIdentical();
  });

  it('cancels a hold whose trigger changed, logging it cancelled, and sets a changed schedule anew', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: withFor() });
    h.send(change('door1', { contact: 'open' }, { contact: 'open' }, 1));
    const changed = withFor({
      when: [
        { type: 'attribute', device: 'door1', attribute: 'contact', to: 'open', for: '5m' },
        { type: 'time', at: '08:00' },
      ],
    });
    const edit = h.send({ type: 'rules.put', rule: changed }, T0 + M);
    expect(edit.reminders).toEqual([
      { op: 'cancel', name: 'for.door-open.0' },
      { op: 'cancel', name: 'at.door-open.1' },
      { op: 'set', name: 'at.door-open.1', at: Date.parse('2024-03-05T08:00:00Z') },
    ]);
    expect(h.decisions()).toEqual([
      expect.objectContaining({
        outcome: 'cancelled',
        at: T0 + M,
        ruleName: 'Door left open',
        depth: 1,
        trigger: { type: 'attribute', device: 'door1', attribute: 'contact', value: 'open', for: '2m' },
        reason: 'rule edited: the hold of when[0] (contact of door1 for 2m) is cancelled',
      }),
    ]);
    h.advance(T0 + 10 * M);
    expect(h.issued).toEqual([]);
    h.expectReplayIdentical();
  });

  it('logs a hold cancelled when the rule is disabled or deleted', () => {
    for (const [edit, why] of [
      [{ type: 'rules.put', rule: withFor({ enabled: false }) }, 'rule disabled'],
      [{ type: 'rules.delete', ruleId: 'door-open' }, 'rule deleted'],
    ] as const) {
      const h = new HomeSim(T0);
      h.ok('rules.put', { type: 'rules.put', rule: withFor() });
      h.send(change('door1', { contact: 'open' }));
      const step = h.send(edit, T0 + M);
      expect(step.reminders).toEqual([
        { op: 'cancel', name: 'for.door-open.0' },
        { op: 'cancel', name: 'at.door-open.1' },
      ]);
      expect(h.decisions()).toMatchObject([
        { outcome: 'cancelled', reason: `${why}: the hold of when[0] (contact of door1 for 2m) is cancelled` },
      ]);
      expect(h.ok('decisions.list', { type: 'decisions.list', outcome: 'cancelled' })).toHaveLength(1);
    }
  });

  it('replays a put of the same rule journaled by an older release as it was: the storm status is reset, the timers kept', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', {
      type: 'rules.put',
      rule: withFor({ when: [{ type: 'event', device: 'b1', event: 'single' }, withFor().when[1]] }),
    });
    h.send({ ...change('b1', {}), event: 'single' }, T0 + S);
    expect(h.state.ruleStatus['door-open']?.recentFirings).toEqual([T0 + S]);
    const rule = h.state.rules['door-open'];
    const live = h.send({ type: 'rules.put', rule }, T0 + 2 * S);
    expect(live.journal).toBe(false);
    const ctx = { id: 'home:h1', now: T0 + 2 * S, replaying: true, reminders: new Map(h.pending) };
    const replayed = h.behavior.receive(h.state, { type: 'rules.put', rule }, ctx);
    expect(replayed.state.ruleStatus['door-open']).toEqual({ recentFirings: [] });
    expect(replayed.state.rules).toEqual(h.state.rules);
    expect(replayed.reminders).toBeUndefined();
  });

  it('accepts on replay a journaled rule whose schedule this release finds never firing', () => {
    // suncalc finds no sunrise at the pole: refused live, but a put journaled by a release (of
    // suncalc, croner or ICU) that found one must replay as it was accepted.
    const never = { ...wakeUp, when: [{ type: 'sun', event: 'sunrise' }] };
    const h = new HomeSim(T0);
    h.ok('home.upsert', { type: 'home.upsert', name: 'Flat', location: { latitude: 90, longitude: 0 } });
    expect(errorOf(h.send({ type: 'rules.put', rule: never }))).toMatchObject({ code: 'invalid_argument', field: 'when[0]' });
    const replayed = h.behavior.receive(
      h.state,
      { type: 'rules.put', rule: never },
      { id: 'home:h1', now: T0, replaying: true, reminders: new Map() },
    );
    expect(replayed.reply).toMatchObject({ ok: true, value: { created: true } });
    expect(replayed.state.rules['wake-up']).toMatchObject({ when: never.when });
    expect(replayed.reminders).toBeUndefined();
  });
});

describe('home: condition_false decisions', () => {
  const dark = {
    id: 'dark',
    name: 'Dark hall',
    when: [{ type: 'attribute', device: 'pir1', attribute: 'motion' }],
    if: [
      { device: 'lux1', attribute: 'lux', op: '<', value: 10 },
      {
        type: 'or',
        conditions: [
          { device: 'lux1', attribute: 'lux', op: '<', value: 5 },
          { device: 'sw1', attribute: 'on', op: '==', value: true },
        ],
      },
    ],
    then: [{ type: 'command', device: 'lamp1', name: 'on', params: {} }],
  };
  const motion = (i: number) => change('pir1', { motion: i % 2 === 0 });

  it('logs the same verdicts again only after a minute: in between a report writes and publishes nothing', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: dark });
    h.send(change('lux1', { lux: 500 }));
    const first = h.send(motion(0), T0 + S);
    expect(first.journal).toBe(true);
    expect(first.reply).toMatchObject({ ok: true, value: { decisions: 1 } });
    const state = h.state;
    for (let i = 1; i < 30; i++) {
      const step = h.send(motion(i), T0 + S + i * 2 * S);
      expect(step.journal).toBe(false);
      expect(step.reply).toMatchObject({ ok: true, value: { decisions: 0 } });
      expect((step.effects ?? []).filter((e) => e.type === 'publish')).toEqual([]);
      expect(h.state).toBe(state);
    }
    expect(h.send(motion(30), T0 + S + M).journal).toBe(true);
    expect(h.decisions().map((d) => [d.outcome, d.at])).toEqual([
      ['condition_false', T0 + S],
      ['condition_false', T0 + S + M],
    ]);
    h.expectReplayIdentical();
  });

  it('logs at once when a verdict changes, nested ones included, or after another decision of the rule', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: dark });
    h.send(change('lux1', { lux: 500 }));
    h.send(motion(0), T0 + S);
    // lux 7: the first condition holds, the `or` does not.
    h.send(change('lux1', { lux: 7 }), T0 + 2 * S);
    h.send(motion(1), T0 + 3 * S);
    // sw1 on: the `or` holds through its second member: the rule fires.
    h.send(change('sw1', { on: true }), T0 + 4 * S);
    h.send(motion(2), T0 + 5 * S);
    // Back to the first verdicts, within the minute: logged, since the rule fired in between.
    h.send(change('sw1', { on: false }), T0 + 6 * S);
    h.send(change('lux1', { lux: 500 }), T0 + 7 * S);
    h.send(motion(3), T0 + 8 * S);
    h.send(motion(4), T0 + 9 * S);
    expect(h.decisions().map((d) => [d.outcome, d.at])).toEqual([
      ['condition_false', T0 + S],
      ['condition_false', T0 + 3 * S],
      ['fired', T0 + 5 * S],
      ['condition_false', T0 + 8 * S],
    ]);
    expect(h.decisions()[1]?.conditions).toMatchObject([
      { saw: 7, passed: true },
      {
        passed: false,
        results: [
          { saw: 7, passed: false },
          { saw: null, passed: false },
        ],
      },
    ]);
    h.expectReplayIdentical();
  });

  it('keeps condition_false entries from evicting the others, served merged by seq', () => {
    const h = new HomeSim(T0, { decisionLogSize: 5 });
    h.ok('rules.put', { type: 'rules.put', rule: dark });
    h.ok('rules.put', { type: 'rules.put', rule: { ...dark, id: 'always', if: [] } });
    h.send(change('lux1', { lux: 500 }));
    // Each report: `dark` condition_false (a minute apart, so each is logged), `always` fired.
    for (let i = 0; i < CONDITION_FALSE_LOG_SIZE + 20; i++) h.send(motion(i), T0 + (i + 1) * M);
    const all = h.decisions();
    expect(all.filter((d) => d.outcome === 'fired')).toHaveLength(5);
    expect(all.filter((d) => d.outcome === 'condition_false')).toHaveLength(CONDITION_FALSE_LOG_SIZE);
    const seqs = all.map((d) => d.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const listed = h.ok('decisions.list', { type: 'decisions.list', limit: 5 });
    expect(listed.map((d) => d.outcome)).toEqual(['fired', 'condition_false', 'fired', 'condition_false', 'fired']);
    expect(h.ok('decisions.list', { type: 'decisions.list', rule: 'always', limit: 5 })).toHaveLength(5);
  });

  it('loads a decision log written before the kinds were apart, and trims it by kind on the next entry', () => {
    const h = new HomeSim(T0);
    h.ok('rules.put', { type: 'rules.put', rule: dark });
    h.send(change('lux1', { lux: 500 }));
    const old = (i: number): DecisionEntry => ({
      seq: i + 1,
      at: T0,
      ruleId: 'dark',
      ruleName: 'Dark hall',
      trigger: { type: 'attribute', device: 'pir1', attribute: 'motion', value: true },
      depth: 0,
      conditions: [],
      outcome: i % 4 === 0 ? 'fired' : 'condition_false',
      actions: [],
    });
    h.state = { ...h.state, decisions: { entries: Array.from({ length: 200 }, (_, i) => old(i)), nextSeq: 201 } };
    const listed = h.ok('decisions.list', { type: 'decisions.list', limit: 200 });
    expect(listed).toHaveLength(200);
    h.send(motion(0), T0 + M);
    expect(h.decisions().filter((d) => d.outcome === 'fired')).toHaveLength(50);
    expect(h.decisions().filter((d) => d.outcome === 'condition_false')).toHaveLength(CONDITION_FALSE_LOG_SIZE);
    expect(h.decisions().at(-1)).toMatchObject({ seq: 201, outcome: 'condition_false' });
  });
});
