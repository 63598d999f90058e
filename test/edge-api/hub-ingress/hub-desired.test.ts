/** Desired state down a real hub stream (gRPC on port 0): on change, after welcome on every (re)connect, none once matched; command results with a result map. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId, hubActorId } from '../../../actors/actor-id.ts';
import type { CommandRecord, Shadow } from '../../../actors/device-state.ts';
import type { HubState } from '../../../actors/hub.ts';
import type { Value } from '../../../actors/types.ts';
import type { Desired, HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

const LIGHT = deviceActorId('h1', 'light1');
const MOTION = deviceActorId('h1', 'motion1');
const setDesired = (actor: string, desired: Record<string, Value | null>): Promise<Shadow> =>
  fx.ask<Shadow>(actor, { type: 'shadow.setDesired', desired });
const desiredFor = (hub: HubClient, deviceId: string): Desired[] => hub.desired().filter((d) => d.device_id === deviceId);
const waitDesired = (hub: HubClient, deviceId: string, n = 1): Promise<Desired[]> =>
  vi.waitFor(
    () => {
      const got = desiredFor(hub, deviceId);
      if (got.length < n) throw new Error(`${got.length} desired for ${deviceId}`);
      return got;
    },
    { timeout: 5_000 },
  );

/** Ends the hub's stream and waits until its hub actor has taken it offline. */
async function disconnect(hub: HubClient): Promise<void> {
  hub.close();
  await vi.waitFor(async () => expect((await fx.ask<HubState>(hubActorId('h1', 'hub1'), { type: 'hub.get' })).connected).toBe(false));
}

let seq = 0;
async function reportAndAck(hub: HubClient, device: string, attributes: Record<string, Value>): Promise<void> {
  const s = ++seq;
  hub.reports([{ seq: s, device, attributes }]);
  await hub.ackAtLeast(s);
}

describe('desired state down the hub stream', () => {
  it('sends the delta with the shadow version when an app changes desired while the hub is connected', async () => {
    fx = await startHubFixture();
    seq = 0;
    const hub = await fx.open(HUB1);
    await reportAndAck(hub, 'light1', { on: false, brightness: 10 });
    const shadow = await setDesired(LIGHT, { on: true, brightness: 10 });
    const [d] = await waitDesired(hub, 'light1');
    expect(d).toEqual({ device_id: 'light1', version: String(shadow.version), delta: { on: { kind: 'flag', flag: true } } });
    expect(hub.messages[0]?.body).toBe('welcome');
    expect(await fx.metric('iot_hub_desired_sent_total')).toBe(1);
  });

  it('after welcome on each reconnect, sends each device’s missed delta once; none once the hub reported matching values', async () => {
    fx = await startHubFixture();
    seq = 0;
    let hub = await fx.open(HUB1);
    await reportAndAck(hub, 'light1', { on: false, brightness: 10 });
    await reportAndAck(hub, 'motion1', { motion: false });
    await disconnect(hub);
    // Changed while the hub was away: nothing can be sent now.
    await setDesired(LIGHT, { on: true });
    const latest = await setDesired(LIGHT, { brightness: 70 });
    await setDesired(MOTION, { sensitivity: 'high' });

    hub = await fx.open(HUB1);
    const [light] = await waitDesired(hub, 'light1');
    expect(light).toEqual({
      device_id: 'light1',
      version: String(latest.version),
      delta: { on: { kind: 'flag', flag: true }, brightness: { kind: 'number', number: 70 } },
    });
    await waitDesired(hub, 'motion1');
    expect(hub.messages[0]?.body).toBe('welcome');
    // Another reconnect: once more, once each.
    await disconnect(hub);
    hub = await fx.open(HUB1);
    await waitDesired(hub, 'light1');
    await waitDesired(hub, 'motion1');

    // The hub applies light1's delta and reports it: the delta clears.
    await reportAndAck(hub, 'light1', { on: true, brightness: 70 });
    expect((await fx.ask<Shadow>(LIGHT, { type: 'shadow.get' })).delta).toEqual({});
    await disconnect(hub);
    hub = await fx.open(HUB1);
    await waitDesired(hub, 'motion1'); // still pending: sent again
    // A barrier on light1's own order: a change now is sent; any desired of light1 on this stream
    // (the reconnect's, had it wrongly sent one, comes before it) carries exactly that change.
    await setDesired(LIGHT, { brightness: 20 });
    await waitDesired(hub, 'light1');
    for (const d of desiredFor(hub, 'light1')) expect(d.delta).toEqual({ brightness: { kind: 'number', number: 20 } });
    expect(desiredFor(hub, 'motion1')).toHaveLength(1);
  });

  it('sends the emptied delta when an app takes desired back to the reported value, or removes a key with null, while the hub is connected', async () => {
    fx = await startHubFixture();
    seq = 0;
    const hub = await fx.open(HUB1);
    await reportAndAck(hub, 'light1', { on: false, brightness: 10 });
    await setDesired(LIGHT, { on: true, brightness: 70 });
    await waitDesired(hub, 'light1');
    const back = await setDesired(LIGHT, { brightness: 10 }); // back to the reported value
    const [, shrunk] = await waitDesired(hub, 'light1', 2);
    expect(shrunk).toEqual({ device_id: 'light1', version: String(back.version), delta: { on: { kind: 'flag', flag: true } } });
    const removed = await setDesired(LIGHT, { on: null });
    const [, , emptied] = await waitDesired(hub, 'light1', 3);
    expect(emptied).toEqual({ device_id: 'light1', version: String(removed.version), delta: {} });
    expect(removed.delta).toEqual({});
  });

  it('holds a delta that arrives during the hello until the welcome is out', async () => {
    fx = await startHubFixture();
    fx.store.hold((id) => id === 'hub:h1:hub1');
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1', HUB1.devices);
    await vi.waitFor(() => expect(fx.store.waiting).toBe(1));
    fx.hubCommands.sendDesired('h1', 'hub1', { deviceId: 'light1', version: 4, delta: { on: true } });
    expect(await fx.metric('iot_hub_desired_routed_total', { outcome: 'local' })).toBe(1);
    fx.store.release();
    await waitDesired(hub, 'light1');
    expect(hub.messages.map((m) => m.body).slice(0, 2)).toEqual(['welcome', 'desired']);
    expect(hub.messages[1]?.desired).toEqual({ device_id: 'light1', version: '4', delta: { on: { kind: 'flag', flag: true } } });
  });

  /** An app's `dim` command to the light, once it reached the hub. */
  async function issueDim(hub: HubClient, commandId: string): Promise<void> {
    const command = { type: 'command.issue', commandId, name: 'dim', params: {}, ttlMs: 60_000, depth: 0, source: { kind: 'app' } };
    await fx.ask(LIGHT, command);
    await hub.waitFor((m) => m.command, 'command');
  }

  it('keeps a command result’s map and shows it on the command’s status', async () => {
    fx = await startHubFixture();
    seq = 0;
    const hub = await fx.open(HUB1);
    await reportAndAck(hub, 'light1', { on: false });
    await issueDim(hub, 'light1~c1');
    hub.commandResult('light1~c1', true, '', { level: 42, applied: true, note: 'dimmed' });
    await vi.waitFor(async () =>
      expect(await fx.ask<CommandRecord>(LIGHT, { type: 'command.get', commandId: 'light1~c1' })).toMatchObject({
        status: 'succeeded',
        result: { level: 42, applied: true, note: 'dimmed' },
      }),
    );
  });

  it('refuses a bad result map with an error naming the field, and the stream keeps serving', async () => {
    fx = await startHubFixture();
    seq = 0;
    const hub = await fx.open(HUB1);
    await reportAndAck(hub, 'light1', { on: false });
    await issueDim(hub, 'light1~c2');
    hub.send({ command_result: { command_id: 'light1~c2', ok: true, error: '', result: { level: {} } } });
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
    hub.commandResult('light1~c2', true, '', tooMany);
    hub.commandResult('light1~c2', true, '', { note: 'x'.repeat(1_025) });
    // Every value within its limits, the whole past 4096 bytes of JSON (64 such would keep ~7 MB per device).
    hub.commandResult('light1~c2', true, '', Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`n${i}`, 'x'.repeat(1_000)])));
    await vi.waitFor(() => expect(hub.errors()).toHaveLength(4));
    expect(hub.errors().map((e) => [e.code, e.message])).toEqual([
      ['INVALID_ARGUMENT', 'command_result for "light1~c2" refused: result.level has no value set (number, flag or text)'],
      ['INVALID_ARGUMENT', 'command_result for "light1~c2" refused: result must have at most 64 entries'],
      ['INVALID_ARGUMENT', 'command_result for "light1~c2" refused: result.note must be at most 1024 characters'],
      ['INVALID_ARGUMENT', 'command_result for "light1~c2" refused: result must be at most 4096 bytes as JSON, not 5041'],
    ]);
    expect((await fx.ask<CommandRecord>(LIGHT, { type: 'command.get', commandId: 'light1~c2' })).status).toBe('sent');
    // Still serving: a report is acked and a good result completes the command.
    await reportAndAck(hub, 'light1', { on: true });
    hub.commandResult('light1~c2', true, '', { level: 1 });
    await vi.waitFor(async () =>
      expect(await fx.ask<CommandRecord>(LIGHT, { type: 'command.get', commandId: 'light1~c2' })).toMatchObject({ result: { level: 1 } }),
    );
    expect(hub.status).toBeUndefined();
  });
});
