import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

describe('HubClient', () => {
  it('says hello, sends reports and resolves waits on what arrives, whether it came before or after the wait began', async () => {
    fx = await startHubFixture();
    const hub = fx.connect(HUB1.secret);
    hub.hello(HUB1.hubId, 'h1', HUB1.devices);
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    expect(await hub.welcome()).toMatchObject({ node_id: 'n1' });
    expect(hub.acks()).toEqual([1]);
    hub.end();
    expect(await hub.ended()).toMatchObject({ code: status.OK });
  });

  it('fails a wait as soon as the stream ends without it, naming what was waited for', async () => {
    fx = await startHubFixture();
    const hub = fx.connect('not-a-secret');
    hub.hello(HUB1.hubId, 'h1', HUB1.devices);
    await expect(hub.welcome(30_000)).rejects.toThrow(/no welcome before the stream ended/);
    expect(hub.status?.code).toBe(status.UNAUTHENTICATED);
  });

  it('fails a wait after its timeout while the stream stays open', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    await expect(hub.ackAtLeast(1, 50)).rejects.toThrow(/no ack >= 1 within 50 ms/);
    expect(hub.status).toBeUndefined();
  });
});
