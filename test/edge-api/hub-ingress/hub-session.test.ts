/** The hello of a hub session: how a failed hub actor ask ends the stream. */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { hubActorId } from '../../../actors/actor-id.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

describe('HubSession hello', () => {
  it('ends with UNAVAILABLE, naming the hub actor, when the hub actor cannot make the hello durable; the next hello works', async () => {
    fx = await startHubFixture();
    fx.store.fail((id) => id === hubActorId('h1', HUB1.hubId));
    const hub = fx.connect(HUB1.secret);
    hub.hello(HUB1.hubId, 'h1', HUB1.devices);
    const ended = await hub.ended();
    expect(ended).toMatchObject({ code: status.UNAVAILABLE });
    expect(ended.details).toMatch(/^hub actor: /);
    fx.store.heal();
    const again = await fx.open(HUB1);
    again.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await again.ackAtLeast(1)).toBe(1);
  });
});
