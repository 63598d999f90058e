/**
 * No rule fires because a value was re-reported unchanged: the hub, device and home reducers run
 * together through a small in-test host that routes `tell` effects; a device going offline, its
 * hub reconnecting and re-reporting the same values (or an `online` flip) is not an attribute change.
 */
import { describe, expect, it } from 'vitest';
import { deviceActorId, homeActorId, hubActorId } from '../../actors/actor-id.ts';
import { deviceBehavior } from '../../actors/device.ts';
import type { DeviceMsg, DeviceState } from '../../actors/device-state.ts';
import { homeBehavior } from '../../actors/home.ts';
import type { HomeState } from '../../actors/home-messages.ts';
import { hubBehavior } from '../../actors/hub.ts';
import type { DomainEffect, Value } from '../../actors/types.ts';

const NOW = Date.parse('2024-01-15T12:00:00Z');
const HOME = homeActorId('h1');
const HUB = hubActorId('h1', 'hub1');
const DOOR = deviceActorId('h1', 'door1');

interface Step {
  state: unknown;
  effects?: readonly DomainEffect[];
}
type AnyBehavior = {
  initial(id: string): unknown;
  receive(s: unknown, m: unknown, ctx: { id: string; now: number; replaying: boolean }): Step;
};
const behaviorOf = (id: string): AnyBehavior =>
  id.startsWith('home:') ? homeBehavior : id.startsWith('hub:') ? hubBehavior : deviceBehavior;

/** Delivers each step's `tell` effects in order after it, as the real host does once the step is durable. */
class TestHost {
  readonly states = new Map<string, unknown>();
  readonly handled: { to: string; msg: { type: string } }[] = [];

  send(to: string, msg: unknown): void {
    const queue: [string, unknown][] = [[to, msg]];
    while (queue.length > 0) {
      const [id, m] = queue.shift()!;
      const b = behaviorOf(id);
      const step = b.receive(this.states.get(id) ?? b.initial(id), m, { id, now: NOW, replaying: false });
      this.states.set(id, step.state);
      this.handled.push({ to: id, msg: m as { type: string } });
      for (const e of step.effects ?? []) if (e.type === 'tell') queue.push([e.to, e.msg]);
    }
  }

  /** Commands the home's rules issued since `from` (an index into `handled`). */
  commandsSince(from: number): string[] {
    return this.handled.slice(from).flatMap((h) => (h.msg.type === 'command.issue' ? [h.to] : []));
  }
  /** Attribute changes that reached the home since `from`. */
  changesToHome(from: number): unknown[] {
    return this.handled
      .slice(from)
      .filter((h) => h.to === HOME && (h.msg.type === 'device.changed' || h.msg.type === 'device.changes'))
      .map((h) => h.msg);
  }
  home(): HomeState {
    return this.states.get(HOME) as HomeState;
  }
  device(): DeviceState {
    return this.states.get(DOOR) as DeviceState;
  }
}

let seq = 0;
const report = (attributes: Record<string, Value>): DeviceMsg => ({ type: 'report.batch', items: [{ seq: ++seq, tsMs: NOW, attributes }] });
const hello = (sessionId: string) => ({
  type: 'hub.hello',
  nodeId: 'n1',
  sessionId,
  devices: [{ deviceId: 'door1', type: 'contact_sensor', capabilities: ['open'] }],
});

/** A home whose rules fire on any change of door1.open and on it turning true; door1 reported closed. */
function flat(): TestHost {
  const h = new TestHost();
  h.send(HOME, { type: 'home.upsert', name: 'Flat', timezone: 'UTC' });
  for (const rule of [
    {
      id: 'any',
      name: 'Any change',
      when: [{ type: 'attribute', device: 'door1', attribute: 'open' }],
      then: [{ type: 'notify', message: 'door' }],
    },
    {
      id: 'opened',
      name: 'Opened',
      when: [{ type: 'attribute', device: 'door1', attribute: 'open', to: true }],
      then: [{ type: 'command', device: 'siren1', name: 'chime' }],
    },
  ])
    h.send(HOME, { type: 'rules.put', rule });
  h.send(HUB, hello('s1'));
  h.send(DOOR, report({ open: false, battery: 90 }));
  return h;
}

const decisionsOf = (h: TestHost): number => h.home().decisions.entries.length;

describe('re-reported values are not attribute changes', () => {
  it('a real change still fires the rules (the test can see a firing)', () => {
    const h = flat();
    const [from, decided] = [h.handled.length, decisionsOf(h)];
    h.send(DOOR, report({ open: true }));
    expect(h.commandsSince(from)).toEqual([deviceActorId('h1', 'siren1')]);
    expect(decisionsOf(h)).toBe(decided + 2);
  });

  it('the same values re-reported after the hub disconnected and reconnected reach no rule', () => {
    const h = flat();
    h.send(DOOR, report({ open: true }));
    const [from, decided] = [h.handled.length, decisionsOf(h)];
    h.send(HUB, { type: 'hub.disconnect', nodeId: 'n1', sessionId: 's1' });
    expect(h.device()).toMatchObject({ online: false, hubOnline: false });
    h.send(HUB, hello('s2'));
    expect(h.device().hubOnline).toBe(true);
    h.send(DOOR, report({ open: true, battery: 90 }));
    expect(h.device().online).toBe(true);
    expect(h.changesToHome(from)).toEqual([]);
    expect(h.commandsSince(from)).toEqual([]);
    expect(decisionsOf(h)).toBe(decided);
  });

  it('a hub reconnecting over a stream never seen to close, then re-reporting, fires nothing', () => {
    const h = flat();
    const [from, decided] = [h.handled.length, decisionsOf(h)];
    h.send(HUB, { ...hello('s2'), nodeId: 'n2' });
    h.send(DOOR, report({ open: false, battery: 90 }));
    expect(h.changesToHome(from)).toEqual([]);
    expect(decisionsOf(h)).toBe(decided);
  });

  it('the online flip alone is no attribute change: a device offline and back with one changed value tells only that value', () => {
    const h = flat();
    h.send(HUB, { type: 'hub.disconnect', nodeId: 'n1', sessionId: 's1' });
    h.send(HUB, hello('s2'));
    const from = h.handled.length;
    h.send(DOOR, report({ open: true, battery: 90 }));
    const changes = h.changesToHome(from) as { changes: { changed: Record<string, Value> }[] }[];
    expect(changes.flatMap((c) => c.changes.map((x) => x.changed))).toEqual([{ open: true }]);
    expect(h.commandsSince(from)).toEqual([deviceActorId('h1', 'siren1')]);
  });

  it('a device that has no watch from its home yet (state from before watches) forwards no unchanged re-report either', () => {
    let s = deviceBehavior.initial(DOOR);
    const run = (m: DeviceMsg) => (s = deviceBehavior.receive(s, m, { id: DOOR, now: NOW, replaying: false }).state);
    run({ type: 'device.attach', hubId: 'hub1', deviceType: 'contact_sensor', capabilities: ['open'] });
    run({ type: 'hub.connection', online: true, hubId: 'hub1' });
    run(report({ open: true }));
    run({ type: 'hub.connection', online: false, hubId: 'hub1' });
    run({ type: 'hub.connection', online: true, hubId: 'hub1' });
    expect(s.watch).toBeUndefined();
    const step = deviceBehavior.receive(s, report({ open: true }), { id: DOOR, now: NOW, replaying: false });
    expect(step.state.online).toBe(true);
    expect((step.effects ?? []).filter((e) => e.type === 'tell')).toEqual([]);
  });
});
