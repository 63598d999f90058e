import { describe, expect, it } from 'vitest';
import { checkConditions, matchTrigger, type ConditionResult, type HomeView } from '../../../actors/rules/rule-evaluator.ts';
import type { CompareOp, Condition, Trigger } from '../../../actors/rules/rule-types.ts';
import type { DeviceChanged, Value } from '../../../actors/types.ts';
import { mulberry32, pick } from '../../support/prng.ts';

const NOW = Date.parse('2024-01-15T22:30:00Z'); // 23:30 in Berlin, 17:30 in New York

function home(over: Partial<HomeView> = {}): HomeView {
  return {
    timezone: 'Europe/Berlin',
    values: {
      motion1: { motion: false, illuminance: 30 },
      climate1: { temperature: 21.5, humidity: 40 },
      ac1: { on: false, mode: 'cool' },
    },
    ...over,
  };
}

function change(over: Partial<DeviceChanged> = {}): DeviceChanged {
  return {
    type: 'device.changed',
    deviceId: 'motion1',
    deviceType: 'motion_sensor',
    changed: { motion: true },
    attributes: { motion: true, illuminance: 30 },
    depth: 0,
    tsMs: NOW,
    ...over,
  };
}

const motionTrigger: Trigger = { type: 'attribute', device: 'motion1', attribute: 'motion' };
/** The verdict on one condition against the default home and change, as a change-triggered rule sees it. */
const check = (c: Condition, ch: DeviceChanged = change(), h: HomeView = home()): ConditionResult => checkConditions(h, [c], NOW, ch)[0]!;
const attr = (device: string, attribute: string, op: CompareOp, value: Value): Condition => ({
  type: 'attribute',
  device,
  attribute,
  op,
  value,
});

describe('matchTrigger: triggers', () => {
  it('an attribute trigger without `to` fires on any change of the attribute', () => {
    expect(matchTrigger([motionTrigger], change())).toEqual({ type: 'attribute', device: 'motion1', attribute: 'motion', value: true });
    expect(matchTrigger([motionTrigger], change({ changed: { motion: false } }))).toBeDefined();
  });

  it('an attribute trigger does not fire when the attribute did not change in this report', () => {
    expect(matchTrigger([motionTrigger], change({ changed: { illuminance: 31 } }))).toBeUndefined();
    expect(matchTrigger([motionTrigger], change({ deviceId: 'motion2' }))).toBeUndefined();
  });

  it('an attribute trigger with `to` fires only when the new value equals it', () => {
    const h: Trigger[] = [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }];
    expect(matchTrigger(h, change({ changed: { motion: true } }))).toBeDefined();
    expect(matchTrigger(h, change({ changed: { motion: false } }))).toBeUndefined();
    const t: Trigger[] = [{ type: 'attribute', device: 'ac1', attribute: 'mode', to: 'cool' }];
    expect(matchTrigger(t, change({ deviceId: 'ac1', changed: { mode: 'cool' }, attributes: { mode: 'cool' } }))).toBeDefined();
    expect(matchTrigger(t, change({ deviceId: 'ac1', changed: { mode: 'heat' }, attributes: { mode: 'heat' } }))).toBeUndefined();
  });

  it('an event trigger fires on the named event of the device only', () => {
    const h: Trigger[] = [{ type: 'event', device: 'button1', event: 'double' }];
    const press = (event?: string, deviceId = 'button1') =>
      change({ deviceId, changed: {}, attributes: { battery: 90 }, ...(event === undefined ? {} : { event }) });
    expect(matchTrigger(h, press('double'))).toEqual({ type: 'event', device: 'button1', event: 'double' });
    expect(matchTrigger(h, press('single'))).toBeUndefined();
    expect(matchTrigger(h, press())).toBeUndefined();
    expect(matchTrigger(h, press('double', 'button2'))).toBeUndefined();
  });

  it('reports the first of several triggers that matched', () => {
    const when: Trigger[] = [
      { type: 'event', device: 'motion1', event: 'motion_detected' },
      { type: 'attribute', device: 'motion1', attribute: 'illuminance' },
      { type: 'attribute', device: 'motion1', attribute: 'motion' },
    ];
    expect(matchTrigger(when, change({ changed: { motion: true, illuminance: 12 } }))).toEqual({
      type: 'attribute',
      device: 'motion1',
      attribute: 'illuminance',
      value: 12,
    });
  });

  it('ignores device ids that are Object.prototype keys', () => {
    expect(check(attr('constructor', 'name', '==', 'Object'))).toMatchObject({ saw: null, passed: false });
  });
});

describe('checkConditions: comparisons', () => {
  it.each<[CompareOp, Value, boolean]>([
    ['==', 21.5, true],
    ['==', 21, false],
    ['!=', 21, true],
    ['!=', 21.5, false],
    ['<', 22, true],
    ['<', 21.5, false],
    ['<', 20, false],
    ['<=', 21.5, true],
    ['<=', 22, true],
    ['<=', 21, false],
    ['>', 21, true],
    ['>', 21.5, false],
    ['>', 22, false],
    ['>=', 21.5, true],
    ['>=', 21, true],
    ['>=', 22, false],
  ])('number: temperature 21.5 %s %s is %s', (op, value, passed) => {
    expect(checkConditions(home(), [attr('climate1', 'temperature', op, value)], NOW, change())).toEqual([
      { condition: attr('climate1', 'temperature', op, value), saw: 21.5, passed },
    ]);
  });

  it.each<[CompareOp, Value, boolean]>([
    ['==', false, true],
    ['==', true, false],
    ['!=', true, true],
    ['!=', false, false],
    ['==', 0, false],
    ['==', 'false', false],
  ])('flag: on=false %s %j is %s (no coercion)', (op, value, passed) => {
    expect(check(attr('ac1', 'on', op, value))).toMatchObject({ saw: false, passed });
  });

  it.each<[CompareOp, Value, boolean]>([
    ['==', 'cool', true],
    ['==', 'Cool', false],
    ['!=', 'heat', true],
    ['!=', 'cool', false],
  ])('text: mode=cool %s %j is %s', (op, value, passed) => {
    expect(check(attr('ac1', 'mode', op, value))).toMatchObject({ saw: 'cool', passed });
  });

  it('an ordering comparison with a non-number reported value fails rather than coercing', () => {
    expect(check(attr('ac1', 'mode', '>', 0))).toMatchObject({ saw: 'cool', passed: false });
  });

  it('a device or attribute never reported fails every comparison and shows saw: null', () => {
    for (const op of ['==', '!=', '<', '>='] as const) {
      expect(check(attr('ghost', 'x', op, 1))).toMatchObject({ saw: null, passed: false });
      expect(check(attr('climate1', 'pressure', op, 1))).toMatchObject({ saw: null, passed: false });
    }
  });

  it("reads the changed device's values from the change, newer than the home view", () => {
    const c = check(attr('motion1', 'illuminance', '<', 50), change({ attributes: { motion: true, illuminance: 80 } }));
    expect(c).toMatchObject({ saw: 80, passed: false });
  });

  it("checks a time window in the home's time zone and shows the local time it saw", () => {
    const night: Condition = { type: 'time', after: '18:00', before: '06:00' };
    expect(check(night)).toEqual({ condition: night, saw: '23:30', passed: true });
    expect(check(night, change(), home({ timezone: 'America/New_York' }))).toEqual({ condition: night, saw: '17:30', passed: false });
  });

  it('checks every condition, so the log shows each one that failed', () => {
    const conditions = [attr('climate1', 'temperature', '>', 28), attr('ac1', 'on', '==', false), attr('motion1', 'illuminance', '<', 10)];
    expect(checkConditions(home(), conditions, NOW, change()).map((c) => c.passed)).toEqual([false, true, false]);
  });

  it('agrees with a reference comparison for random values and operators', () => {
    const rand = mulberry32(99);
    const values: Value[] = [-1, 0, 0.5, 1, 2, 28, true, false, '', 'a', 'cool'];
    const ops: CompareOp[] = ['==', '!=', '<', '<=', '>', '>='];
    const reference = (a: Value, op: CompareOp, b: Value): boolean => {
      if (op === '==') return a === b;
      if (op === '!=') return a !== b;
      if (typeof a !== 'number' || typeof b !== 'number') return false;
      return { '<': a < b, '<=': a <= b, '>': a > b, '>=': a >= b }[op];
    };
    for (let i = 0; i < 3000; i++) {
      const [seen, value, op] = [pick(rand, values), pick(rand, values), pick(rand, ops)];
      expect(check(attr('x', 'v', op, value), change(), home({ values: { x: { v: seen } } })).passed).toBe(reference(seen, op, value));
    }
  });
});

describe('checkConditions: and, or, not', () => {
  const hot = attr('climate1', 'temperature', '>', 28); // false: 21.5
  const off = attr('ac1', 'on', '==', false); // true
  const dark = attr('motion1', 'illuminance', '<', 50); // true: 30, read from the change

  it('and holds when every member holds, or when any does, not inverts; each member value is shown', () => {
    const cases: [Condition, boolean][] = [
      [{ type: 'and', conditions: [off, dark] }, true],
      [{ type: 'and', conditions: [off, hot] }, false],
      [{ type: 'or', conditions: [hot, dark] }, true],
      [{ type: 'or', conditions: [hot] }, false],
      [{ type: 'not', condition: hot }, true],
      [{ type: 'not', condition: { type: 'or', conditions: [hot, off] } }, false],
    ];
    for (const [condition, passed] of cases) {
      expect(check(condition)).toMatchObject({ condition, saw: null, passed });
    }
  });

  it('reports every member of a group, even after the verdict is known', () => {
    const group: Condition = { type: 'or', conditions: [off, hot, { type: 'not', condition: dark }] };
    expect(check(group)).toEqual({
      condition: group,
      saw: null,
      passed: true,
      results: [
        { condition: off, saw: false, passed: true },
        { condition: hot, saw: 21.5, passed: false },
        { condition: { type: 'not', condition: dark }, saw: null, passed: false, results: [{ condition: dark, saw: 30, passed: true }] },
      ],
    });
  });

  it('agrees with a reference on random nested conditions (fixed seed)', () => {
    const rand = mulberry32(1234);
    const leaves = [hot, off, dark, attr('nobody', 'x', '==', 1), { type: 'time', after: '22:00', before: '06:00' } as const];
    const build = (depth: number): Condition => {
      const r = rand();
      if (depth >= 4 || r < 0.4) return pick(rand, leaves);
      if (r < 0.55) return { type: 'not', condition: build(depth + 1) };
      const n = 1 + Math.floor(rand() * 4);
      return { type: r < 0.8 ? 'and' : 'or', conditions: Array.from({ length: n }, () => build(depth + 1)) };
    };
    const truth = new Map<Condition, boolean>([
      [hot, false],
      [off, true],
      [dark, true],
      [leaves[3]!, false],
      [leaves[4]!, true],
    ]);
    const reference = (c: Condition): boolean => {
      if (c.type === 'not') return !reference(c.condition);
      if (c.type === 'and') return c.conditions.every(reference);
      if (c.type === 'or') return c.conditions.some(reference);
      return truth.get(c)!;
    };
    const consistent = (r: ConditionResult): boolean => r.results === undefined || r.results.every(consistent);
    for (let i = 0; i < 500; i++) {
      const c = build(1);
      const result = check(c);
      expect(result.passed).toBe(reference(c));
      expect(consistent(result)).toBe(true);
    }
  });
});

describe('checkConditions', () => {
  const dark = attr('motion1', 'illuminance', '<', 50);

  it('reads every value from the home without a change, and the changed device from the change with one', () => {
    const h = home({ values: { motion1: { illuminance: 80 } } });
    expect(checkConditions(h, [dark], NOW)).toEqual([{ condition: dark, saw: 80, passed: false }]);
    expect(checkConditions(h, [dark], NOW, change())).toEqual([{ condition: dark, saw: 30, passed: true }]);
  });

  it('checks time conditions at the given instant in the home zone', () => {
    const night: Condition = { type: 'time', after: '22:00', before: '06:00' };
    expect(checkConditions(home(), [night], NOW)).toEqual([{ condition: night, saw: '23:30', passed: true }]);
    expect(checkConditions(home(), [night], NOW + 7 * 3_600_000)).toEqual([{ condition: night, saw: '06:30', passed: false }]);
  });

  it('returns nothing for no conditions', () => {
    expect(checkConditions(home(), [], NOW)).toEqual([]);
  });
});

describe('matchTrigger', () => {
  it('copies an attribute trigger`s for, so the home holds the match instead of firing it', () => {
    const held: Trigger = { type: 'attribute', device: 'motion1', attribute: 'motion', to: false, for: '5m' };
    expect(matchTrigger([held], change({ changed: { motion: false } }))).toEqual({
      type: 'attribute',
      device: 'motion1',
      attribute: 'motion',
      value: false,
      for: '5m',
    });
    expect(matchTrigger([held], change({ changed: { motion: true } }))).toBeUndefined();
  });

  it('never matches a schedule trigger against a change, and tries the next trigger', () => {
    const triggers: Trigger[] = [
      { type: 'time', at: '06:30' },
      { type: 'cron', expression: '* * * * *' },
      { type: 'sun', event: 'sunset' },
      { type: 'event', device: 'motion1', event: 'tamper' },
    ];
    expect(matchTrigger(triggers, change())).toBeUndefined();
    expect(matchTrigger(triggers, change({ event: 'tamper' }))).toEqual({ type: 'event', device: 'motion1', event: 'tamper' });
  });

  it('schedule-only rules never match a change', () => {
    expect(matchTrigger([{ type: 'time', at: '06:30' }], change())).toBeUndefined();
  });
});
