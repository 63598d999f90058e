import { describe, expect, it } from 'vitest';
import { DEFAULT_STORM_CONFIG } from '../../actors/rules/storm-control.ts';
import type { DeviceChanged } from '../../actors/types.ts';
import { HomeSim } from './home-reminder-sim.ts';

const T0 = Date.parse('2024-03-04T10:00:00Z');
const S = 1_000;
const M = 60 * S;

const press = (depth = 0): DeviceChanged => ({
  type: 'device.changed',
  deviceId: 'button1',
  deviceType: 'button',
  changed: {},
  attributes: {},
  event: 'single',
  depth,
  tsMs: 0,
  filtered: true,
});

/** On a press: light on, 5 minutes later light off. */
const hallLight = (mode: string, extra: object = {}) => ({
  id: 'hall',
  name: 'Hall light for 5 minutes',
  mode,
  when: [{ type: 'event', device: 'button1', event: 'single' }],
  then: [
    { type: 'command', device: 'light1', name: 'on', params: {} },
    { type: 'delay', for: '5m' },
    { type: 'command', device: 'light1', name: 'off', params: {} },
  ],
  ...extra,
});

/** A storm config that never gets in the way of these tests. */
const calm = { storm: { ...DEFAULT_STORM_CONFIG, retriggerMax: 1_000, budgetCommands: 1_000 } };

const names = (h: HomeSim) => h.issued.map((c) => `${c.name}@${(c.at - T0) / S}`);

describe('home: delay actions', () => {
  it('runs the actions up to a delay, waits in a run reminder, then runs the rest', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('single') });
    const step = h.send(press(1));
    expect(step.reminders).toEqual([
      {
        op: 'set',
        name: 'run.hall.1',
        at: T0 + 5 * M,
        payload: { step: 2, trigger: { type: 'event', device: 'button1', event: 'single' }, depth: 1 },
      },
    ]);
    expect(names(h)).toEqual(['on@0']);
    h.advance(T0 + 5 * M);
    expect(names(h)).toEqual(['on@0', 'off@300']);
    expect(h.issued.map((c) => c.commandId)).toEqual(['light1~r-hall-1', 'light1~r-hall-2']);
    expect(h.decisions()).toMatchObject([
      { outcome: 'fired', run: { no: 1, step: 0 }, depth: 1, actions: [{ name: 'on' }] },
      { outcome: 'fired', run: { no: 1, step: 2 }, depth: 1, actions: [{ name: 'off' }], at: T0 + 5 * M },
    ]);
    // Commands after the delay carry the causal depth of the firing, like those before it.
    const offTell = h.effects.filter((e) => e.type === 'tell').at(-1) as { msg: { depth: number } };
    expect(offTell.msg.depth).toBe(2);
    expect(h.names()).toEqual([]);
  });

  it('single: ignores a firing while a run waits, saying why', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('single') });
    h.send(press());
    const again = h.send(press(), T0 + M);
    expect(again.reminders).toBeUndefined();
    expect(h.decisions().at(-1)).toMatchObject({ outcome: 'ignored', reason: 'mode single: run 1 is still waiting in a delay' });
    h.advance(T0 + 10 * M);
    h.send(press(), T0 + 10 * M);
    expect(names(h)).toEqual(['on@0', 'off@300', 'on@600']);
  });

  it('restart: cancels the waiting run and starts anew', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('restart') });
    h.send(press());
    const again = h.send(press(), T0 + 2 * M);
    expect(again.reminders).toEqual([
      { op: 'cancel', name: 'run.hall.1' },
      expect.objectContaining({ op: 'set', name: 'run.hall.2', at: T0 + 7 * M }),
    ]);
    expect(h.decisions().at(-1)).toMatchObject({ outcome: 'fired', reason: 'mode restart: cancelled run 1', run: { no: 2 } });
    h.advance(T0 + 20 * M);
    expect(names(h)).toEqual(['on@0', 'on@120', 'off@420']);
  });

  it('queued: runs each firing after the one before, and refuses beyond the queue bound', () => {
    const h = new HomeSim(T0, { ...calm, maxQueuedRuns: 2 });
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued') });
    h.send(press());
    h.send(press(), T0 + M);
    h.send(press(), T0 + 2 * M);
    h.send(press(), T0 + 3 * M);
    expect(h.decisions().map((d) => d.outcome)).toEqual(['fired', 'queued', 'queued', 'ignored']);
    expect(h.decisions().map((d) => d.reason)).toEqual([
      undefined,
      'mode queued: runs after run 1',
      'mode queued: runs after run 1 and the 1 firing(s) queued before it',
      'mode queued: 2 firings are queued already (at most 2)',
    ]);
    expect(h.state.runQueues?.hall).toHaveLength(2);
    h.advance(T0 + 30 * M);
    expect(names(h)).toEqual(['on@0', 'off@300', 'on@300', 'off@600', 'on@600', 'off@900']);
    expect(h.state.runQueues).toBeUndefined();
  });

  it('parallel: runs alongside, at most maxParallelRuns waiting', () => {
    const h = new HomeSim(T0, { ...calm, maxParallelRuns: 2 });
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('parallel') });
    for (let i = 0; i < 3; i++) h.send(press(), T0 + i * M);
    expect(h.decisions().map((d) => d.outcome)).toEqual(['fired', 'fired', 'ignored']);
    h.advance(T0 + 30 * M);
    expect(names(h)).toEqual(['on@0', 'on@60', 'off@300', 'off@360']);
  });

  it('ends waiting and queued runs when their actions or mode change, or the rule is disabled or deleted, logging each cancelled', () => {
    const dim = [
      { type: 'command', device: 'light1', name: 'on', params: {} },
      { type: 'delay', for: '5m' },
      { type: 'command', device: 'light1', name: 'dim', params: {} },
    ];
    for (const [edit, why] of [
      [{ type: 'rules.put', rule: hallLight('queued', { then: dim }) }, 'rule edited'],
      [{ type: 'rules.put', rule: hallLight('parallel') }, 'rule edited'],
      [{ type: 'rules.put', rule: hallLight('queued', { enabled: false }) }, 'rule disabled'],
      [{ type: 'rules.delete', ruleId: 'hall' }, 'rule deleted'],
    ] as const) {
      const h = new HomeSim(T0, calm);
      h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued') });
      h.send(press(1));
      h.send(press(), T0 + M);
      const step = h.send(edit, T0 + 2 * M);
      expect(step.reminders, why).toEqual([{ op: 'cancel', name: 'run.hall.1' }]);
      expect(h.state.runQueues).toBeUndefined();
      expect(h.decisions().slice(-2), why).toEqual([
        expect.objectContaining({
          outcome: 'cancelled',
          ruleId: 'hall',
          at: T0 + 2 * M,
          depth: 1,
          run: { no: 1, step: 2 },
          trigger: { type: 'event', device: 'button1', event: 'single' },
          reason: `${why}: run 1, waiting in a delay to resume at then[2], is cancelled`,
        }),
        expect.objectContaining({ outcome: 'cancelled', reason: `${why}: the firing queued at 2024-03-04T10:01:00.000Z is dropped` }),
      ]);
      expect(h.effects.filter((e) => e.type === 'publish').length).toBe(h.decisions().length);
      h.advance(T0 + 30 * M);
      expect(names(h)).toEqual(['on@0']);
      h.expectReplayIdentical(calm);
    }
  });

  it('keeps waiting runs and queued firings through an edit that leaves then and mode as they were', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued') });
    h.send(press());
    h.send(press(), T0 + M);
    const renamed = h.send({ type: 'rules.put', rule: hallLight('queued', { name: 'Hall', misfireGrace: '1h' }) }, T0 + 2 * M);
    expect(renamed.journal).toBe(true);
    expect(renamed.reminders).toBeUndefined();
    expect(h.state.runQueues?.hall).toHaveLength(1);
    h.advance(T0 + 30 * M);
    expect(names(h)).toEqual(['on@0', 'off@300', 'on@300', 'off@600']);
    expect(h.decisions().filter((d) => d.outcome === 'cancelled')).toEqual([]);
    h.expectReplayIdentical(calm);
  });

  it('changes nothing when the same rule is saved again while a run waits', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('restart') });
    h.send(press());
    const before = h.state;
    // Key order and defaults spelled out make no difference.
    const { then, ...rest } = hallLight('restart');
    const again = h.send({ type: 'rules.put', rule: { then, enabled: true, if: [], ...rest } }, T0 + M);
    expect(again.reply).toMatchObject({ ok: true, value: { created: false, rule: { id: 'hall' } } });
    expect(again.journal).toBe(false);
    expect(again.reminders).toBeUndefined();
    expect(again.effects ?? []).toEqual([]);
    expect(h.state).toBe(before);
    h.advance(T0 + 10 * M);
    expect(names(h)).toEqual(['on@0', 'off@300']);
  });

  it('saving a suspended rule unchanged clears its suspension and keeps its timers', () => {
    const h = new HomeSim(T0, calm);
    const rule = { ...hallLight('single'), when: [...hallLight('single').when, { type: 'cron', expression: '0 12 * * *' }] };
    h.ok('rules.put', { type: 'rules.put', rule });
    h.send(press(DEFAULT_STORM_CONFIG.maxDepth + 1), T0);
    expect(h.state.ruleStatus.hall?.suspended).toBeDefined();
    const step = h.send({ type: 'rules.put', rule }, T0 + 11 * M);
    expect(step.journal).toBe(true);
    expect(step.reminders).toBeUndefined();
    expect(h.state.ruleStatus.hall).toEqual({ recentFirings: [] });
    expect(h.names()).toEqual(['at.hall.1']);
  });

  it('takes each segment’s commands from the budget: a spent budget ends the run', () => {
    const storm = { ...DEFAULT_STORM_CONFIG, budgetCommands: 1, budgetWindowMs: 3_600_000 };
    const h = new HomeSim(T0, { storm });
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('single') });
    h.send(press());
    h.advance(T0 + 5 * M);
    expect(names(h)).toEqual(['on@0']);
    expect(h.decisions().at(-1)).toMatchObject({ outcome: 'budget_exhausted', run: { no: 1, step: 2 }, actions: [] });
    expect(h.names()).toEqual([]);
  });

  it('ends a run whose delay comes due beyond misfireGrace, and starts the next queued one within it', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued', { misfireGrace: '4m' }) });
    h.send(press());
    h.send(press(), T0 + M);
    h.fire('run.hall.1', T0 + 9 * M + 30 * S);
    expect(h.decisions().slice(-2)).toMatchObject([
      { outcome: 'missed', lateMs: 4 * M + 30 * S, run: { no: 1, step: 2 } },
      {
        outcome: 'missed',
        lateMs: 4 * M + 30 * S,
        reason: expect.stringMatching(/^missed: queued at 2024-03-04T10:01:00.000Z, its turn came 4m30s /),
      },
    ]);
    expect(h.state.runQueues).toBeUndefined();
    expect(names(h)).toEqual(['on@0']);

    // Late by less than the grace: the queued firing starts.
    const k = new HomeSim(T0, calm);
    k.ok('rules.put', { type: 'rules.put', rule: hallLight('queued', { misfireGrace: '4m' }) });
    k.send(press());
    k.send(press(), T0 + M);
    k.fire('run.hall.1', T0 + 8 * M);
    expect(k.decisions().slice(-2)).toMatchObject([
      { outcome: 'fired', run: { no: 1, step: 2 } },
      { outcome: 'fired', run: { no: 2, step: 0 }, reason: 'mode queued: queued at 2024-03-04T10:01:00.000Z' },
    ]);
  });

  it('drops stale queued firings after an outage instead of starting them hours later', () => {
    const h = new HomeSim(T0, calm);
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued') });
    for (let i = 0; i < 3; i++) h.send(press(), T0 + i * S);
    // The node was down 3 hours: the run's delay comes due 2h55m late, beyond the default grace of 10m.
    h.fire('run.hall.1', T0 + 3 * 60 * M);
    expect(h.decisions().map((d) => d.outcome)).toEqual(['fired', 'queued', 'queued', 'missed', 'missed', 'missed']);
    expect(names(h)).toEqual(['on@0']);
    expect(h.names()).toEqual([]);
    expect(h.state.runQueues).toBeUndefined();
  });

  it('never drops a queued firing that waits its turn on time, however long the queue', () => {
    const h = new HomeSim(T0, { ...calm, maxQueuedRuns: 5 });
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('queued', { misfireGrace: '1m' }) });
    for (let i = 0; i < 5; i++) h.send(press(), T0 + i * S);
    h.advance(T0 + 60 * M);
    expect(names(h).filter((n) => n.startsWith('on'))).toEqual(['on@0', 'on@300', 'on@600', 'on@900', 'on@1200']);
    expect(h.decisions().filter((d) => d.outcome === 'missed')).toEqual([]);
  });

  it('drops the runs of a rule that storm control suspends', () => {
    const storm = { ...DEFAULT_STORM_CONFIG, retriggerMax: 2, budgetCommands: 1_000 };
    const h = new HomeSim(T0, { storm });
    h.ok('rules.put', { type: 'rules.put', rule: hallLight('parallel') });
    for (let i = 0; i < 3; i++) h.send(press(), T0 + i * S);
    expect(h.decisions().map((d) => d.outcome)).toEqual(['fired', 'fired', 'suspended']);
    expect(h.names()).toEqual([]);
    h.advance(T0 + 30 * M);
    expect(names(h)).toEqual(['on@0', 'on@1']);
  });

  it('a rule that starts with a delay waits before its first command', () => {
    const h = new HomeSim(T0, calm);
    const rule = {
      ...hallLight('single'),
      then: [
        { type: 'delay', for: '30s' },
        { type: 'command', device: 'light1', name: 'on', params: {} },
      ],
    };
    h.ok('rules.put', { type: 'rules.put', rule });
    h.send(press());
    expect(h.decisions()).toMatchObject([{ outcome: 'fired', actions: [], run: { no: 1, step: 0 } }]);
    h.advance(T0 + M);
    expect(names(h)).toEqual(['on@30']);
  });
});
