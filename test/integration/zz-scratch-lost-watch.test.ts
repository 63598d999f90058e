import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActorStack } from '../../node/actor-stack.ts';
import type { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { GatedStore } from '../support/gated-store.ts';

const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

const darkHallRule = {
  id: 'dark-hall',
  name: 'Hall light on motion when dark',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [{ type: 'attribute', device: 'lux1', attribute: 'illuminance', op: '<', value: 50 }],
  then: [{ type: 'command', device: 'light1', name: 'on' }],
};

describe('scratch: a device.watch lost to a failed recovery', () => {
  it('is never repaired, and the rule never fires', async () => {
    const store = new GatedStore();
    const toHub: unknown[] = [];
    const { host } = createActorStack({
      store,
      logger: silentLogger,
      registry: new Registry(),
      hubCommands: { send: (_h, _hub, command) => void toHub.push(command) },
      publish: () => {},
    });
    hosts.push(host);
    await host.ask('home:h1', { type: 'home.upsert', name: 'Flat', timezone: 'UTC' });
    const hello = {
      type: 'hub.hello',
      nodeId: 'n1',
      devices: [
        { deviceId: 'motion1', type: 'motion_sensor', capabilities: [] },
        { deviceId: 'lux1', type: 'light_sensor', capabilities: [] },
        { deviceId: 'light1', type: 'light', capabilities: [] },
      ],
    };
    await host.ask('hub:h1:hub1', hello);
    await vi.waitFor(async () => expect(await host.ask('device:h1:lux1', { type: 'shadow.get' })).toMatchObject({ ok: true, value: { ok: true } }));
    await host.passivateWhere((id) => id === 'device:h1:lux1');
    store.fail((id) => id === 'device:h1:lux1'); // a Redis blip while lux1 is recovered
    expect(await host.ask('home:h1', { type: 'rules.put', rule: darkHallRule })).toMatchObject({ ok: true, value: { ok: true } });
    await new Promise((r) => setTimeout(r, 100));
    store.heal();
    await host.ask('hub:h1:hub1', hello); // the hub reconnects: no repair either
    await new Promise((r) => setTimeout(r, 100));
    await host.ask('device:h1:lux1', { type: 'report', seq: 1, tsMs: Date.now(), attributes: { illuminance: 10 } });
    await host.ask('device:h1:motion1', { type: 'report', seq: 2, tsMs: Date.now(), attributes: { motion: true } });
    await new Promise((r) => setTimeout(r, 200));
    const decisions = await host.ask('home:h1', { type: 'decisions.list', limit: 10 });
    console.log('failures', store.failures, 'decisions', JSON.stringify(decisions), 'commands', toHub.length);
    expect(toHub.length).toBe(1);
  });
});
