/** Automation metrics: rule decisions by outcome and commands by final status, counted once per durable step and never on replay. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DECISION_OUTCOMES } from '../../actors/rules/decision-log.ts';
import type { CommandDelivery, DomainEffect } from '../../actors/types.ts';
import { createActorStack } from '../../node/actor-stack.ts';
import { AutomationMetrics, FINISHED_COMMAND_STATUSES } from '../../node/automation-metrics.ts';
import { createEffectDispatcher } from '../../node/effect-dispatcher.ts';
import type { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { PersistencePort } from '../../runtime/persistence-port.ts';
import { GatedStore } from '../support/gated-store.ts';

/** Every series of `name` as `label value → count`. */
async function series(registry: Registry, name: string, label: string): Promise<Record<string, number>> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return Object.fromEntries(values.map((v) => [String(v.labels[label]), v.value]));
}
const ruleRuns = (registry: Registry) => series(registry, 'iot_rule_runs_total', 'outcome');
const commandsFinished = (registry: Registry) => series(registry, 'iot_commands_finished_total', 'status');

const zeros = (keys: readonly string[]): Record<string, number> => Object.fromEntries(keys.map((k) => [k, 0]));
const publish = (topic: string, data: unknown): Extract<DomainEffect, { type: 'publish' }> => ({
  type: 'publish',
  homeId: 'h1',
  topic,
  data,
});

describe('AutomationMetrics', () => {
  it('creates every outcome and final status series at 0 before the first event, once per registry', async () => {
    const registry = new Registry();
    const metrics = AutomationMetrics.of(registry);
    expect(AutomationMetrics.of(registry)).toBe(metrics);
    expect(await ruleRuns(registry)).toEqual(zeros(DECISION_OUTCOMES));
    expect(await commandsFinished(registry)).toEqual(zeros(['succeeded', 'failed', 'expired']));
    expect(FINISHED_COMMAND_STATUSES).toEqual(['succeeded', 'failed', 'expired']);
    const text = await registry.metrics();
    for (const outcome of DECISION_OUTCOMES) expect(text).toContain(`iot_rule_runs_total{outcome="${outcome}"} 0`);
    expect(text).toContain('iot_commands_finished_total{status="expired"} 0');
  });

  it('counts each decision by outcome and each command that reached a final status, and nothing else', async () => {
    const registry = new Registry();
    const metrics = AutomationMetrics.of(registry);
    for (const outcome of DECISION_OUTCOMES) metrics.observe(publish('decision', { ruleId: 'r1', outcome }));
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'fired' }));
    for (const status of ['queued', 'sent', 'succeeded', 'failed', 'expired', 'failed']) {
      metrics.observe(publish('command.status', { deviceId: 'd1', commandId: 'c1', status }));
    }
    // Neither counts: another topic with the same fields, an unknown outcome or status, no data.
    metrics.observe(publish('device.shadow', { outcome: 'fired', status: 'succeeded' }));
    metrics.observe(publish('decision', { outcome: 'exploded' }));
    metrics.observe(publish('command.status', { status: 'toString' }));
    metrics.observe(publish('decision', null));
    metrics.observe(publish('command.status', undefined));
    expect(await ruleRuns(registry)).toEqual({ ...Object.fromEntries(DECISION_OUTCOMES.map((o) => [o, 1])), fired: 2 });
    expect(await commandsFinished(registry)).toEqual({ succeeded: 1, failed: 2, expired: 1 });
  });

  it('counts a run once, when it starts: not the decisions it logs when it resumes after a delay, whatever their outcome', async () => {
    const registry = new Registry();
    const metrics = AutomationMetrics.of(registry);
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'fired', run: { no: 1, step: 0 } }));
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'fired', run: { no: 1, step: 2 } }));
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'budget_exhausted', run: { no: 1, step: 4 } }));
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'missed', run: { no: 2, step: 2 } }));
    metrics.observe(publish('decision', { ruleId: 'r1', outcome: 'cancelled', run: { no: 3, step: 2 } }));
    // A decision without a run (a rule without delays), or with a malformed one, counts.
    metrics.observe(publish('decision', { ruleId: 'r2', outcome: 'fired' }));
    metrics.observe(publish('decision', { ruleId: 'r2', outcome: 'budget_exhausted', run: { step: '2' } }));
    metrics.observe(publish('decision', { ruleId: 'r2', outcome: 'cancelled', run: null }));
    expect(await ruleRuns(registry)).toEqual({ ...zeros(DECISION_OUTCOMES), fired: 2, budget_exhausted: 1, cancelled: 1 });
  });

  it('is fed by the effect dispatcher from the publish effects it runs, before they are published', async () => {
    const registry = new Registry();
    const published: string[] = [];
    const dispatch = createEffectDispatcher(
      {
        deliver: () => ({ ok: true, value: undefined }),
        hubCommands: { send: () => {} },
        publish: (_homeId, topic) => void published.push(topic),
      },
      silentLogger,
      AutomationMetrics.of(registry),
    );
    dispatch('home:h1', [publish('decision', { outcome: 'suspended' }), { type: 'notify', homeId: 'h1', message: 'm' }]);
    dispatch('device:h1:d1', [publish('command.status', { status: 'succeeded' })]);
    expect(published).toEqual(['decision', 'notify', 'command.status']);
    expect((await ruleRuns(registry)).suspended).toBe(1);
    expect((await commandsFinished(registry)).succeeded).toBe(1);
  });
});

const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** An actor stack (every behaviour, the node's dispatcher) with its own registry over `store`. */
function stackOver(store: PersistencePort) {
  const registry = new Registry();
  const toHub: CommandDelivery[] = [];
  const { host } = createActorStack({
    store,
    logger: silentLogger,
    registry,
    hubCommands: { send: (_homeId, _hubId, command) => void toHub.push(command) },
    publish: () => {},
  });
  hosts.push(host);
  return { host, registry, toHub };
}

const motionRule = {
  id: 'hall-light',
  name: 'Hall light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
};

/** A home with a hub online, a motion sensor, a light and the motion rule. */
async function homeWithRule(host: ActorHost): Promise<void> {
  expect(await host.ask('home:h1', { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' })).toMatchObject({ ok: true });
  const devices = [
    { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion'] },
    { deviceId: 'light1', type: 'light', capabilities: ['on'] },
  ];
  expect(await host.ask('hub:h1:hub1', { type: 'hub.hello', nodeId: 'n1', devices })).toMatchObject({ ok: true });
  expect(await host.ask('home:h1', { type: 'rules.put', rule: motionRule })).toMatchObject({ ok: true, value: { ok: true } });
}

describe('automation metrics on the actor stack', () => {
  it('counts a firing and its command once, not again for a re-sent report, a repeated result or a replay after restart', async () => {
    const store = new GatedStore();
    const { host, registry, toHub } = stackOver(store);
    await homeWithRule(host);
    const report = { type: 'report', seq: 1, tsMs: Date.now(), attributes: { motion: true } };
    expect(await host.ask('device:h1:motion1', report)).toMatchObject({ ok: true, value: { ok: true, value: { applied: true } } });
    await vi.waitFor(() => expect(toHub).toHaveLength(1));
    expect(await ruleRuns(registry)).toMatchObject({ fired: 1, condition_false: 0 });
    // The hub re-sends the report (its ack was lost): acknowledged, not applied, not counted.
    expect(await host.ask('device:h1:motion1', report)).toMatchObject({ ok: true, value: { ok: true, value: { applied: false } } });

    const result = { type: 'command.result', commandId: toHub[0]!.commandId, ok: true };
    expect(await host.ask('device:h1:light1', result)).toMatchObject({ ok: true, value: { ok: true, value: { status: 'succeeded' } } });
    // The hub sends its result again (after a reconnect): the command is already terminal.
    expect(await host.ask('device:h1:light1', result)).toMatchObject({ ok: true, value: { ok: true, value: { status: 'succeeded' } } });
    expect(await ruleRuns(registry)).toEqual({ ...zeros(DECISION_OUTCOMES), fired: 1 });
    expect(await commandsFinished(registry)).toEqual({ succeeded: 1, failed: 0, expired: 0 });
    await host.close();

    // A new host over the same store replays every journal (the decision and the result among
    // them) when it recovers the actors: a replay counts nothing.
    const again = stackOver(store);
    expect(await again.host.ask('home:h1', { type: 'decisions.list', limit: 10 })).toMatchObject({
      ok: true,
      value: { ok: true, value: [{ outcome: 'fired' }] },
    });
    expect(await again.host.ask('device:h1:light1', { type: 'command.get', commandId: toHub[0]!.commandId })).toMatchObject({
      ok: true,
      value: { ok: true, value: { status: 'succeeded' } },
    });
    expect(await ruleRuns(again.registry)).toEqual(zeros(DECISION_OUTCOMES));
    expect(await commandsFinished(again.registry)).toEqual(zeros(FINISHED_COMMAND_STATUSES));
  });

  it('counts a rule with delays once per run, however many steps it takes', async () => {
    const { host, registry, toHub } = stackOver(new GatedStore());
    await homeWithRule(host);
    const stepped = {
      ...motionRule,
      then: [
        { type: 'command', device: 'light1', name: 'set', params: { on: true } },
        { type: 'delay', for: '100ms' },
        { type: 'command', device: 'light1', name: 'set', params: { on: false } },
        { type: 'delay', for: '100ms' },
        { type: 'command', device: 'light1', name: 'set', params: { on: true } },
      ],
    };
    expect(await host.ask('home:h1', { type: 'rules.put', rule: stepped })).toMatchObject({ ok: true, value: { ok: true } });
    const report = { type: 'report', seq: 1, tsMs: Date.now(), attributes: { motion: true } };
    expect(await host.ask('device:h1:motion1', report)).toMatchObject({ ok: true, value: { ok: true, value: { applied: true } } });
    // Three steps, each logged `fired` (run 1 at steps 0, 2 and 4) and each issuing its command.
    await vi.waitFor(async () => {
      const listed = await host.ask('home:h1', { type: 'decisions.list', limit: 10 });
      const entries = (listed as { value: { value: { outcome: string; run?: { step: number } }[] } }).value.value;
      expect(entries.map((e) => [e.outcome, e.run?.step])).toEqual([
        ['fired', 4],
        ['fired', 2],
        ['fired', 0],
      ]);
    });
    expect(toHub).toHaveLength(3);
    expect(await ruleRuns(registry)).toEqual({ ...zeros(DECISION_OUTCOMES), fired: 1 });
  });

  it('counts nothing for a step whose window was not written, and once when the retried step is', async () => {
    const store = new GatedStore();
    const { host, registry } = stackOver(store);
    await homeWithRule(host);
    const issue = {
      type: 'command.issue',
      commandId: 'light1~c1',
      name: 'set',
      params: { on: false },
      ttlMs: 60_000,
      depth: 0,
      source: { kind: 'app' },
    };
    expect(await host.ask('device:h1:light1', issue)).toMatchObject({ ok: true, value: { ok: true, value: { status: 'sent' } } });

    store.fail((id) => id === 'device:h1:light1');
    const result = { type: 'command.result', commandId: 'light1~c1', ok: false, error: 'relay stuck' };
    expect(await host.ask('device:h1:light1', result)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(await commandsFinished(registry)).toEqual(zeros(FINISHED_COMMAND_STATUSES));

    store.heal();
    expect(await host.ask('device:h1:light1', result)).toMatchObject({ ok: true, value: { ok: true, value: { status: 'failed' } } });
    expect(await commandsFinished(registry)).toEqual({ succeeded: 0, failed: 1, expired: 0 });
  });
});
