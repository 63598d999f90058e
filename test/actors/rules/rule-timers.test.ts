import { describe, expect, it } from 'vitest';
import { segmentOf } from '../../../actors/rules/action-plan.ts';
import { appendDecision, emptyDecisionLog, readDecisions, type DecisionEntry } from '../../../actors/rules/decision-log.ts';
import {
  CATCH_UP_LIMIT,
  catchUp,
  immediateTriggers,
  misfireGraceMs,
  parseTimerName,
  sameJson,
  timerName,
} from '../../../actors/rules/rule-timers.ts';
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

  it('reads back every run number a home can count to, and refuses what it never writes', () => {
    for (const n of [0, 999_999_999, 1_000_000_000, 123_456_789_012, Number.MAX_SAFE_INTEGER]) {
      expect(parseTimerName(timerName('run', 'r1', n)), String(n)).toEqual({ kind: 'run', ruleId: 'r1', n });
    }
    for (const name of ['run.r1.9007199254740992', 'run.r1.01', 'run.r1.1e3', 'run.r1.12345678901234567', 'run.r1. 1']) {
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

describe('sameJson', () => {
  it('compares JSON values whatever the order of members, an undefined member as absent', () => {
    expect(sameJson({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson([1], { 0: 1 })).toBe(false);
    expect(sameJson({ a: null }, { a: {} })).toBe(false);
    expect(sameJson({ a: 1 }, { b: 1 })).toBe(false);
  });
});

describe('catchUp', () => {
  const T0 = Date.parse('2024-03-04T10:00:00Z');
  const everyMinute = { type: 'cron', expression: '* * * * *' } as const;
  const utc = { timezone: 'UTC' };
  it('is the occurrence due when on time, with the next one', () => {
    expect(catchUp(everyMinute, T0, T0 + 500, utc)).toEqual({ newest: T0, due: 1, overflow: false, next: T0 + 60_000 });
    // Early (a clock behind): the next is still after the one due.
    expect(catchUp(everyMinute, T0, T0 - 500, utc)).toEqual({ newest: T0, due: 1, overflow: false, next: T0 + 60_000 });
  });
  it('finds the newest occurrence up to now, counting those due, and the next strictly after now', () => {
    expect(catchUp(everyMinute, T0, T0 + 3 * 60_000, utc)).toEqual({ newest: T0 + 180_000, due: 4, overflow: false, next: T0 + 240_000 });
    expect(catchUp(everyMinute, T0, T0 + 3 * 60_000 + 1, utc)).toMatchObject({ newest: T0 + 180_000, due: 4, next: T0 + 240_000 });
  });
  it(`stops after ${CATCH_UP_LIMIT} occurrences`, () => {
    const c = catchUp({ type: 'cron', expression: '* * * * * *' }, T0, T0 + 3_600_000, utc);
    expect(c).toEqual({ newest: T0 + CATCH_UP_LIMIT * 1_000, due: CATCH_UP_LIMIT + 1, overflow: true, next: T0 + 3_601_000 });
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

  it('keeps condition_false entries and the others each to their own bound', () => {
    let log = emptyDecisionLog();
    for (let i = 0; i < 10; i++) log = appendDecision(log, entry('a', i % 5 === 0 ? 'fired' : 'condition_false'), 3, 2);
    // Fired at seq 1 and 6; condition_false newest two are 9 and 10.
    expect(log.entries.map((e) => [e.seq, e.outcome])).toEqual([
      [1, 'fired'],
      [6, 'fired'],
      [9, 'condition_false'],
      [10, 'condition_false'],
    ]);
    expect(log.nextSeq).toBe(11);
    log = appendDecision(log, entry('a', 'cancelled'), 2, 2);
    expect(log.entries.map((e) => e.seq)).toEqual([6, 9, 10, 11]);
    expect(readDecisions(log, 10, { outcome: 'cancelled' }).map((e) => e.seq)).toEqual([11]);
  });
});
