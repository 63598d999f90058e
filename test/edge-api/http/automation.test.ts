import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

const nightLight = {
  id: 'night-light',
  name: 'Light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
};

async function home() {
  const edge = startEdge();
  await edge.createHome('h1');
  await edge.attachDevices('h1', 'hub1', [{ deviceId: 'motion1', type: 'motion_sensor' }, { deviceId: 'light1' }]);
  return edge;
}

describe('HTTP edge: rules', () => {
  it('creates, lists, reads, replaces and deletes rules', async () => {
    const edge = await home();
    const created = await edge.json('POST', '/v1/homes/h1/rules', { body: nightLight });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'night-light', enabled: true, mode: 'single', if: [] });
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: nightLight })).status).toBe(200);
    expect((await edge.json('GET', '/v1/homes/h1/rules')).body).toEqual({ items: [created.body] });
    expect((await edge.json('GET', '/v1/homes/h1/rules/night-light')).body).toEqual(created.body);

    const { id: _id, ...withoutId } = nightLight;
    const replaced = await edge.json('PUT', '/v1/homes/h1/rules/night-light', { body: { ...withoutId, enabled: false } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ id: 'night-light', enabled: false });
    const another = await edge.json('PUT', '/v1/homes/h1/rules/second', { body: { ...nightLight, id: 'second' } });
    expect(another.status).toBe(201);

    const deleted = await edge.call('DELETE', '/v1/homes/h1/rules/night-light');
    expect(deleted.status).toBe(204);
    expect((await edge.json('GET', '/v1/homes/h1/rules/night-light')).status).toBe(404);
    expect((await edge.json('DELETE', '/v1/homes/h1/rules/night-light')).status).toBe(404);
  });

  it('rejects bad rules naming the field, and a body id that differs from the path', async () => {
    const edge = await home();
    const cases: [unknown, string][] = [
      [{ ...nightLight, when: [] }, 'when'],
      [{ ...nightLight, then: [{ type: 'command', device: 'light1', name: 'set', params: { on: [1] } }] }, 'then[0].params.on'],
      [{ ...nightLight, if: [{ device: 'motion1', attribute: 'lux', op: '<', value: 'dark' }] }, 'if[0].value'],
      [{ ...nightLight, id: 'has space' }, 'id'],
    ];
    for (const [body, field] of cases) {
      const r = await edge.json('POST', '/v1/homes/h1/rules', { body });
      expect(r.status, field).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
    const mismatch = await edge.json('PUT', '/v1/homes/h1/rules/other', { body: nightLight });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.details).toMatchObject({ field: 'id', fields: [{ field: 'id' }] });
    const array = await edge.json('POST', '/v1/homes/h1/rules', { body: [nightLight] });
    expect(array.body.error.details).toMatchObject({ field: 'body', fields: [{ field: 'body' }] });
    expect((await edge.json('GET', '/v1/homes/h2/rules')).status).toBe(404);
  });

  it('takes what the home takes, and names the bad field as the home did', async () => {
    const edge = await home();
    // An attribute condition without `type`, a served rule posted back with its `suspended`, a scene action without `type`.
    const lenient = {
      ...nightLight,
      if: [{ device: 'motion1', attribute: 'lux', op: '<', value: 20 }],
      suspended: { reason: 'ignored when written', at: 1 },
    };
    const created = await edge.json('POST', '/v1/homes/h1/rules', { body: lenient });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ if: [{ type: 'attribute', device: 'motion1' }] });
    expect(created.body.suspended).toBeUndefined();
    const scene = await edge.json('POST', '/v1/homes/h1/scenes', {
      body: { id: 'dim', name: 'Dim', actions: [{ device: 'light1', name: 'set', params: { brightness: 10 } }] },
    });
    expect(scene.status).toBe(201);
    expect(scene.body.actions).toEqual([{ type: 'command', device: 'light1', name: 'set', params: { brightness: 10 } }]);

    const cases: [unknown, string][] = [
      [{ ...nightLight, name: 7 }, 'name must be a non-empty string'],
      [{ ...nightLight, when: 'motion' }, 'when must be an array'],
      [{ ...nightLight, then: [{ type: 'delay', for: '5m' }] }, 'then[0] is a delay: a rule cannot end with a delay'],
      [{ ...nightLight, when: [{ type: 'sun', event: 'noon' }] }, 'when[0].event must be one of sunrise, sunset'],
    ];
    for (const [body, message] of cases) {
      const r = await edge.json('POST', '/v1/homes/h1/rules', { body });
      expect(r.status, message).toBe(400);
      expect(r.body.error.message).toBe(message);
    }
    const unknown = await edge.json('POST', '/v1/homes/h1/rules', { body: { ...nightLight, colour: 'red' } });
    expect(unknown.body.error).toMatchObject({ details: { field: 'colour' } });
    expect(unknown.body.error.message).toMatch(/^colour is not a known field/);
    const badScene = await edge.json('PUT', '/v1/homes/h1/scenes/dim', { body: { name: 'Dim', actions: [{ type: 'notify' }] } });
    // The schema names every bad field of the action: its type first.
    expect(badScene.body.error).toMatchObject({ details: { field: 'actions[0].type' } });
    expect(badScene.body.error.details.fields).toEqual([
      { field: 'actions[0].type', message: 'must be command' },
      { field: 'actions[0].device', message: 'must be a string of 1-128 characters' },
      { field: 'actions[0].name', message: 'must be a string of 1-64 characters' },
    ]);
  });

  it('resumes a rule that storm control suspended for re-triggering', async () => {
    const edge = await home();
    const notifyRule = {
      id: 'chatty',
      name: 'Chatty',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      then: [{ type: 'notify', message: 'motion' }],
    };
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: notifyRule })).status).toBe(201);
    for (let seq = 1; seq <= 24; seq++) await edge.report('h1', 'motion1', seq, { motion: seq % 2 === 1 });
    await vi.waitFor(async () => expect((await edge.json('GET', '/v1/homes/h1/rules/chatty')).body.suspended).toBeDefined());
    const resumed = await edge.json('POST', '/v1/homes/h1/rules/chatty/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.suspended).toBeUndefined();
    expect((await edge.json('GET', '/v1/homes/h1/rules/chatty')).body.suspended).toBeUndefined();
    expect((await edge.json('POST', '/v1/homes/h1/rules/nope/resume')).status).toBe(404);
  });
});

describe('HTTP edge: scenes and decisions', () => {
  it('stores scenes, activates one (202) and its commands reach the device', async () => {
    const edge = await home();
    const scene = { id: 'evening', name: 'Evening', actions: [{ device: 'light1', name: 'set', params: { on: true, brightness: 30 } }] };
    const created = await edge.json('POST', '/v1/homes/h1/scenes', { body: scene });
    expect(created.status).toBe(201);
    expect((await edge.json('GET', '/v1/homes/h1/scenes')).body.items).toEqual([created.body]);
    const run = await edge.json('POST', '/v1/homes/h1/scenes/evening/activate');
    expect(run.status).toBe(202);
    expect(run.body).toMatchObject({ sceneId: 'evening', commands: [{ device: 'light1' }] });
    const commandId = run.body.commands[0].commandId as string;
    await vi.waitFor(async () => {
      const record = await edge.json('GET', `/v1/homes/h1/commands/${encodeURIComponent(commandId)}`);
      expect(record.body).toMatchObject({ name: 'set', params: { on: true, brightness: 30 } });
    });
    expect((await edge.json('POST', '/v1/homes/h1/scenes/nope/activate')).status).toBe(404);
    const bad = await edge.json('POST', '/v1/homes/h1/scenes', { body: { ...scene, actions: [] } });
    expect(bad.body.error.details).toMatchObject({ field: 'actions', fields: [{ field: 'actions' }] });
    expect((await edge.call('DELETE', '/v1/homes/h1/scenes/evening')).status).toBe(204);
    expect((await edge.json('GET', '/v1/homes/h1/scenes/evening')).status).toBe(404);
  });

  it('serves the decision log newest first with a limit', async () => {
    const edge = await home();
    await edge.json('POST', '/v1/homes/h1/rules', { body: nightLight });
    for (let seq = 1; seq <= 5; seq++) await edge.report('h1', 'motion1', seq, { motion: seq % 2 === 1 });
    await vi.waitFor(async () => expect((await edge.json('GET', '/v1/homes/h1/decisions')).body.items).toHaveLength(3));
    const two = await edge.json('GET', '/v1/homes/h1/decisions?limit=2');
    expect(two.status).toBe(200);
    expect(two.body.items).toHaveLength(2);
    expect(two.body.items[0]).toMatchObject({ ruleId: 'night-light', outcome: 'fired' });
    expect(two.body.items[0].seq).toBeGreaterThan(two.body.items[1].seq);
    const bad = await edge.json('GET', '/v1/homes/h1/decisions?limit=500');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toMatchObject({ field: 'limit', fields: [{ field: 'limit' }] });
  });
});
