/** Reads of devices, commands and homes that do not exist keep no actor in memory (issue 11: a GET flood of random ids). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

describe('HTTP edge: reads of what does not exist', () => {
  it('answers 404 to many reads of unknown devices, commands and homes and keeps the resident actor count flat', async () => {
    const edge = startEdge(); // actors passivate after minutes: only the not_found answer lets them go
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const { host } = edge.stack;
    const resident = host.residentCount;
    expect(host.isResident('device:h1:d1')).toBe(true);
    for (let i = 0; i < 150; i++) {
      const reads: [string, string, unknown?][] = [
        ['GET', `/v1/homes/h1/devices/ghost-${i}`],
        ['GET', `/v1/homes/h1/commands/ghost-${i}~k`],
        ['PATCH', `/v1/homes/h1/devices/ghost-${i}`, { desired: { on: true } }],
        ['POST', `/v1/homes/h1/devices/ghost-${i}/commands`, { name: 'set' }],
        ['GET', `/v1/homes/nowhere-${i}`],
        ['GET', `/v1/homes/nowhere-${i}/rules`],
      ];
      for (const [method, path, body] of reads) {
        const r = await edge.json(method, path, body === undefined ? {} : { body });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.body.error.code).toBe('not_found');
      }
      expect(host.residentCount).toBe(resident);
    }
    // A device that exists stays resident after its reads.
    expect((await edge.json('GET', '/v1/homes/h1/devices/d1')).status).toBe(200);
    expect(host.isResident('device:h1:d1')).toBe(true);
  });

  it('lets the devices of a deleted home leave memory, and keeps none resident for reads of them', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }, { deviceId: 'd2' }]);
    const { host } = edge.stack;
    expect(host.isResident('device:h1:d1')).toBe(true);
    expect((await edge.json('DELETE', '/v1/homes/h1')).status).toBe(204);
    // The removal step asks to leave: both go once their mark is written.
    await vi.waitFor(() => {
      expect(host.isResident('device:h1:d1')).toBe(false);
      expect(host.isResident('device:h1:d2')).toBe(false);
    });
    for (let i = 0; i < 20; i++) {
      const r = await edge.json('GET', '/v1/homes/h1/devices/d1');
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('not_found');
      expect(host.isResident('device:h1:d1')).toBe(false);
    }
  });

  it('serves a device that was read while unknown once its hub announces it', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    expect((await edge.json('GET', '/v1/homes/h1/devices/late')).status).toBe(404);
    expect(edge.stack.host.isResident('device:h1:late')).toBe(false);
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'late' }]);
    const shadow = await edge.json('GET', '/v1/homes/h1/devices/late');
    expect(shadow.status).toBe(200);
    expect(shadow.body).toMatchObject({ deviceId: 'late', type: 'light' });
    expect(edge.stack.host.isResident('device:h1:late')).toBe(true);
  });
});
