import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId, hubActorId } from '../../../actors/actor-id.ts';
import type { CommandRecord, Shadow } from '../../../actors/device-state.ts';
import type { HubState } from '../../../actors/hub.ts';
import { HUB1, HUB2, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

const shadow = (id: string): Promise<Shadow> => fx.ask<Shadow>(deviceActorId('h1', id), { type: 'shadow.get' });
const hubState = (id: string): Promise<HubState> => fx.ask<HubState>(hubActorId('h1', id), { type: 'hub.get' });

describe('HubIngress', () => {
  it('welcomes an authenticated hub with its node, window and last durable seq', async () => {
    fx = await startHubFixture({ window: 8 });
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1', HUB1.devices);
    expect(await hub.welcome()).toEqual({ node_id: 'n1', window: 8, last_durable_seq: '0' });
    expect(hub.messages[0]?.body).toBe('welcome');
    expect(fx.ingress.sessionCount).toBe(1);
    expect(await hubState('hub1')).toMatchObject({ connected: true, sessionNode: 'n1', devices: ['motion1', 'light1'] });
    expect(await fx.metric('iot_hub_streams')).toBe(1);
  });

  it('takes reports sent right behind the hello, before the welcome arrived', async () => {
    fx = await startHubFixture();
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1', HUB1.devices);
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    expect(hub.messages.map((m) => m.body)).toEqual(['welcome', 'ack']);
  });

  it('holds a command that arrives during the hello until the welcome is out, and leaves one for a hub not here queued', async () => {
    fx = await startHubFixture();
    const routed = (outcome: string) => fx.metric('iot_hub_commands_routed_total', { outcome });
    const command = { commandId: 'light1~x1', deviceId: 'light1', name: 'set', params: { on: true }, expiresAtMs: Date.now() + 60_000 };
    fx.hubCommands.send('h1', 'hub1', command);
    expect(await routed('queued')).toBe(1);
    fx.store.hold((id) => id === 'hub:h1:hub1');
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1', HUB1.devices);
    await vi.waitFor(() => expect(fx.store.waiting).toBe(1));
    fx.hubCommands.send('h1', 'hub1', command);
    expect(await routed('local')).toBe(1);
    fx.store.release();
    await hub.waitFor((m) => m.command, 'command');
    expect(hub.messages.map((m) => m.body)).toEqual(['welcome', 'command']);
    expect(hub.messages[1]?.command).toMatchObject({ command_id: 'light1~x1', params: { on: { flag: true } } });
    fx.hubCommands.send('h1', 'hub2', command);
    expect(await routed('queued')).toBe(2);
    expect(await routed('local')).toBe(1);
  });

  it('acks cumulatively, and only once every earlier report is durable in its device actor', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    fx.store.hold((id) => id === 'device:h1:motion1');
    hub.reports([
      { seq: 1, device: 'motion1', attributes: { motion: true } },
      { seq: 2, device: 'light1', attributes: { on: true } },
    ]);
    await vi.waitFor(() => expect(fx.store.waiting).toBeGreaterThanOrEqual(1));
    // seq 1 is not durable, so nothing is acked. (light1 shares the shard of motion1, so its write
    // waits in the same durable window or behind it.)
    expect(hub.acks()).toEqual([]);

    fx.store.release();
    expect(await hub.ackAtLeast(2)).toBe(2);
    expect((await shadow('motion1')).reported.motion?.value).toBe(true);
    expect((await shadow('light1')).reported.on?.value).toBe(true);
    hub.reports([{ seq: 3, device: 'motion1', attributes: { motion: false } }]);
    await hub.ackAtLeast(3);
    expect(hub.acks()).toEqual([2, 3]);
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'applied' })).toBe(3);
    // The durable cursor is written at most once a second: the second write may wait that long.
    await vi.waitFor(async () => expect((await hubState('hub1')).lastDurableSeq).toBe(3), { timeout: 3_000 });
  });

  it('sends the command a rule makes of a motion report, and completes it with the command_result', async () => {
    fx = await startHubFixture();
    await fx.ask('home:h1', {
      type: 'rules.put',
      rule: {
        id: 'hall-light',
        name: 'Hall light on motion',
        when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
        if: [],
        then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60, scene: 'evening' } }],
      },
    });
    const hub = await fx.open(HUB1);
    hub.reports([{ seq: 1, device: 'motion1', attributes: { motion: true }, event: 'motion_detected' }]);
    const command = await hub.waitFor((m) => m.command, 'command');
    expect(command).toMatchObject({
      device_id: 'light1',
      name: 'set',
      params: { on: { flag: true, kind: 'flag' }, brightness: { number: 60, kind: 'number' }, scene: { text: 'evening', kind: 'text' } },
    });
    expect(Number(command.expires_at_ms)).toBeGreaterThan(Date.now());
    expect(await fx.ask<CommandRecord>('device:h1:light1', { type: 'command.get', commandId: command.command_id })).toMatchObject({
      status: 'sent',
    });

    hub.send({ command_result: { command_id: command.command_id, ok: true, error: '' } });
    await vi.waitFor(async () =>
      expect(await fx.ask<CommandRecord>('device:h1:light1', { type: 'command.get', commandId: command.command_id })).toMatchObject({
        status: 'succeeded',
      }),
    );
    expect(await fx.metric('iot_hub_commands_sent_total')).toBe(1);
    expect(hub.errors()).toEqual([]);
  });

  it('applies re-sent reports at most once after a reconnect, and still acks them', async () => {
    fx = await startHubFixture();
    const first = await fx.open(HUB1);
    first.reports([1, 2, 3].map((seq) => ({ seq, device: 'motion1', attributes: { illuminance: seq * 10 } })));
    await first.ackAtLeast(3);
    // The durable cursor is written at most once a second: the second write may wait that long.
    await vi.waitFor(async () => expect((await hubState('hub1')).lastDurableSeq).toBe(3), { timeout: 3_000 });
    const before = await shadow('motion1');
    first.close();
    await vi.waitFor(async () => expect((await hubState('hub1')).connected).toBe(false));

    // The hub did not see the ack of 3 and sends 2..4 again; 4 is new.
    const second = fx.connect(HUB1.secret);
    second.hello('hub1', 'h1', HUB1.devices);
    expect((await second.welcome()).last_durable_seq).toBe('3');
    second.reports([2, 3, 4].map((seq) => ({ seq, device: 'motion1', attributes: { illuminance: seq * 10 } })));
    expect(await second.ackAtLeast(4)).toBe(4);
    const after = await shadow('motion1');
    expect(after.version).toBe(before.version + 1);
    expect(after.reported.illuminance?.value).toBe(40);
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'duplicate' })).toBe(2);
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'applied' })).toBe(4);
  });

  it('acks a report its device applied before (an ack lost in flight) without applying it again', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    // Applied through another path, so the hub actor's last durable seq still says 0.
    await fx.ask('device:h1:light1', { type: 'report', seq: 7, tsMs: 1, attributes: { on: true } });
    const before = await shadow('light1');
    hub.reports([{ seq: 7, device: 'light1', attributes: { on: false } }]);
    expect(await hub.ackAtLeast(7)).toBe(7);
    expect(await shadow('light1')).toEqual(before);
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'duplicate' })).toBe(1);
  });

  it('ends a superseded stream with ABORTED and keeps the hub connected on the new one', async () => {
    fx = await startHubFixture();
    const old = await fx.open(HUB1);
    old.reports([{ seq: 1, device: 'light1', attributes: { on: false } }]);
    await old.ackAtLeast(1);
    expect((await shadow('light1')).online).toBe(true);
    const fresh = await fx.open(HUB1);
    expect(await old.ended()).toMatchObject({ code: status.ABORTED, details: 'superseded by a new connection' });
    // The superseded stream did not disconnect the hub: its devices never went offline.
    expect((await shadow('light1')).online).toBe(true);
    fresh.reports([{ seq: 2, device: 'light1', attributes: { on: true } }]);
    await fresh.ackAtLeast(2);
    expect(fx.ingress.sessionCount).toBe(1);
    await vi.waitFor(() => expect(fx.metric('iot_hub_streams')).resolves.toBe(1));
    expect(await hubState('hub1')).toMatchObject({ connected: true, sessionNode: 'n1' });
    expect(await fx.metric('iot_hub_stream_ends_total', { status: 'ABORTED' })).toBe(1);
  });

  it('finishes and acks what a half-closing hub sent, then ends with OK', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    hub.reports([{ seq: 1, device: 'light1', attributes: { brightness: 30 } }]);
    hub.end();
    expect(await hub.ended()).toMatchObject({ code: status.OK });
    expect(hub.acks()).toEqual([1]);
    await vi.waitFor(async () => expect((await hubState('hub1')).connected).toBe(false));
  });

  it('ends every stream with UNAVAILABLE on close and tells the hub actors they disconnected', async () => {
    fx = await startHubFixture();
    const one = await fx.open(HUB1);
    const two = await fx.open(HUB2);
    await fx.ingress.close();
    for (const hub of [one, two]) expect(await hub.ended()).toMatchObject({ code: status.UNAVAILABLE, details: 'node shutting down' });
    expect(await hubState('hub1')).toMatchObject({ connected: false });
    expect(await hubState('hub2')).toMatchObject({ connected: false });
    expect(fx.ingress.sessionCount).toBe(0);
  });
});
