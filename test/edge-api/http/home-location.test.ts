import { afterEach, describe, expect, it } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

const sunset = {
  id: 'dusk',
  name: 'Lights at dusk',
  when: [{ type: 'sun', event: 'sunset', offset: '-15m' }],
  then: [{ type: 'command', device: 'light1', name: 'on', params: {} }],
};

describe('HTTP edge: home location', () => {
  it('stores a location, keeps it when omitted, and serves it with the home', async () => {
    const edge = startEdge();
    const location = { latitude: 48.137, longitude: 11.575 };
    const created = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', timezone: 'Europe/Berlin', location } });
    expect(created.status).toBe(201);
    expect(created.body.location).toEqual(location);
    const renamed = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat 2' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Flat 2', location });
    expect((await edge.json('GET', '/v1/homes/h1')).body.location).toEqual(location);
  });

  it('refuses a bad location naming the field', async () => {
    const edge = startEdge();
    for (const [location, field] of [
      [{ latitude: 100, longitude: 0 }, 'location.latitude'],
      [{ latitude: 0, longitude: '13' }, 'location.longitude'],
      [{ latitude: 0, longitude: 0, altitude: 3 }, 'location.altitude'],
      [[1, 2], 'location'],
    ] as const) {
      const r = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', location } });
      expect(r.status, field).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_argument', details: { field } });
    }
    const both = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', location: { latitude: -91, longitude: null } } });
    expect(both.body.error.details.fields).toEqual([
      { field: 'location.latitude', message: 'must be a number of degrees from -90 to 90' },
      { field: 'location.longitude', message: 'must be a number of degrees from -180 to 180' },
    ]);
    const notObject = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', location: 'Munich' } });
    expect(notObject.body.error.message).toBe('location must be an object {latitude, longitude}');
  });

  it('refuses a sun rule in a home without a location with 400 naming the trigger, and takes it once there is one', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    const refused = await edge.json('POST', '/v1/homes/h1/rules', { body: sunset });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'invalid_argument', details: { field: 'when[0]' } });
    await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', location: { latitude: 52.52, longitude: 13.405 } } });
    expect((await edge.json('POST', '/v1/homes/h1/rules', { body: sunset })).status).toBe(201);
    const remove = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'Flat', location: null } });
    expect(remove.status).toBe(400);
    expect(remove.body.error.details).toMatchObject({ field: 'location' });
  });
});
