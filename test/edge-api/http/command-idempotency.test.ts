/** An Idempotency-Key names one command: a retry answers the first, another command under it is a 409 (issue 11). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

async function homeWithLight() {
  const edge = startEdge();
  await edge.createHome('h1');
  await edge.attachDevices('h1', 'hub1', [{ deviceId: 'motion1', type: 'motion_sensor' }, { deviceId: 'light1' }]);
  return edge;
}

describe('HTTP edge: command idempotency', () => {
  it('answers a retry with the first command and 409 idempotency_conflict to another command under the same key', async () => {
    const edge = await homeWithLight();
    const path = '/v1/homes/h1/devices/light1/commands';
    const headers = { 'idempotency-key': 'tap-1' };
    const body = { name: 'set', params: { on: true, brightness: 40 }, ttlMs: 60_000 };
    const first = await edge.json('POST', path, { body, headers });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ commandId: 'light1~tap-1', status: 'sent' });
    // The same command again (params in another order): the first, not a second one.
    const retry = await edge.json('POST', path, { body: { ...body, params: { brightness: 40, on: true } }, headers });
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual(first.body);

    const conflicts: [unknown, string][] = [
      [{ ...body, name: 'toggle' }, 'name'],
      [{ ...body, params: { on: false, brightness: 40 } }, 'params'],
      [{ ...body, params: { on: true } }, 'params'],
      [{ ...body, ttlMs: 5_000 }, 'ttlMs'],
      [{ name: 'set', params: body.params }, 'ttlMs'], // the default ttlMs is not the 60 s of the first
    ];
    for (const [other, field] of conflicts) {
      const r = await edge.json('POST', path, { body: other, headers });
      expect(r.status, JSON.stringify(other)).toBe(409);
      expect(r.body.error).toMatchObject({ code: 'idempotency_conflict', details: { field } });
      expect(r.body.error.message).toContain('light1~tap-1');
    }
    const record = await edge.json('GET', `/v1/homes/h1/commands/${encodeURIComponent('light1~tap-1')}`);
    expect(record.body).toMatchObject({ name: 'set', params: { on: true, brightness: 40 }, status: 'sent' });
    expect(record.body.expiresAtMs - record.body.createdAt).toBe(60_000);
    // The same key on another device names another command.
    expect((await edge.json('POST', '/v1/homes/h1/devices/motion1/commands', { body: { name: 'arm' }, headers })).status).toBe(202);
  });

  it('refuses an app key in the id space of rule and scene commands (r-, s-), so it cannot take a rule command id', async () => {
    const edge = await homeWithLight();
    const rule = {
      id: 'night-light',
      name: 'Light on motion',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
    };
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: rule })).status).toBe(201);
    const path = '/v1/homes/h1/devices/light1/commands';
    for (const key of ['r-night-light-1', 's-movie-1']) {
      const r = await edge.json('POST', path, { body: { name: 'set', params: { on: false } }, headers: { 'idempotency-key': key } });
      expect(r.status, key).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'Idempotency-Key' } });
    }
    // The rule's first firing gets its command id, and the command is sent.
    await edge.report('h1', 'motion1', 1, { motion: true });
    await vi.waitFor(async () => {
      const record = await edge.json('GET', `/v1/homes/h1/commands/${encodeURIComponent('light1~r-night-light-1')}`);
      expect(record.body).toMatchObject({ status: 'sent', params: { on: true }, source: { kind: 'rule', ruleId: 'night-light' } });
    });
    // Other keys, even close ones, name the command they always named.
    for (const key of ['R-1', 'rule-1', 'r_1', 'sr-1']) {
      const r = await edge.json('POST', path, { body: { name: 'set' }, headers: { 'idempotency-key': key } });
      expect(r.status, key).toBe(202);
      expect(r.body.commandId).toBe(`light1~${key}`);
    }
  });

  it('leaves rule commands alone: each firing issues its own command under its deterministic id', async () => {
    const edge = await homeWithLight();
    const rule = {
      id: 'night-light',
      name: 'Light on motion',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
    };
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: rule })).status).toBe(201);
    for (let seq = 1; seq <= 3; seq++) await edge.report('h1', 'motion1', seq, { motion: seq % 2 === 1 });
    // Two firings (seq 1 and 3), two commands, both recorded and sent.
    await vi.waitFor(async () => expect((await edge.json('GET', '/v1/homes/h1/decisions')).body.items).toHaveLength(2));
    const decisions = (await edge.json('GET', '/v1/homes/h1/decisions')).body.items as { actions: { commandId: string }[] }[];
    const ids = decisions.map((d) => d.actions[0]!.commandId).sort();
    expect(ids).toEqual(['light1~r-night-light-1', 'light1~r-night-light-2']);
    for (const id of ids) {
      await vi.waitFor(async () => {
        const record = await edge.json('GET', `/v1/homes/h1/commands/${encodeURIComponent(id)}`);
        expect(record.body).toMatchObject({ status: 'sent', source: { kind: 'rule', ruleId: 'night-light' }, depth: 1 });
      });
    }
  });
});
