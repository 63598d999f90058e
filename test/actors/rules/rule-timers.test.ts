import { describe, expect, it } from 'vitest';
import { segmentOf } from '../../../actors/rules/action-plan.ts';
import { appendDecision, emptyDecisionLog, readDecisions, type DecisionEntry } from '../../../actors/rules/decision-log.ts';
import { immediateTriggers, misfireGraceMs, parseTimerName, timerName } from '../../../actors/rules/rule-timers.ts';
import type { Action, Rule } from '../../../actors/rules/rule-types.ts';

const rule: Rule = {
  id: 'r_1-x',
  name: 'R',
  enabled: true,
  mode: 'single',
  when: [
    { type: 'attribute', device: 'd1', attribute: 'a', for: '5s' },
    { type: 'attribute', device: 'd1', attribute: 'b' },
    { type: 'time', at: '07:00' },
    { type: 'event', device: 'd2', event: 'e' },
  ],
  if: [],
  then: [{ type: 'notify', message: 'x' }],
};

describe('rule timer names', () => {
  it('round-trips kind, rule id and number, and refuses any other name', () => {
    for (const kind of ['for', 'at', 'run'] as const) {
      expect(parseTimerName(timerName(kind, 'r_1-x', 12))).toEqual({ kind, ruleId: 'r_1-x', n: 12 });
    }
    for (const name of ['~wake', '~out.3', 'at.r1', 'at.r1.x', 'at..1', 'soon.r1.1', 'run.r1.1.2', 'run.r1.-1']) {
      expect(parseTimerName(name), name).toBeUndefined();
    }
  });

  it('takes misfireGrace from the rule, 10 minutes by default', () => {
    expect(misfireGraceMs(rule)).toBe(600_000);
    expect(misfireGraceMs({ ...rule, misfireGrace: '30s' })).toBe(30_000);
  });

  it('fires at once only on attribute triggers without for and on events', () => {
    expect(immediateTriggers(rule)).toEqual([rule.when[1], rule.when[3]]);
  });
});

describe('segmentOf', () => {
  const then: Action[] = [
    { type: 'notify', message: 'a' },
    { type: 'delay', for: '1m30s' },
    { type: 'delay', for: '500ms' },
    { type: 'notify', message: 'b' },
  ];
  it('splits actions at each delay, saying how long it waits and where to resume', () => {
    expect(segmentOf(then, 0)).toEqual({ actions: [then[0]], delay: { ms: 90_000, resumeAt: 2 } });
    expect(segmentOf(then, 2)).toEqual({ actions: [], delay: { ms: 500, resumeAt: 3 } });
    expect(segmentOf(then, 3)).toEqual({ actions: [then[3]] });
  });
});

describe('decision log filters', () => {
  const entry = (ruleId: string, outcome: DecisionEntry['outcome']): Omit<DecisionEntry, 'seq'> => ({
    at: 0,
    ruleId,
    ruleName: ruleId,
    trigger: { type: 'cron', dueAt: 0 },
    depth: 0,
    conditions: [],
    outcome,
    actions: [],
  });
  it('returns the newest entries that pass, up to the limit', () => {
    let log = emptyDecisionLog();
    for (const [r, o] of [
      ['a', 'fired'],
      ['b', 'missed'],
      ['a', 'condition_false'],
      ['a', 'fired'],
      ['b', 'fired'],
    ] as const) {
      log = appendDecision(log, entry(r, o));
    }
    expect(readDecisions(log, 10, { ruleId: 'a' }).map((e) => e.seq)).toEqual([4, 3, 1]);
    expect(readDecisions(log, 2, { outcome: 'fired' }).map((e) => e.seq)).toEqual([5, 4]);
    expect(readDecisions(log, 10, { ruleId: 'b', outcome: 'missed' }).map((e) => e.seq)).toEqual([2]);
    expect(readDecisions(log, 10, { ruleId: 'c' })).toEqual([]);
  });
});
