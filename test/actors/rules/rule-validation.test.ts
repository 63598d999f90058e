import { describe, expect, it } from 'vitest';
import { validateLocation, validateRule, validateScene, validateTimeZone } from '../../../actors/rules/rule-validation.ts';
import { mulberry32, pick, randomInt } from '../../support/prng.ts';

const base = () => ({
  id: 'motion-light',
  name: 'Hall light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [
    { device: 'motion1', attribute: 'illuminance', op: '<', value: 50 },
    { type: 'time', after: '18:00', before: '06:00' },
  ],
  then: [
    { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } },
    { type: 'notify', message: 'Hall light on' },
  ],
});

type Body = Record<string, unknown>;

function expectInvalid(input: unknown, field: string, reason: string): void {
  const r = validateRule(input);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.error.code).toBe('invalid_argument');
  expect(r.error.field).toBe(field);
  expect(r.error.message).toContain(field);
  expect(r.error.message).toContain(reason);
}

const many = (n: number, make: (i: number) => unknown) => Array.from({ length: n }, (_, i) => make(i));

describe('validateRule', () => {
  it('accepts a rule and fills the defaults: enabled, single mode, typed attribute conditions', () => {
    const r = validateRule(base());
    expect(r).toEqual({
      ok: true,
      value: {
        ...base(),
        enabled: true,
        mode: 'single',
        if: [
          { type: 'attribute', device: 'motion1', attribute: 'illuminance', op: '<', value: 50 },
          { type: 'time', after: '18:00', before: '06:00' },
        ],
      },
    });
  });

  it('defaults a missing if to no conditions and keeps explicit enabled and mode', () => {
    const { if: _omit, ...rest } = base();
    const r = validateRule({ ...rest, enabled: false, mode: 'queued' });
    expect(r.ok && r.value).toMatchObject({ if: [], enabled: false, mode: 'queued' });
  });

  it('accepts every comparison on numbers and == / != on flags and text', () => {
    for (const op of ['==', '!=', '<', '<=', '>', '>=']) {
      expect(validateRule({ ...base(), if: [{ device: 'c', attribute: 'temperature', op, value: 28.5 }] }).ok).toBe(true);
    }
    for (const op of ['==', '!=']) {
      for (const value of [true, false, 'cool', '']) {
        expect(validateRule({ ...base(), if: [{ device: 'ac', attribute: 'mode', op, value }] }).ok).toBe(true);
      }
    }
  });

  it('rejects an ordering operator on a flag or text, naming the value', () => {
    for (const op of ['<', '<=', '>', '>=']) {
      expectInvalid({ ...base(), if: [{ device: 'ac', attribute: 'mode', op, value: 'cool' }] }, 'if[0].value', 'compares numbers only');
      expectInvalid({ ...base(), if: [{ device: 'm', attribute: 'motion', op, value: true }] }, 'if[0].value', 'must be a number');
    }
  });

  it.each<[string, (b: Body) => unknown, string, string]>([
    ['not an object', () => [1, 2], 'rule', 'must be an object'],
    ['an unknown field', (b) => ({ ...b, iff: [] }), 'iff', 'is not a known field'],
    ['a bad id', (b) => ({ ...b, id: 'hall light!' }), 'id', 'letters, digits'],
    ['an id over 64 characters', (b) => ({ ...b, id: 'a'.repeat(65) }), 'id', '1 to 64'],
    ['a missing name', (b) => ({ ...b, name: undefined }), 'name', 'non-empty string'],
    ['a name over 128 characters', (b) => ({ ...b, name: 'n'.repeat(129) }), 'name', 'at most 128'],
    ['a non-boolean enabled', (b) => ({ ...b, enabled: 'yes' }), 'enabled', 'true or false'],
    ['an unknown mode', (b) => ({ ...b, mode: 'burst' }), 'mode', 'must be one of single, restart, queued, parallel'],
    ['an empty when', (b) => ({ ...b, when: [] }), 'when', 'at least 1'],
    ['a missing then', (b) => ({ ...b, then: undefined }), 'then', 'must be an array'],
    ['an empty then', (b) => ({ ...b, then: [] }), 'then', 'at least 1'],
    ['17 triggers', (b) => ({ ...b, when: many(17, () => ({ type: 'event', device: 'b', event: 'single' })) }), 'when', 'at most 16'],
    ['17 conditions', (b) => ({ ...b, if: many(17, () => ({ type: 'time', after: '01:00', before: '02:00' })) }), 'if', 'at most 16'],
    ['17 actions', (b) => ({ ...b, then: many(17, () => ({ type: 'notify', message: 'x' })) }), 'then', 'at most 16'],
    ['a trigger without attribute', (b) => ({ ...b, when: [{ type: 'attribute', device: 'm' }] }), 'when[0].attribute', 'string'],
    ['an unknown trigger type', (b) => ({ ...b, when: [{ type: 'sunrise' }] }), 'when[0].type', 'must be one of attribute, event'],
    ['an event trigger without event', (b) => ({ ...b, when: [{ type: 'event', device: 'b' }] }), 'when[0].event', 'string'],
    [
      'a trigger `to` that is an object',
      (b) => ({ ...b, when: [{ type: 'attribute', device: 'm', attribute: 'x', to: {} }] }),
      'when[0].to',
      'number, boolean or string',
    ],
    [
      'an unknown operator',
      (b) => ({ ...b, if: [{ device: 'm', attribute: 'x', op: '=~', value: 1 }] }),
      'if[0].op',
      'must be one of ==, !=, <, <=, >, >=',
    ],
    [
      'a condition without value',
      (b) => ({ ...b, if: [{ device: 'm', attribute: 'x', op: '==' }] }),
      'if[0].value',
      'number, boolean or string',
    ],
    ['a condition without type or device', (b) => ({ ...b, if: [{ after: '18:00' }] }), 'if[0].type', 'must be one of attribute, time'],
    ['an unknown condition type', (b) => ({ ...b, if: [{ type: 'weather' }] }), 'if[0].type', 'must be one of attribute, time'],
    ['a time 24:00', (b) => ({ ...b, if: [{ type: 'time', after: '24:00', before: '06:00' }] }), 'if[0].after', 'HH:MM'],
    ['a time 6:00', (b) => ({ ...b, if: [{ type: 'time', after: '18:00', before: '6:00' }] }), 'if[0].before', 'HH:MM'],
    ['a time 12:60', (b) => ({ ...b, if: [{ type: 'time', after: '12:60', before: '13:00' }] }), 'if[0].after', 'HH:MM'],
    [
      'an unknown action type',
      (b) => ({ ...b, then: [{ type: 'wait', ms: 10 }] }),
      'then[0].type',
      'must be one of command, scene, notify, delay',
    ],
    [
      'a bad param',
      (b) => ({
        ...b,
        then: [
          { type: 'notify', message: 'x' },
          { type: 'command', device: 'l', name: 'set', params: { brightness: [60] } },
        ],
      }),
      'then[1].params.brightness',
      'number, boolean or string',
    ],
    [
      'an infinite param',
      (b) => ({ ...b, then: [{ type: 'command', device: 'l', name: 'set', params: { brightness: Infinity } }] }),
      'then[0].params.brightness',
      'finite',
    ],
    ['a command without name', (b) => ({ ...b, then: [{ type: 'command', device: 'l' }] }), 'then[0].name', 'string'],
    [
      'a ttlMs below 1 s',
      (b) => ({ ...b, then: [{ type: 'command', device: 'l', name: 'set', ttlMs: 5 }] }),
      'then[0].ttlMs',
      'integer from 1000',
    ],
    ['a bad scene id', (b) => ({ ...b, then: [{ type: 'scene', scene: 'movie night' }] }), 'then[0].scene', 'letters, digits'],
    ['an empty notify message', (b) => ({ ...b, then: [{ type: 'notify', message: '' }] }), 'then[0].message', 'non-empty'],
    [
      'an unknown field in an action',
      (b) => ({ ...b, then: [{ type: 'notify', message: 'x', to: 'me' }] }),
      'then[0].to',
      'is not a known field',
    ],
  ])('rejects %s, naming the field', (_what, mutate, field, reason) => {
    expectInvalid(mutate(base()), field, reason);
  });

  it('ignores the read-only suspended field the rule list serves', () => {
    const r = validateRule({ ...base(), suspended: { reason: 'storm: fired 11 times in 10s', at: 1 } });
    expect(r.ok && 'suspended' in r.value).toBe(false);
  });

  it('never throws on random corruptions and always names a field when it rejects', () => {
    const rand = mulberry32(20240601);
    const junk: unknown[] = [null, 0, -1, 1e300, NaN, '', 'x', '25:00', '<', true, [], [{}], {}, { type: 'command' }, 'a'.repeat(2000)];
    const paths: (string | number)[][] = [
      ['id'],
      ['name'],
      ['mode'],
      ['enabled'],
      ['when'],
      ['when', 0],
      ['when', 0, 'type'],
      ['when', 0, 'to'],
      ['if'],
      ['if', 0, 'op'],
      ['if', 0, 'value'],
      ['if', 1, 'after'],
      ['then', 0, 'params'],
      ['then', 0, 'params', 'on'],
      ['then', 1],
      ['then', 1, 'type'],
      ['then', 0, 'ttlMs'],
    ];
    for (let i = 0; i < 2000; i++) {
      const body = base() as unknown as Record<string | number, unknown>;
      for (let k = 0; k <= randomInt(rand, 3); k++) {
        const path = pick(rand, paths);
        let target: Record<string | number, unknown> | undefined = body;
        for (const key of path.slice(0, -1)) target = target?.[key] as Record<string | number, unknown> | undefined;
        if (target && typeof target === 'object') target[path[path.length - 1]!] = pick(rand, junk);
      }
      const r = validateRule(body);
      if (!r.ok) {
        expect(r.error.code).toBe('invalid_argument');
        expect(r.error.field).toBeTruthy();
      }
    }
  });
});

describe('validateScene', () => {
  it('accepts command actions with or without type', () => {
    const r = validateScene({
      id: 'movie',
      name: 'Movie',
      actions: [
        { device: 'curtain1', name: 'close' },
        { type: 'command', device: 'light1', name: 'set', params: { brightness: 10 } },
      ],
    });
    expect(r).toEqual({
      ok: true,
      value: {
        id: 'movie',
        name: 'Movie',
        actions: [
          { type: 'command', device: 'curtain1', name: 'close' },
          { type: 'command', device: 'light1', name: 'set', params: { brightness: 10 } },
        ],
      },
    });
  });

  it.each<[unknown, string]>([
    [{ id: 'movie', name: 'Movie', actions: [] }, 'actions'],
    [{ id: 'movie', name: 'Movie', actions: [{ type: 'notify', message: 'x' }] }, 'actions[0].type'],
    [{ id: 'movie', name: 'Movie', actions: [{ name: 'close' }] }, 'actions[0].device'],
    [{ id: 'bad/id', name: 'Movie', actions: [{ device: 'c', name: 'close' }] }, 'id'],
    [{ id: 'movie', actions: [{ device: 'c', name: 'close' }] }, 'name'],
  ])('rejects %j at %s', (input, field) => {
    const r = validateScene(input);
    expect(r.ok ? undefined : r.error.field).toBe(field);
  });
});

describe('validateTimeZone', () => {
  it('accepts IANA zones', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'])
      expect(validateTimeZone(tz)).toEqual({ ok: true, value: tz });
  });

  it('rejects unknown zones and non-strings, naming the field', () => {
    for (const tz of ['Mars/Olympus_Mons', '', 42, null]) {
      const r = validateTimeZone(tz);
      expect(r.ok ? undefined : r.error.field).toBe('timezone');
    }
  });
});

describe('validateRule: timed rules', () => {
  const timed = (over: Body): Body => ({ ...base(), ...over });
  const ok = (input: Body) => {
    const r = validateRule(input);
    expect(r.ok ? undefined : r.error).toBeUndefined();
    return r.ok ? r.value : undefined;
  };

  it('accepts every new trigger and keeps it as written', () => {
    const when = [
      { type: 'attribute', device: 'door1', attribute: 'open', to: true, for: '2m' },
      { type: 'attribute', device: 'door1', attribute: 'open', for: '500ms' },
      { type: 'time', at: '06:30' },
      { type: 'time', at: '22:15:30', days: ['mon', 'fri'] },
      { type: 'cron', expression: '0 */5 * * * *' },
      { type: 'cron', expression: '30 6 * * 1-5' },
      { type: 'sun', event: 'sunset', offset: '-30m' },
      { type: 'sun', event: 'sunrise', offset: '+1h' },
      { type: 'sun', event: 'sunrise' },
    ];
    expect(ok(timed({ when }))?.when).toEqual(when);
  });

  it('accepts plain cron: numbers, ranges, lists, steps, *, month and day names (JUL and WED hold no L or W)', () => {
    const expressions = [
      '*/5 1-3,5 * * *',
      '0 0 * JAN,JUL *',
      '0 0 * * wed',
      '0 9 * * MON-FRI',
      '0 0 * * SAT-SUN',
      '0 0 * * 7',
      '0 0 29 2 1',
      '0 0 31 * *',
    ];
    const when = expressions.map((expression) => ({ type: 'cron', expression }));
    expect(ok(timed({ when }))?.when).toEqual(when);
  });

  it('accepts delays between actions, nested conditions and a misfireGrace', () => {
    const input = timed({
      mode: 'restart',
      misfireGrace: '1h',
      if: [
        {
          type: 'or',
          conditions: [
            { type: 'not', condition: { device: 'm', attribute: 'motion', op: '==', value: true } },
            { type: 'and', conditions: [{ type: 'time', after: '22:00', before: '06:00' }] },
          ],
        },
      ],
      then: [
        { type: 'delay', for: '5m' },
        { type: 'command', device: 'light1', name: 'off' },
        { type: 'delay', for: '1h30m' },
        { type: 'notify', message: 'still off' },
      ],
    });
    const rule = ok(input);
    expect(rule?.misfireGrace).toBe('1h');
    expect(rule?.then[0]).toEqual({ type: 'delay', for: '5m' });
    expect(rule?.if[0]).toMatchObject({ type: 'or', conditions: [{ type: 'not', condition: { type: 'attribute' } }, { type: 'and' }] });
  });

  it('leaves misfireGrace absent when not given, so the default applies', () => {
    expect(ok(base()) && 'misfireGrace' in ok(base())!).toBe(false);
  });

  it('accepts conditions nested four levels deep and refuses a fifth', () => {
    const leaf = { device: 'm', attribute: 'motion', op: '==', value: true };
    const nest = (levels: number): unknown => (levels === 1 ? leaf : { type: 'not', condition: nest(levels - 1) });
    ok(timed({ if: [nest(4)] }));
    expectInvalid(timed({ if: [nest(5)] }), 'if[0].condition.condition.condition', 'too deep');
    const groups = { type: 'and', conditions: [{ type: 'or', conditions: [{ type: 'and', conditions: [nest(2)] }] }] };
    expectInvalid(timed({ if: [groups] }), 'if[0].conditions[0].conditions[0].conditions[0]', 'at most 4 levels');
  });

  it.each<[string, (b: Body) => unknown, string, string]>([
    [
      'a for that is no duration',
      (b) => ({ ...b, when: [{ type: 'attribute', device: 'd', attribute: 'a', for: '5 min' }] }),
      'when[0].for',
      'must be a duration',
    ],
    [
      'a zero for',
      (b) => ({ ...b, when: [{ type: 'attribute', device: 'd', attribute: 'a', for: '0s' }] }),
      'when[0].for',
      'must be a duration',
    ],
    [
      'a numeric for',
      (b) => ({ ...b, when: [{ type: 'attribute', device: 'd', attribute: 'a', for: 300 }] }),
      'when[0].for',
      'must be a duration',
    ],
    [
      'a for over 7 days',
      (b) => ({ ...b, when: [{ type: 'attribute', device: 'd', attribute: 'a', for: '7d1ms' }] }),
      'when[0].for',
      'from 1ms to 7d',
    ],
    [
      'a for on an event trigger',
      (b) => ({ ...b, when: [{ type: 'event', device: 'd', event: 'e', for: '5m' }] }),
      'when[0].for',
      'is not a known field',
    ],
    ['a time without at', (b) => ({ ...b, when: [{ type: 'time' }] }), 'when[0].at', 'HH:MM or HH:MM:SS'],
    ['a time at 24:00', (b) => ({ ...b, when: [{ type: 'time', at: '24:00' }] }), 'when[0].at', 'HH:MM or HH:MM:SS'],
    ['a time with one-digit hours', (b) => ({ ...b, when: [{ type: 'time', at: '6:30' }] }), 'when[0].at', 'HH:MM or HH:MM:SS'],
    ['a time at second 60', (b) => ({ ...b, when: [{ type: 'time', at: '06:30:60' }] }), 'when[0].at', 'HH:MM or HH:MM:SS'],
    ['empty days', (b) => ({ ...b, when: [{ type: 'time', at: '06:30', days: [] }] }), 'when[0].days', 'non-empty array'],
    [
      'an unknown day',
      (b) => ({ ...b, when: [{ type: 'time', at: '06:30', days: ['mon', 'Tue'] }] }),
      'when[0].days[1]',
      'must be one of mon',
    ],
    [
      'a day twice',
      (b) => ({ ...b, when: [{ type: 'time', at: '06:30', days: ['sat', 'sun', 'sat'] }] }),
      'when[0].days[2]',
      'listed twice',
    ],
    ['a bad cron', (b) => ({ ...b, when: [{ type: 'cron', expression: 'every day' }] }), 'when[0].expression', 'cron expression'],
    [
      'a cron with a year',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 0 1 1 * 2030' }] }),
      'when[0].expression',
      '5 fields, or 6',
    ],
    ['a cron out of range', (b) => ({ ...b, when: [{ type: 'cron', expression: '61 * * * *' }] }), 'when[0].expression', 'cron expression'],
    [
      'a cron that never matches',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 30 2 *' }] }),
      'when[0].expression',
      'never matches',
    ],
    ['an empty cron', (b) => ({ ...b, when: [{ type: 'cron', expression: '' }] }), 'when[0].expression', 'non-empty'],
    [
      'a cron matching only 29 February',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 29 2 *' }] }),
      'when[0].expression',
      'matches only 29 February',
    ],
    [
      'a cron with + (day of month and day of week both)',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '* * 2 25-31 3 +0' }] }),
      'when[0].expression',
      'uses croner\'s "+"',
    ],
    [
      'a cron with # (nth weekday)',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '* 2 * 3 0#5' }] }),
      'when[0].expression',
      'uses croner\'s "#"',
    ],
    [
      'a cron with L in the day of the month',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 L * *' }] }),
      'when[0].expression',
      'uses croner\'s "L"',
    ],
    [
      'a cron with L in the day of the week',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 * * 5L' }] }),
      'when[0].expression',
      'uses croner\'s "L"',
    ],
    ['a cron with W', (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 15W * *' }] }), 'when[0].expression', 'uses croner\'s "W"'],
    ['a cron with ?', (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 ? * 1' }] }), 'when[0].expression', 'uses croner\'s "?"'],
    [
      'a cron nickname',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '@daily' }] }),
      'when[0].expression',
      'uses croner\'s "@" nicknames',
    ],
    [
      'a misspelt month name',
      (b) => ({ ...b, when: [{ type: 'cron', expression: '0 0 * JULY *' }] }),
      'when[0].expression',
      'cron expression of 5 fields',
    ],
    ['a sun event other than rise or set', (b) => ({ ...b, when: [{ type: 'sun', event: 'noon' }] }), 'when[0].event', 'sunrise, sunset'],
    [
      'a sun offset over 6 hours',
      (b) => ({ ...b, when: [{ type: 'sun', event: 'sunset', offset: '-6h1s' }] }),
      'when[0].offset',
      'from -6h to +6h',
    ],
    [
      'a sun offset that is no duration',
      (b) => ({ ...b, when: [{ type: 'sun', event: 'sunset', offset: '-30' }] }),
      'when[0].offset',
      'signed duration',
    ],
    ['an unknown trigger type', (b) => ({ ...b, when: [{ type: 'interval' }] }), 'when[0].type', 'attribute, event, time, cron, sun'],
    ['an empty group', (b) => ({ ...b, if: [{ type: 'and', conditions: [] }] }), 'if[0].conditions', 'at least 1'],
    [
      'a group of 17',
      (b) => ({ ...b, if: [{ type: 'or', conditions: many(17, () => ({ type: 'time', after: '01:00', before: '02:00' })) }] }),
      'if[0].conditions',
      'at most 16',
    ],
    [
      'a bad op inside a group',
      (b) => ({
        ...b,
        if: [
          {
            type: 'and',
            conditions: [
              { type: 'time', after: '01:00', before: '02:00' },
              { device: 'd', attribute: 'a', op: '=', value: 1 },
            ],
          },
        ],
      }),
      'if[0].conditions[1].op',
      'must be one of',
    ],
    ['a not without its condition', (b) => ({ ...b, if: [{ type: 'not' }] }), 'if[0].condition', 'must be an object'],
    ['a not with a list', (b) => ({ ...b, if: [{ type: 'not', conditions: [] }] }), 'if[0].conditions', 'is not a known field'],
    [
      'a delay without for',
      (b) => ({ ...b, then: [{ type: 'delay' }, { type: 'notify', message: 'x' }] }),
      'then[0].for',
      'must be a duration',
    ],
    [
      'a delay over 7 days',
      (b) => ({
        ...b,
        then: [
          { type: 'delay', for: '8d' },
          { type: 'notify', message: 'x' },
        ],
      }),
      'then[0].for',
      'from 1ms to 7d',
    ],
    [
      'a rule ending with a delay',
      (b) => ({
        ...b,
        then: [
          { type: 'notify', message: 'x' },
          { type: 'delay', for: '5m' },
        ],
      }),
      'then[1]',
      'cannot end with a delay',
    ],
    ['a rule that is only a delay', (b) => ({ ...b, then: [{ type: 'delay', for: '5m' }] }), 'then[0]', 'cannot end with a delay'],
    ['a misfireGrace of zero', (b) => ({ ...b, misfireGrace: '0s' }), 'misfireGrace', 'must be a duration'],
    ['a misfireGrace under a second', (b) => ({ ...b, misfireGrace: '999ms' }), 'misfireGrace', 'from 1s to 1d'],
    ['a misfireGrace over a day', (b) => ({ ...b, misfireGrace: '24h1s' }), 'misfireGrace', 'from 1s to 1d'],
    ['a numeric misfireGrace', (b) => ({ ...b, misfireGrace: 600 }), 'misfireGrace', 'must be a duration'],
  ])('rejects %s, naming the field', (_what, mutate, field, reason) => {
    expectInvalid(mutate(base()), field, reason);
  });

  it('accepts the bounds: for 7d, delay 1ms, misfireGrace 1s and 24h, sun offset ±6h', () => {
    ok(timed({ when: [{ type: 'attribute', device: 'd', attribute: 'a', for: '7d' }] }));
    ok(
      timed({
        then: [
          { type: 'delay', for: '1ms' },
          { type: 'notify', message: 'x' },
        ],
      }),
    );
    ok(timed({ misfireGrace: '1s' }));
    ok(timed({ misfireGrace: '24h' }));
    ok(
      timed({
        when: [
          { type: 'sun', event: 'sunrise', offset: '-6h' },
          { type: 'sun', event: 'sunset', offset: '+6h' },
        ],
      }),
    );
  });
});

describe('validateLocation', () => {
  it('accepts degrees in range', () => {
    expect(validateLocation({ latitude: 52.52, longitude: 13.405 })).toEqual({ ok: true, value: { latitude: 52.52, longitude: 13.405 } });
    expect(validateLocation({ latitude: -90, longitude: 180 }).ok).toBe(true);
  });

  it.each<[unknown, string]>([
    [null, 'location'],
    [[52, 13], 'location'],
    [{ latitude: 91, longitude: 0 }, 'location.latitude'],
    [{ latitude: '52', longitude: 0 }, 'location.latitude'],
    [{ latitude: Number.NaN, longitude: 0 }, 'location.latitude'],
    [{ latitude: 0, longitude: -180.5 }, 'location.longitude'],
    [{ latitude: 0 }, 'location.longitude'],
    [{ latitude: 0, longitude: 0, altitude: 3 }, 'location.altitude'],
  ])('rejects %j, naming %s', (input, field) => {
    const r = validateLocation(input);
    expect(r.ok ? undefined : r.error.field).toBe(field);
  });

  it('names the field it is given', () => {
    const r = validateLocation({ latitude: 100, longitude: 0 }, 'home.location');
    expect(r.ok ? undefined : r.error.field).toBe('home.location.latitude');
  });
});
