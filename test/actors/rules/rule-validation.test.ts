import { describe, expect, it } from 'vitest';
import { validateRule, validateScene, validateTimeZone } from '../../../actors/rules/rule-validation.ts';
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
      (b) => ({ ...b, then: [{ type: 'delay', ms: 10 }] }),
      'then[0].type',
      'must be one of command, scene, notify',
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
