import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CommandDelivery } from '../../actors/types.ts';
import { createActorStack } from '../../node/actor-stack.ts';
import type { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';

interface Sent {
  homeId: string;
  hubId: string;
  command: CommandDelivery;
}

const hosts: ActorHost[] = [];

function startNode(store: MemoryStore) {
  const toHub: Sent[] = [];
  const published: { homeId: string; topic: string; data: unknown }[] = [];
  const { host } = createActorStack(
    {
      store,
      logger: silentLogger,
      registry: new Registry(),
      hubCommands: { send: (homeId, hubId, command) => void toHub.push({ homeId, hubId, command }) },
      publish: (homeId, topic, data) => published.push({ homeId, topic, data }),
    },
    { snapshotEvery: 3 },
  );
  hosts.push(host);
  return { host, toHub, published };
}

const motionRule = {
  id: 'hall-light',
  name: 'Hall light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
};

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

describe('one node: device, home and hub actors on the actor host', () => {
  it('turns a motion report into a light command, completes it, logs the decision and survives a restart', async () => {
    const store = new MemoryStore();
    const { host, toHub, published } = startNode(store);
    expect(await host.ask('home:h1', { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' })).toMatchObject({ ok: true });
    const hello = await host.ask('hub:h1:hub1', {
      type: 'hub.hello',
      nodeId: 'n1',
      devices: [
        { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
        { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
      ],
    });
    expect(hello).toEqual({ ok: true, value: { ok: true, value: { lastDurableSeq: 0 } } });
    expect(await host.ask('home:h1', { type: 'rules.put', rule: motionRule })).toMatchObject({ ok: true, value: { ok: true } });

    const report = { type: 'report', seq: 1, tsMs: Date.now(), attributes: { motion: true, illuminance: 12 } };
    expect(await host.ask('device:h1:motion1', report)).toMatchObject({ ok: true, value: { ok: true, value: { applied: true } } });

    await vi.waitFor(() => expect(toHub).toHaveLength(1));
    const sent = toHub[0]!;
    expect(sent).toMatchObject({
      homeId: 'h1',
      hubId: 'hub1',
      command: { deviceId: 'light1', name: 'set', params: { on: true, brightness: 60 } },
    });

    // The same report again (a hub re-send): acknowledged, not applied, no second command.
    expect(await host.ask('device:h1:motion1', report)).toMatchObject({ ok: true, value: { ok: true, value: { applied: false } } });

    const done = await host.ask('device:h1:light1', { type: 'command.result', commandId: sent.command.commandId, ok: true });
    expect(done).toMatchObject({ ok: true, value: { ok: true, value: { status: 'succeeded' } } });
    const decisions = await host.ask('home:h1', { type: 'decisions.list', limit: 10 });
    expect(decisions).toMatchObject({ ok: true, value: { ok: true, value: [{ ruleId: 'hall-light', outcome: 'fired' }] } });
    expect(published.map((p) => p.topic)).toEqual(expect.arrayContaining(['device.shadow', 'decision', 'command.status']));
    // A later report of the same device is a marker: effects of one actor run in step order, so once
    // its shadow is published, a re-send that had been applied would have published one before it.
    expect(
      await host.ask('device:h1:motion1', { type: 'report', seq: 2, tsMs: Date.now(), attributes: { illuminance: 13 } }),
    ).toMatchObject({
      ok: true,
      value: { ok: true, value: { applied: true } },
    });
    const motionShadows = () =>
      published.filter((p) => p.topic === 'device.shadow' && (p.data as { deviceId?: string }).deviceId === 'motion1');
    await vi.waitFor(() => expect(motionShadows().at(-1)?.data).toMatchObject({ reported: { illuminance: 13 } }));
    expect(motionShadows()).toHaveLength(2);
    expect(toHub).toHaveLength(1);

    const before = await Promise.all(['device:h1:motion1', 'device:h1:light1'].map((id) => host.ask(id, { type: 'shadow.get' })));
    await host.close();

    // A new host on the same store recovers every actor from snapshot + journal.
    const again = startNode(store);
    const after = await Promise.all(['device:h1:motion1', 'device:h1:light1'].map((id) => again.host.ask(id, { type: 'shadow.get' })));
    expect(after).toEqual(before);
    expect(await again.host.ask('home:h1', { type: 'decisions.list', limit: 10 })).toEqual(decisions);
    expect(await again.host.ask('device:h1:light1', { type: 'command.get', commandId: sent.command.commandId })).toMatchObject({
      ok: true,
      value: { ok: true, value: { status: 'succeeded' } },
    });
    expect(await again.host.ask('home:h1', { type: 'home.get' })).toMatchObject({
      ok: true,
      value: { ok: true, value: { devices: expect.arrayContaining([{ deviceId: 'light1', type: 'light', hubId: 'hub1' }]) } },
    });
  });

  it('expires a command the hub never completes once its TTL has passed', async () => {
    const { host, published } = startNode(new MemoryStore());
    await host.ask('hub:h2:hub1', {
      type: 'hub.hello',
      nodeId: 'n1',
      devices: [{ deviceId: 'plug1', type: 'plug', capabilities: ['on'] }],
    });
    const commandId = 'plug1~c1';
    const issued = await host.ask('device:h2:plug1', {
      type: 'command.issue',
      commandId,
      name: 'set',
      params: { on: false },
      ttlMs: 50,
      depth: 0,
      source: { kind: 'app' },
    });
    expect(issued).toMatchObject({ ok: true, value: { ok: true, value: { status: 'sent' } } });
    await vi.waitFor(async () =>
      expect(await host.ask('device:h2:plug1', { type: 'command.get', commandId })).toMatchObject({
        ok: true,
        value: { ok: true, value: { status: 'expired' } },
      }),
    );
    expect(published).toContainEqual(
      expect.objectContaining({ topic: 'command.status', data: expect.objectContaining({ commandId, status: 'expired' }) }),
    );
  });
});
