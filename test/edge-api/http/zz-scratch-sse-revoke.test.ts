import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeEdges, openSse, startEdge } from './harness.ts';

afterEach(closeEdges);

describe('scratch: SSE after revocation', () => {
  it('an open event stream keeps delivering after its token is revoked', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const token = await edge.mintToken(['h1'], ['read']);
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token }));
    expect((await edge.call('POST', '/v1/tokens/revoke', { body: { token } })).status).toBe(204);
    expect((await edge.json('GET', '/v1/homes/h1', { token })).status).toBe(401);
    await edge.json('PATCH', '/v1/homes/h1/devices/d1', { body: { desired: { on: true } } });
    await new Promise((r) => setTimeout(r, 300));
    console.log('events after revoke:', JSON.stringify(sse.events().map((e) => e.event)));
    expect(sse.events()).toEqual([]);
    await sse.close();
  });
});
