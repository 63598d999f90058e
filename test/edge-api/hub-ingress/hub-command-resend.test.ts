/**
 * A command whose send was lost after its device's step was durable (it never reached the hub's
 * stream: here the first `hub.command` is dropped before the delivery sees it) reaches the hub's
 * open stream by the device's delivery check, over a real ingress and real device actors, without
 * a reconnect and long before its TTL; a command that went down normally is not written again.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import { COMMAND_LIMITS, type CommandRecord } from '../../../actors/device-state.ts';
import type { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await fx?.close();
  fx = undefined;
});

const LIGHT = deviceActorId('h1', 'light1');
const TTL_MS = 60_000;
const issue = (commandId: string) => ({
  type: 'command.issue',
  commandId,
  name: 'set',
  params: { on: true },
  ttlMs: TTL_MS,
  depth: 0,
  source: { kind: 'app' },
});
const commandIds = (hub: HubClient): string[] => hub.messages.flatMap((m) => (m.command ? [m.command.command_id] : []));

describe('a command whose send was lost', () => {
  it('reaches the hub’s open stream by its device’s delivery check, once, without a reconnect', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    const delivery = fx.hubCommands;
    const send = delivery.send.bind(delivery);
    // The first send of c1 is lost (as with the queue of a node that died after the step).
    const spy = vi.spyOn(delivery, 'send').mockImplementationOnce(() => {});
    const issuedAt = Date.now();
    const cmd = await fx.ask<CommandRecord>(LIGHT, issue('light1~c1'));
    expect(cmd.status).toBe('sent');
    spy.mockImplementation(send);
    await hub.waitFor((m) => (m.command?.command_id === 'light1~c1' ? true : undefined), 'c1', COMMAND_LIMITS.resendAfterMs + 12_000);
    const lateMs = Date.now() - issuedAt;
    console.log(`lost send: at the hub ${lateMs} ms after the issue (check after ${COMMAND_LIMITS.resendAfterMs} ms, TTL ${TTL_MS} ms)`);
    expect(lateMs).toBeGreaterThanOrEqual(COMMAND_LIMITS.resendAfterMs - 50);
    expect(lateMs).toBeLessThan(TTL_MS / 2);
    expect(commandIds(hub)).toEqual(['light1~c1']);
    hub.commandResult('light1~c1', true);
    await vi.waitFor(async () =>
      expect(await fx!.ask<CommandRecord>(LIGHT, { type: 'command.get', commandId: 'light1~c1' })).toMatchObject({ status: 'succeeded' }),
    );
    expect(await fx.metric('iot_hub_commands_sent_total')).toBe(1);
  }, 30_000);

  it('is checked but not written again to a stream that carried it when the hub is slow to answer', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    const sends = vi.spyOn(fx.hubCommands, 'send');
    await fx.ask(LIGHT, issue('light1~c2'));
    await hub.waitFor((m) => (m.command?.command_id === 'light1~c2' ? true : undefined), 'c2');
    // No result yet: the check sends it again, and the stream, which wrote it, skips it.
    await vi.waitFor(() => expect(sends).toHaveBeenCalledTimes(2), { timeout: COMMAND_LIMITS.resendAfterMs + 12_000, interval: 50 });
    await vi.waitFor(async () => expect(await fx!.metric('iot_hub_down_skipped_total', { kind: 'command' })).toBe(1));
    expect(commandIds(hub)).toEqual(['light1~c2']);
    expect(await fx.metric('iot_hub_commands_sent_total')).toBe(1);
  }, 30_000);
});
