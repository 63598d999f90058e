/** Rules name only scenes their home has, and a scene a rule uses is not deleted (issue 11). */
import { afterEach, describe, expect, it } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

const evening = { id: 'evening', name: 'Evening', actions: [{ device: 'light1', name: 'set', params: { on: true } }] };
const button = {
  id: 'evening-btn',
  name: 'Evening button',
  when: [{ type: 'event', device: 'button1', event: 'double' }],
  then: [
    { type: 'notify', message: 'evening' },
    { type: 'scene', scene: 'evening' },
  ],
};

describe('HTTP edge: scene references of rules', () => {
  it('answers 400 naming the action field to a rule that names a missing scene, on create and on replace', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const created = await edge.json('POST', '/v1/homes/h1/rules', { body: button });
    expect(created.status).toBe(400);
    expect(created.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'then[1].scene' } });
    expect((await edge.json('GET', '/v1/homes/h1/rules/evening-btn')).status).toBe(404);

    expect((await edge.json('POST', '/v1/homes/h1/scenes', { body: evening })).status).toBe(201);
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: button })).status).toBe(201);
    const { id: _id, ...withoutId } = button;
    const replaced = await edge.json('PUT', '/v1/homes/h1/rules/evening-btn', {
      body: { ...withoutId, then: [{ type: 'scene', scene: 'party' }] },
    });
    expect(replaced.status).toBe(400);
    expect(replaced.body.error.details).toMatchObject({ field: 'then[0].scene', fields: [{ field: 'then[0].scene' }] });
    expect((await edge.json('GET', '/v1/homes/h1/rules/evening-btn')).body.then).toEqual(button.then);
  });

  it('answers 409 failed_precondition naming the rules to a delete of a scene they use, and deletes it once none does', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    expect((await edge.json('POST', '/v1/homes/h1/scenes', { body: evening })).status).toBe(201);
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: button })).status).toBe(201);
    const refused = await edge.json('DELETE', '/v1/homes/h1/scenes/evening');
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('failed_precondition');
    expect(refused.body.error.message).toContain('evening-btn');
    expect((await edge.json('GET', '/v1/homes/h1/scenes/evening')).status).toBe(200);
    expect((await edge.call('DELETE', '/v1/homes/h1/rules/evening-btn')).status).toBe(204);
    expect((await edge.call('DELETE', '/v1/homes/h1/scenes/evening')).status).toBe(204);
  });
});
