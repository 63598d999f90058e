/** The effect dispatcher: each domain effect to its port, in order; one failing effect does not stop the rest. */
import { describe, expect, it } from 'vitest';
import type { CommandDelivery, DomainEffect } from '../../actors/types.ts';
import { createEffectDispatcher, eventLogOf, tellOfEffect, type EffectPorts } from '../../node/effect-dispatcher.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { runtimeError } from '../../runtime/result.ts';

const command: CommandDelivery = {
  commandId: 'light1~c1',
  deviceId: 'light1',
  name: 'set',
  params: { on: true },
  expiresAtMs: 1_900_000_000_000,
};

function recording(overrides: Partial<EffectPorts> = {}) {
  const calls: unknown[][] = [];
  const ports: EffectPorts = {
    deliver: (to, msg) => (calls.push(['deliver', to, msg]), { ok: true, value: undefined }),
    hubCommands: { send: (homeId, hubId, c) => void calls.push(['hub', homeId, hubId, c]) },
    publish: (homeId, topic, data) => void calls.push(['publish', homeId, topic, data]),
    ...overrides,
  };
  return { calls, dispatch: createEffectDispatcher(ports, silentLogger) };
}

describe('createEffectDispatcher', () => {
  it('runs every effect in order on its port: tells, hub commands, notifications and published changes', () => {
    const { calls, dispatch } = recording();
    const effects: DomainEffect[] = [
      { type: 'tell', to: 'home:h1', msg: { type: 'x' } },
      { type: 'hub.command', homeId: 'h1', hubId: 'hub1', command },
      { type: 'notify', homeId: 'h1', message: 'door open', ruleId: 'r1' },
      { type: 'publish', homeId: 'h1', topic: 'device.shadow', data: { v: 1 } },
    ];
    dispatch('device:h1:light1', effects);
    expect(calls).toEqual([
      ['deliver', 'home:h1', { type: 'x' }],
      ['hub', 'h1', 'hub1', command],
      ['publish', 'h1', 'notify', { message: 'door open', ruleId: 'r1' }],
      ['publish', 'h1', 'device.shadow', { v: 1 }],
    ]);
  });

  it('sends a hub.desired effect to the hub delivery as a desired delta, and drops it on a stack without hub streams', () => {
    const delta = { on: true, level: 30 };
    const effect: DomainEffect = { type: 'hub.desired', homeId: 'h1', hubId: 'hub1', deviceId: 'light1', version: 5, delta };
    const sent: unknown[][] = [];
    const { calls, dispatch } = recording({
      hubCommands: { send: () => {}, sendDesired: (homeId, hubId, d) => void sent.push([homeId, hubId, d]) },
    });
    dispatch('device:h1:light1', [effect]);
    expect(sent).toEqual([['h1', 'hub1', { deviceId: 'light1', version: 5, delta }]]);
    expect(calls).toEqual([]);
    // Without sendDesired (no hub streams on this stack), nothing runs and nothing throws.
    const bare = recording();
    bare.dispatch('device:h1:light1', [effect, { type: 'tell', to: 'home:h1', msg: { type: 'x' } }]);
    expect(bare.calls).toEqual([['deliver', 'home:h1', { type: 'x' }]]);
  });

  it('goes on after an effect that throws or is refused, and after an unknown effect', () => {
    const { calls, dispatch } = recording({
      deliver: () => runtimeError('overloaded', 'full'),
      hubCommands: {
        send: () => {
          throw new Error('boom');
        },
      },
    });
    dispatch('device:h1:light1', [
      { type: 'tell', to: 'home:h1', msg: {} },
      { type: 'hub.command', homeId: 'h1', hubId: 'hub1', command },
      { type: 'mystery' },
      { type: 'publish', homeId: 'h1', topic: 't', data: 1 },
    ]);
    expect(calls).toEqual([['publish', 'h1', 't', 1]]);
  });
});

describe('tellOfEffect', () => {
  it('names the target of a tell (the host keeps those within the shard) and nothing else', () => {
    const tell: DomainEffect = { type: 'tell', to: 'home:h1', msg: { type: 'x' } };
    expect(tellOfEffect(tell)).toEqual({ to: 'home:h1', msg: { type: 'x' } });
    expect(tellOfEffect({ type: 'notify', homeId: 'h1', ruleId: 'r', message: 'm' } satisfies DomainEffect)).toBeUndefined();
  });
});

describe('eventLogOf', () => {
  it("names the home's event log entry of what apps follow (publish, notify), as the stream sends it, and nothing else", () => {
    expect(eventLogOf({ type: 'publish', homeId: 'h1', topic: 'device.shadow', data: { version: 2 } })).toEqual({
      log: 'h1',
      entry: { topic: 'device.shadow', data: { version: 2 } },
    });
    const notify = eventLogOf({ type: 'notify', homeId: 'h1', message: 'hi', ruleId: 'r1' });
    expect(notify).toEqual({ log: 'h1', entry: { topic: 'notify', data: { message: 'hi', ruleId: 'r1' } } });
    // Without a rule id the stream's JSON has none (as the dispatcher publishes it).
    expect(JSON.stringify(eventLogOf({ type: 'notify', homeId: 'h1', message: 'hi' })!.entry)).toBe(
      '{"topic":"notify","data":{"message":"hi"}}',
    );
    expect(eventLogOf({ type: 'tell', to: 'home:h1', msg: {} })).toBeUndefined();
    expect(eventLogOf({ type: 'hub.command', homeId: 'h1', hubId: 'hub1', command })).toBeUndefined();
  });
});
