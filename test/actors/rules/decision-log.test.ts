import { describe, expect, it } from 'vitest';
import {
  appendDecision,
  emptyDecisionLog,
  readDecisions,
  type DecisionEntry,
  type DecisionLog,
} from '../../../actors/rules/decision-log.ts';

const entry = (i: number): Omit<DecisionEntry, 'seq'> => ({
  at: 1_000 + i,
  ruleId: 'r1',
  ruleName: 'Rule',
  trigger: { type: 'event', device: 'button1', event: 'single' },
  depth: 0,
  conditions: [{ condition: { type: 'time', after: '18:00', before: '06:00' }, saw: '23:30', passed: true }],
  outcome: 'fired',
  actions: [{ type: 'notify', message: `n${i}` }],
});

describe('decision log', () => {
  it('numbers entries with an increasing seq that survives trimming', () => {
    let log: DecisionLog = emptyDecisionLog();
    for (let i = 0; i < 7; i++) log = appendDecision(log, entry(i), 3);
    expect(log.entries.map((e) => e.seq)).toEqual([5, 6, 7]);
    expect(log.nextSeq).toBe(8);
  });

  it('keeps 200 entries by default, dropping the oldest', () => {
    let log = emptyDecisionLog();
    for (let i = 0; i < 250; i++) log = appendDecision(log, entry(i));
    expect(log.entries).toHaveLength(200);
    expect(log.entries[0]?.seq).toBe(51);
  });

  it('reads newest first, at most `limit`, without changing the log', () => {
    let log = emptyDecisionLog();
    for (let i = 0; i < 5; i++) log = appendDecision(log, entry(i));
    const before = JSON.stringify(log);
    expect(readDecisions(log, 3).map((e) => e.seq)).toEqual([5, 4, 3]);
    expect(readDecisions(log, 50).map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
    expect(readDecisions(log, 0)).toEqual([]);
    expect(JSON.stringify(log)).toBe(before);
  });
});
