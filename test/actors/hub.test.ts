/** Unit tests of the hub actor: hello/attach, sessions across nodes, durable seq, validation. */
import { describe, expect, it } from 'vitest';
import { errorOf } from '../support/outcome.ts';
import { hubBehavior } from '../../actors/hub.ts';
import type { HubDevice, HubMsg, HubState } from '../../actors/hub.ts';
import { hubActorId } from '../../actors/actor-id.ts';
import type { DomainEffect } from '../../actors/types.ts';

const ID = hubActorId('h1', 'hub1');
const run = (s: HubState, msg: HubMsg, now = 1_000) => hubBehavior.receive(s, msg, { id: ID, now, replaying: false });
const dev = (deviceId: string, type = 'light'): HubDevice => ({ deviceId, type, capabilities: ['on'] });
const hello = (devices: HubDevice[], nodeId = 'node-a'): HubMsg => ({ type: 'hub.hello', devices, nodeId });
const tells = (effects: readonly DomainEffect[] | undefined): [string, unknown][] =>
  (effects ?? []).flatMap((e) => (e.type === 'tell' ? [[e.to, e.msg] as [string, unknown]] : []));

describe('hubBehavior', () => {
  it('parses homeId and hubId from its id', () => {
    expect(hubBehavior.initial(ID)).toEqual({ homeId: 'h1', hubId: 'hub1', devices: [], connected: false, lastDurableSeq: 0 });
    expect(() => hubBehavior.initial('device:h1:d1')).toThrow(/not a hub actor id/);
  });

  it('attaches every listed device, opens its connection and replies where to resume', () => {
    const s0 = { ...hubBehavior.initial(ID), lastDurableSeq: 41 };
    const step = run(s0, hello([dev('lamp'), dev('door', 'contact_sensor')]), 5_000);
    expect(step.reply).toEqual({ ok: true, value: { lastDurableSeq: 41 } });
    expect(step.journal).toBe(true);
    expect(step.state).toMatchObject({ devices: ['lamp', 'door'], connected: true, connectedAt: 5_000, sessionNode: 'node-a' });
    expect(tells(step.effects)).toEqual([
      ['device:h1:lamp', { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] }],
      ['device:h1:lamp', { type: 'hub.connection', online: true, hubId: 'hub1' }],
      ['home:h1', { type: 'device.attached', deviceId: 'lamp', deviceType: 'light', hubId: 'hub1' }],
      ['device:h1:door', { type: 'device.attach', hubId: 'hub1', deviceType: 'contact_sensor', capabilities: ['on'] }],
      ['device:h1:door', { type: 'hub.connection', online: true, hubId: 'hub1' }],
      ['home:h1', { type: 'device.attached', deviceId: 'door', deviceType: 'contact_sensor', hubId: 'hub1' }],
    ]);
  });

  it('tells a device the hub no longer lists that its connection closed', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp'), dev('old')])).state;
    const step = run(s1, hello([dev('lamp')], 'node-b'));
    expect(tells(step.effects)).toContainEqual(['device:h1:old', { type: 'hub.connection', online: false, hubId: 'hub1' }]);
    expect(step.state.devices).toEqual(['lamp']);
  });

  it('closes the session on disconnect from the node that holds it', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp')])).state;
    const step = run(s1, { type: 'hub.disconnect', nodeId: 'node-a' });
    expect(step.reply).toEqual({ ok: true, value: { connected: false } });
    expect(step.state.connected).toBe(false);
    expect(step.state.sessionNode).toBeUndefined();
    expect(tells(step.effects)).toEqual([['device:h1:lamp', { type: 'hub.connection', online: false, hubId: 'hub1' }]]);
    expect(run(step.state, { type: 'hub.disconnect' }).journal).toBe(false);
  });

  it('ignores a disconnect from another node after the hub reconnected elsewhere', () => {
    let s = run(hubBehavior.initial(ID), hello([dev('lamp')], 'node-a')).state;
    s = run(s, hello([dev('lamp')], 'node-b')).state;
    const step = run(s, { type: 'hub.disconnect', nodeId: 'node-a' });
    expect(step.reply).toEqual({ ok: true, value: { connected: true } });
    expect(step.state).toBe(s);
    expect(step.journal).toBe(false);
    expect(step.effects ?? []).toEqual([]);
  });

  it('never moves the durable seq backwards and journals only when it moves', () => {
    const s0 = hubBehavior.initial(ID);
    const up = run(s0, { type: 'hub.durable', upToSeq: 10 });
    expect(up).toMatchObject({ journal: true, reply: { ok: true, value: { lastDurableSeq: 10 } } });
    const back = run(up.state, { type: 'hub.durable', upToSeq: 7 });
    expect(back).toMatchObject({ journal: false, reply: { ok: true, value: { lastDurableSeq: 10 } } });
    expect(back.state).toBe(up.state);
    expect(run(back.state, { type: 'hub.hello', devices: [], nodeId: 'n' }).reply).toEqual({ ok: true, value: { lastDurableSeq: 10 } });
  });

  it('reads its state with hub.get without journaling', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp')])).state;
    const step = run(s1, { type: 'hub.get' });
    expect(step).toMatchObject({ journal: false, reply: { ok: true, value: { hubId: 'hub1', connected: true, devices: ['lamp'] } } });
  });

  it.each([
    [hello([dev('a'), dev('b'), dev('c'), dev('')]), 'devices[3].deviceId'],
    [hello([dev('a'), dev('x'.repeat(129))]), 'devices[1].deviceId'],
    [hello([dev('a'), dev('b'), dev('a')]), 'devices[2].deviceId'],
    [hello([dev('a', '')]), 'devices[0].type'],
    [hello([{ deviceId: 'a', type: 't', capabilities: [1 as unknown as string] }]), 'devices[0].capabilities[0]'],
    [hello(Array.from({ length: 1001 }, (_, i) => dev(`d${i}`))), 'devices'],
    [hello([dev('a')], ''), 'nodeId'],
    [{ type: 'hub.durable', upToSeq: -1 }, 'upToSeq'],
    [{ type: 'hub.durable', upToSeq: 2.5 }, 'upToSeq'],
  ] as [HubMsg, string][])('rejects invalid input naming the field (%#: %s)', (msg, field) => {
    const s0 = hubBehavior.initial(ID);
    const step = run(s0, msg);
    expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field });
    expect(step.state).toBe(s0);
    expect(step.journal).toBe(false);
  });

  it('accepts 1000 devices', () => {
    const step = run(hubBehavior.initial(ID), hello(Array.from({ length: 1000 }, (_, i) => dev(`d${i}`))));
    expect(step.state.devices).toHaveLength(1000);
  });
});
