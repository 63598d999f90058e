/**
 * A command goes down one hub stream at most once, over a real ingress and real device actors: the
 * device's re-send of its `sent` commands when its hub (re)connects, racing the first send to the
 * same stream (seen in the failover benchmark), is skipped and counted.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import type { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture | undefined;

afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const LIGHT = deviceActorId('h1', 'light1');
const issue = (commandId: string) => ({
  type: 'command.issue',
  commandId,
  name: 'set',
  params: { on: true },
  ttlMs: 60_000,
  depth: 0,
  source: { kind: 'app' },
});
const commandIds = (hub: HubClient): string[] => hub.messages.flatMap((m) => (m.command ? [m.command.command_id] : []));

describe('a command on one hub stream', () => {
  it('is written once when the device sends it again on a (re)connect while the first send already reached the stream', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    await fx.ask(LIGHT, issue('light1~c1'));
    await hub.waitFor((m) => (m.command?.command_id === 'light1~c1' ? true : undefined), 'c1');
    // What the hub actor tells each device on a hello: the device sends its `sent` commands again
    // (c1's result has not come), here to the very stream that already carried c1.
    expect(fx.stack.router.tell(LIGHT, { type: 'hub.connection', online: true, hubId: HUB1.hubId }).ok).toBe(true);
    await vi.waitFor(async () => expect(await fx!.metric('iot_hub_down_skipped_total', { kind: 'command' })).toBe(1));
    await fx.ask(LIGHT, issue('light1~c2'));
    await hub.waitFor((m) => (m.command?.command_id === 'light1~c2' ? true : undefined), 'c2');
    expect(commandIds(hub)).toEqual(['light1~c1', 'light1~c2']);
    expect(await fx.metric('iot_hub_commands_sent_total')).toBe(2);
    // The result completes it once; a late re-send after that finds nothing live to send.
    hub.commandResult('light1~c1', true);
    await vi.waitFor(async () =>
      expect(await fx!.ask(LIGHT, { type: 'command.get', commandId: 'light1~c1' })).toMatchObject({ status: 'succeeded' }),
    );
  });

  it('reaches a new stream of the hub on the same node once, though the device sends it on each connect', async () => {
    fx = await startHubFixture();
    const first = await fx.open(HUB1);
    await fx.ask(LIGHT, issue('light1~c1'));
    await first.waitFor((m) => (m.command ? true : undefined), 'c1 on the first stream');
    // The hub reconnects without answering c1: the new stream gets it (re-sent on the hello) once,
    // though a second connect message reaches the device while the stream is open.
    const second = await fx.open(HUB1);
    await second.waitFor((m) => (m.command?.command_id === 'light1~c1' ? true : undefined), 'c1 on the second stream');
    expect(fx.stack.router.tell(LIGHT, { type: 'hub.connection', online: true, hubId: HUB1.hubId }).ok).toBe(true);
    await vi.waitFor(async () => expect(await fx!.metric('iot_hub_down_skipped_total', { kind: 'command' })).toBe(1));
    expect(commandIds(second)).toEqual(['light1~c1']);
  });
});
