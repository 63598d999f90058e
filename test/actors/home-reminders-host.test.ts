/** The home's timers through the real actor host (memory store): reminders set by steps fire once, and survive a recovery. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { homeBehavior } from '../../actors/home.ts';
import type { DecisionEntry } from '../../actors/rules/decision-log.ts';
import type { DeviceChanged } from '../../actors/types.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';

const HOME = 'home:h1';
const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

function start(store: MemoryStore, effects: unknown[]): ActorHost {
  const host = new ActorHost({
    behaviors: [homeBehavior],
    store,
    logger: silentLogger,
    registry: new Registry(),
    onEffects: (_id, es) => effects.push(...es),
  });
  hosts.push(host);
  return host;
}

async function value(host: ActorHost, msg: unknown): Promise<unknown> {
  const r = await host.ask(HOME, msg);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true, value: { ok: true } });
  return (r as { value: { value: unknown } }).value.value;
}

const open: DeviceChanged = {
  type: 'device.changed',
  deviceId: 'door1',
  deviceType: 'contact',
  changed: { contact: 'open' },
  attributes: { contact: 'open' },
  depth: 0,
  tsMs: 0,
  filtered: true,
};

describe('home timers on the actor host', () => {
  it('fires a for rule once, from a reminder the step set', async () => {
    const store = new MemoryStore();
    const effects: unknown[] = [];
    const host = start(store, effects);
    await value(host, { type: 'home.upsert', name: 'Flat', timezone: 'UTC' });
    await value(host, {
      type: 'rules.put',
      rule: {
        id: 'door',
        name: 'Door',
        when: [{ type: 'attribute', device: 'door1', attribute: 'contact', to: 'open', for: '300ms' }],
        then: [{ type: 'command', device: 'siren1', name: 'beep', params: {} }],
      },
    });
    await value(host, open);
    await vi.waitFor(async () => {
      const decisions = (await value(host, { type: 'decisions.list' })) as DecisionEntry[];
      expect(decisions.map((d) => d.outcome)).toEqual(['fired']);
    });
    const commands = () => effects.filter((e) => (e as { msg?: { type?: string } }).msg?.type === 'command.issue');
    expect(commands()).toHaveLength(1);
  });

  it('resumes a run waiting in a delay after the home is recovered on another host, once', async () => {
    const store = new MemoryStore();
    const before: unknown[] = [];
    const first = start(store, before);
    await value(first, { type: 'home.upsert', name: 'Flat', timezone: 'UTC' });
    await value(first, {
      type: 'rules.put',
      rule: {
        id: 'hall',
        name: 'Hall',
        when: [{ type: 'event', device: 'button1', event: 'single' }],
        then: [
          { type: 'command', device: 'light1', name: 'on', params: {} },
          { type: 'delay', for: '400ms' },
          { type: 'command', device: 'light1', name: 'off', params: {} },
        ],
      },
    });
    await value(first, { ...open, deviceId: 'button1', changed: {}, attributes: {}, event: 'single' });
    await first.close();
    const after: unknown[] = [];
    const second = start(store, after);
    // Reading the home activates it; its pending reminders are scheduled from its recovered state.
    await value(second, { type: 'home.get' });
    await vi.waitFor(async () => {
      const decisions = (await value(second, { type: 'decisions.list' })) as DecisionEntry[];
      expect(decisions.map((d) => [d.outcome, d.run?.step])).toEqual([
        ['fired', 2],
        ['fired', 0],
      ]);
    });
    const names = (es: unknown[]) =>
      es.flatMap((e) => {
        const msg = (e as { msg?: { type?: string; name?: string } }).msg;
        return msg?.type === 'command.issue' ? [msg.name] : [];
      });
    expect(names(before)).toEqual(['on']);
    expect(names(after)).toEqual(['off']);
  });
});
