/** The rule and scene request schemas: they take every body the home takes, and name every shape error at once. */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { validateRule, validateScene } from '../../../actors/rules/rule-validation.ts';
import { cronRule, farRule } from '../../../bench/scenarios/support/timer-rules.ts';
import {
  ruleExample,
  RuleInputSchema,
  RuleReplacementSchema,
  sceneExample,
  SceneInputSchema,
} from '../../../edge-api/http/schemas/automation-schemas.ts';
import { simRule } from '../../../tools/hub-sim/sim-home.ts';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

type Body = Record<string, unknown>;

/** The rule bodies of the README's curl examples (`PUT …/rules/{id}`), with their path id. */
function readmeRules(): Body[] {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const out: Body[] = [];
  for (const m of readme.matchAll(/\/rules\/([\w-]+)[^\n]*\\\n(?:[^\n]*\\\n)*?\s*-d '(\{[^']*\})'/g)) {
    out.push({ ...(JSON.parse(m[2] ?? '{}') as Body), id: m[1] });
  }
  return out;
}

const lightOn = { type: 'command', device: 'light1', name: 'set', params: { on: true } };

/** Rule bodies of the e2e and integration tests (test/e2e/*.e2e.test.ts, test/integration), as they write them. */
const testRules: Body[] = [
  {
    id: 'hall-light',
    name: 'Hall light on motion when dark',
    when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
    if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
    then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
  },
  {
    id: 'chatty',
    name: 'Chatty',
    when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
    then: [{ type: 'notify', message: 'motion' }],
  },
  {
    id: 'motion-held',
    name: 'Held',
    when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true, for: '2s' }],
    then: [lightOn],
  },
  { id: 'evening-light', name: 'At a set time', when: [{ type: 'time', at: '18:30:05' }], then: [lightOn] },
  {
    id: 'hall-light',
    name: 'Hall light',
    when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
    if: [],
    then: [lightOn],
  },
];

/** Bodies the home takes in forms a strict reading might miss: omitted or null defaults, a served rule posted back. */
const lenientRules: Body[] = [
  { ...ruleExample, mode: null, if: null },
  { ...ruleExample, if: [{ type: null, device: 'lux1', attribute: 'lux', op: '<', value: 20 }] },
  { ...ruleExample, enabled: false, suspended: { reason: 'served', at: 1 } },
  {
    id: 'deep',
    name: 'Nested to the limit',
    when: [
      { type: 'sun', event: 'sunset', offset: '-15m' },
      { type: 'cron', expression: '0 */2 * * *' },
      { type: 'time', at: '07:00', days: ['mon', 'sun'] },
      { type: 'event', device: 'b1', event: 'double' },
    ],
    if: [
      {
        type: 'not',
        condition: { type: 'and', conditions: [{ type: 'or', conditions: [{ type: 'time', after: '22:00', before: '06:00' }] }] },
      },
    ],
    then: [
      { type: 'scene', scene: 'evening' },
      { type: 'delay', for: '1h30m' },
      { type: 'command', device: 'l1', name: 'off', ttlMs: 1000 },
    ],
    misfireGrace: '2m',
  },
];

const corpus = (): Body[] => [
  ...readmeRules(),
  simRule,
  farRule(0),
  farRule(3),
  cronRule(0, 60),
  ruleExample,
  ...testRules,
  ...lenientRules,
];

/** Every body a path of `body` leads to, with the value there replaced by each of `values` (or removed). */
function* mutations(body: unknown, values: readonly unknown[], path: readonly (string | number)[] = []): Generator<unknown> {
  if (typeof body !== 'object' || body === null) return;
  const entries: [string | number, unknown][] = Array.isArray(body) ? body.map((v, i) => [i, v]) : Object.entries(body);
  for (const [key, child] of entries) {
    const set = (v: unknown): unknown => {
      if (Array.isArray(body)) return body.map((x, i) => (i === key ? v : x));
      const copy: Body = { ...(body as Body) };
      if (v === REMOVE) delete copy[key];
      else copy[key] = v;
      return copy;
    };
    for (const v of values) yield set(v);
    for (const inner of mutations(child, values, [...path, key])) yield set(inner);
  }
}
const REMOVE = Symbol('remove');
const ODD_VALUES = [REMOVE, null, '', 0, 1.5, true, 'x', [], {}, ['mon'], 'attribute', 'command', '5m'];

describe('rule and scene request schemas', () => {
  it('take every rule body of the README, tools, benchmarks and tests, as the home does', () => {
    const bodies = corpus();
    expect(readmeRules().length).toBeGreaterThanOrEqual(2);
    for (const body of bodies) {
      expect(validateRule(body), JSON.stringify(body)).toMatchObject({ ok: true });
      const put = RuleReplacementSchema.safeParse(body);
      expect(put.success, `${JSON.stringify(body)}: ${JSON.stringify(put.error?.issues)}`).toBe(true);
      expect(RuleInputSchema.safeParse(body).success).toBe(true);
    }
  });

  it('refuse no mutation of those bodies that the home takes', () => {
    let taken = 0;
    for (const body of corpus()) {
      for (const mutated of mutations(body, ODD_VALUES)) {
        if (!validateRule(mutated).ok) continue;
        taken++;
        const parsed = RuleInputSchema.safeParse(mutated);
        expect(parsed.success, `${JSON.stringify(mutated)}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
        // What the schema hands on is what the home would have read.
        expect(validateRule(parsed.data)).toEqual(validateRule(mutated));
      }
    }
    expect(taken).toBeGreaterThan(50);
  });

  it('refuse no scene the home takes', () => {
    const scenes = [sceneExample, { id: 'dim', name: 'Dim', actions: [{ device: 'light1', name: 'set', params: { brightness: 10 } }] }];
    for (const scene of scenes) {
      for (const mutated of [scene, ...mutations(scene, ODD_VALUES)]) {
        if (!validateScene(mutated).ok) continue;
        const parsed = SceneInputSchema.safeParse(mutated);
        expect(parsed.success, `${JSON.stringify(mutated)}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
      }
    }
  });
});

describe('rule bodies over HTTP', () => {
  async function home() {
    const edge = startEdge();
    await edge.createHome('h1');
    return edge;
  }

  it('lists every shape error of a rule body in details.fields', async () => {
    const edge = await home();
    const r = await edge.json('POST', '/v1/homes/h1/rules', { body: { ...ruleExample, enabled: 'yes', when: 5, colour: 'red' } });
    expect(r.status).toBe(400);
    const fields = (r.body.error.details.fields as { field: string }[]).map((f) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['colour', 'enabled', 'when']));
    expect(fields).toHaveLength(3);
    expect(r.body.error.details.fields).toEqual(
      expect.arrayContaining([
        { field: 'enabled', message: 'must be true or false' },
        { field: 'when', message: 'must be an array' },
      ]),
    );
  });

  it('names the nested fields of triggers, conditions and actions, with the home’s phrasing', async () => {
    const edge = await home();
    const body = {
      ...ruleExample,
      when: [{ type: 'dusk' }, { type: 'time', at: 7 }],
      if: [{ type: 'or', conditions: [{ type: 'time', after: '18:30' }] }],
      then: [{ type: 'command', device: '', name: 'set', ttlMs: 5.5 }],
    };
    const r = await edge.json('POST', '/v1/homes/h1/rules', { body });
    expect(r.status).toBe(400);
    expect(r.body.error.details.fields).toEqual([
      { field: 'when[0].type', message: 'must be one of attribute, event, time, cron, sun' },
      { field: 'when[1].at', message: 'must be a local time HH:MM or HH:MM:SS from 00:00 to 23:59:59' },
      { field: 'if[0].conditions[0].before', message: 'must be a time HH:MM from 00:00 to 23:59' },
      { field: 'then[0].device', message: 'must be a string of 1-128 characters' },
      { field: 'then[0].ttlMs', message: 'must be an integer from 1000 to 86400000 (milliseconds)' },
    ]);
  });

  it('refuses conditions nested deeper than the home allows, and a 64 KiB nesting without overflowing the stack', async () => {
    const edge = await home();
    const nest = (levels: number): unknown => {
      let c: unknown = { type: 'time', after: '18:30', before: '06:30' };
      for (let i = 0; i < levels; i++) c = { type: 'not', condition: c };
      return c;
    };
    const ok = await edge.json('POST', '/v1/homes/h1/rules', { body: { ...ruleExample, if: [nest(3)] } });
    expect(ok.status).toBe(201);
    const deep = await edge.json('POST', '/v1/homes/h1/rules', { body: { ...ruleExample, if: [nest(4)] } });
    expect(deep.status).toBe(400);
    expect(deep.body.error.details.fields).toEqual([
      { field: 'if[0].condition.condition.condition.type', message: 'nests and/or/not too deep: at most 4 levels of conditions' },
    ]);
    const huge = await edge.json('POST', '/v1/homes/h1/rules', { body: { ...ruleExample, if: [nest(2000)] } });
    expect(huge.status).toBe(400);
    expect(huge.body.error.details.field).toBe('if[0].condition.condition.condition.type');
  });

  it('refuses a params or desired key __proto__ as the actors do, instead of dropping it', async () => {
    const edge = await home();
    const body = JSON.parse(`{"name":"set","params":{"__proto__":1}}`) as Body;
    const rule = { ...ruleExample, then: [{ type: 'command', device: 'l1', ...body }] };
    const r = await edge.json('POST', '/v1/homes/h1/rules', { body: rule });
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe('then[0].params.__proto__');
  });
});
