import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

const lightRule = (id: string, extra: object = {}) => ({
  id,
  name: id,
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
  ...extra,
});

describe('HTTP edge: decision log filters', () => {
  it('filters decisions by rule and outcome, and names a bad query field', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'motion1', type: 'motion_sensor' }, { deviceId: 'light1' }]);
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: lightRule('always') })).status).toBe(201);
    const never = lightRule('never', { if: [{ device: 'motion1', attribute: 'lux', op: '<', value: 0 }] });
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: never })).status).toBe(201);
    const held = lightRule('held', { when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true, for: '1h' }] });
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: held })).status).toBe(201);
    for (let seq = 1; seq <= 3; seq++) await edge.report('h1', 'motion1', seq, { motion: seq % 2 === 1, lux: 40 });
    // `never` logs its condition_false once: the same verdicts within a minute are not logged again.
    await vi.waitFor(async () => expect((await edge.json('GET', '/v1/homes/h1/decisions')).body.items).toHaveLength(3));
    // Saving `held` with another duration drops the hold the third report started.
    const edited = { ...held, when: [{ ...held.when[0], for: '2h' }] };
    expect((await edge.json('PUT', '/v1/homes/h1/rules/held', { body: edited })).status).toBe(200);
    const cancelled = await edge.json('GET', '/v1/homes/h1/decisions?outcome=cancelled');
    expect(cancelled.body.items).toEqual([
      expect.objectContaining({
        ruleId: 'held',
        outcome: 'cancelled',
        reason: expect.stringMatching(/^rule edited: the hold of when\[0\]/),
      }),
    ]);

    const byRule = await edge.json('GET', '/v1/homes/h1/decisions?rule=never');
    expect(byRule.status).toBe(200);
    expect(byRule.body.items).toHaveLength(1);
    expect(byRule.body.items[0]).toMatchObject({
      ruleId: 'never',
      outcome: 'condition_false',
      actions: [],
      conditions: [{ saw: 40, passed: false }],
    });
    const fired = await edge.json('GET', '/v1/homes/h1/decisions?outcome=fired&limit=1');
    expect(fired.body.items).toEqual([expect.objectContaining({ ruleId: 'always', outcome: 'fired' })]);
    expect((await edge.json('GET', '/v1/homes/h1/decisions?rule=always&outcome=condition_false')).body.items).toEqual([]);

    for (const [query, field] of [
      ['outcome=exploded', 'outcome'],
      ['rule=bad%20id', 'rule'],
      ['limit=0&rule=always', 'limit'],
    ] as const) {
      const bad = await edge.json('GET', `/v1/homes/h1/decisions?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
    expect((await edge.json('GET', '/v1/homes/h1/decisions?rule=__proto__')).body.error.message).toBe(
      'rule must be a rule id: 1 to 64 letters, digits, _ or -',
    );
  });

  it('lists every bad query parameter, each with the message it always had', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const bad = await edge.json('GET', '/v1/homes/h1/decisions?outcome=exploded&rule=bad%20id&limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual({
      field: 'limit',
      fields: [
        { field: 'limit', message: 'must be an integer from 1 to 200' },
        { field: 'rule', message: 'must be a rule id: 1 to 64 letters, digits, _ or -' },
        {
          field: 'outcome',
          message: 'must be one of fired, condition_false, missed, suspended, budget_exhausted, ignored, queued, cancelled',
        },
      ],
    });
    expect(bad.body.error.message).toBe('limit must be an integer from 1 to 200 (and 2 more: see details.fields)');
    const two = await edge.json('GET', '/v1/homes/h1/decisions?rule=&outcome=FIRED');
    expect(two.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['rule', 'outcome']);
  });
});
