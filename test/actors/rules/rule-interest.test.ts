import { describe, expect, it } from 'vitest';
import { interestOf, watchOf } from '../../../actors/rules/rule-interest.ts';
import type { Condition, Rule, Trigger } from '../../../actors/rules/rule-types.ts';

function rules(...list: Pick<Rule, 'when' | 'if'>[]): Record<string, Rule> {
  return Object.fromEntries(
    list.map((r, i) => [
      `r${i}`,
      { id: `r${i}`, name: `Rule ${i}`, enabled: true, mode: 'single', then: [{ type: 'notify', message: 'x' }], ...r },
    ]),
  );
}

const dark: Condition = { type: 'attribute', device: 'lux1', attribute: 'illuminance', op: '<', value: 50 };
const home: Condition = { type: 'attribute', device: 'phone1', attribute: 'home', op: '==', value: true };
const motion: Trigger = { type: 'attribute', device: 'motion1', attribute: 'motion', to: true };

describe('interestOf', () => {
  it('watches and keeps attributes read inside and/or/not like top-level ones', () => {
    const nested: Condition = {
      type: 'or',
      conditions: [
        { type: 'not', condition: dark },
        { type: 'and', conditions: [home] },
      ],
    };
    const i = interestOf(rules({ when: [motion], if: [nested] }));
    expect(watchOf(i, 'lux1')).toEqual({ attributes: ['illuminance'], events: [], values: [] });
    expect(watchOf(i, 'phone1')).toEqual({ attributes: ['home'], events: [], values: [] });
    expect(i.kept).toEqual(
      new Map([
        ['lux1', ['illuminance']],
        ['phone1', ['home']],
      ]),
    );
  });

  it('has schedule triggers read no device, and keeps what their conditions read', () => {
    const when: Trigger[] = [
      { type: 'time', at: '06:30' },
      { type: 'cron', expression: '*/5 * * * *' },
      { type: 'sun', event: 'sunset' },
    ];
    const i = interestOf(rules({ when, if: [dark] }));
    expect([...i.watch.keys()]).toEqual(['lux1']);
    expect(watchOf(i, 'lux1')).toEqual({ attributes: ['illuminance'], events: [], values: [] });
    expect(i.kept).toEqual(new Map([['lux1', ['illuminance']]]));
  });

  it('watches every change of an attribute held with for, to cancel the timer on a change away', () => {
    const i = interestOf(rules({ when: [{ type: 'attribute', device: 'door1', attribute: 'open', to: true, for: '2m' }], if: [] }));
    expect(watchOf(i, 'door1')).toEqual({ attributes: ['open'], events: [], values: [] });
    expect(i.kept).toEqual(new Map());
  });

  it('keeps the values a for rule reads of its own device: the timer fires without the change', () => {
    const ownLux: Condition = { ...dark, device: 'motion1' };
    const immediate = interestOf(rules({ when: [motion], if: [ownLux] }));
    expect(watchOf(immediate, 'motion1')).toEqual({ attributes: ['motion'], events: [], values: ['illuminance'] });
    expect(immediate.kept).toEqual(new Map());

    const held = interestOf(rules({ when: [{ ...motion, to: false, for: '5m' }], if: [ownLux] }));
    expect(watchOf(held, 'motion1')).toEqual({ attributes: ['illuminance', 'motion'], events: [], values: [] });
    expect(held.kept).toEqual(new Map([['motion1', ['illuminance']]]));
  });

  it('reads nothing for disabled rules', () => {
    const r = rules({ when: [{ type: 'time', at: '06:30' }], if: [dark] });
    const i = interestOf({ r0: { ...r.r0!, enabled: false } });
    expect(i.watch.size).toBe(0);
    expect(i.kept.size).toBe(0);
  });
});
