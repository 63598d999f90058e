import { describe, expect, it } from 'vitest';
import {
  admitFiring,
  DEFAULT_STORM_CONFIG,
  exceedsDepth,
  initialBudget,
  recordFiring,
  refillBudget,
  takeBudget,
  type CommandBudget,
} from '../../../actors/rules/storm-control.ts';
import { mulberry32, randomInt } from '../../support/prng.ts';

const T0 = 1_700_000_000_000;

describe('causal depth limit', () => {
  it('lets changes at depth 0..3 fire and stops depth 4 and beyond (default limit 4)', () => {
    expect([0, 1, 2, 3, 4, 5].map((d) => exceedsDepth(d))).toEqual([false, false, false, false, true, true]);
    expect(exceedsDepth(2, { ...DEFAULT_STORM_CONFIG, maxDepth: 2 })).toBe(true);
  });

  it('suspends a rule triggered at the limit with a readable reason', () => {
    const a = admitFiring({ suspended: false, depth: 4, recentFirings: [], budget: initialBudget(), cost: 1, now: T0 });
    expect(a.verdict).toBe('suspend');
    expect(a.verdict === 'suspend' && a.reason).toMatch(/^causal_depth_exceeded: a change at depth 4 \(limit 4\)/);
  });
});

describe('re-trigger detection', () => {
  it('suspends on the 11th firing within 10 s with "storm: fired 11 times in 10s"', () => {
    let recent: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = recordFiring(recent, T0 + i * 900);
      expect(r.storm).toBe(false);
      recent = r.recentFirings;
    }
    const a = admitFiring({ suspended: false, depth: 0, recentFirings: recent, budget: initialBudget(), cost: 0, now: T0 + 9_500 });
    expect(a).toMatchObject({ verdict: 'suspend', reason: 'storm: fired 11 times in 10s' });
  });

  it('forgets firings older than the window: one every 1.1 s never storms', () => {
    let recent: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = recordFiring(recent, T0 + i * 1_100);
      expect(r.storm).toBe(false);
      expect(r.count).toBeLessThanOrEqual(10);
      recent = r.recentFirings;
    }
  });

  it('a firing exactly 10 s later no longer counts the first', () => {
    const recent = Array.from({ length: 10 }, (_, i) => T0 + i);
    expect(recordFiring(recent, T0 + 10_000)).toMatchObject({ count: 10, storm: false });
    expect(recordFiring(recent, T0 + 9_999)).toMatchObject({ count: 11, storm: true });
  });
});

describe('command budget', () => {
  it('allows 30 commands at once, then refills continuously at 30 per minute', () => {
    let b = initialBudget(DEFAULT_STORM_CONFIG, T0);
    for (let i = 0; i < 30; i++) {
      const r = takeBudget(b, 1, T0);
      expect(r.ok).toBe(true);
      b = r.budget;
    }
    expect(takeBudget(b, 1, T0).ok).toBe(false);
    expect(takeBudget(b, 1, T0 + 1_999).ok).toBe(false);
    expect(takeBudget(b, 1, T0 + 2_000).ok).toBe(true); // 30/60 s = one per 2 s
    expect(refillBudget(b, T0 + 30_000).tokens).toBe(15);
    expect(refillBudget(b, T0 + 3_600_000).tokens).toBe(30); // capped
  });

  it('takes all of a firing or nothing', () => {
    const b: CommandBudget = { tokens: 2.5, updatedAt: T0 };
    expect(takeBudget(b, 3, T0)).toEqual({ ok: false, budget: b });
    expect(takeBudget(b, 2, T0)).toEqual({ ok: true, budget: { tokens: 0.5, updatedAt: T0 } });
    expect(takeBudget(b, 0, T0).ok).toBe(true);
  });

  it('refills nothing when the clock goes back', () => {
    const b: CommandBudget = { tokens: 1, updatedAt: T0 };
    expect(refillBudget(b, T0 - 60_000)).toEqual(b);
  });

  it('never grants more than 30 + 30 per minute elapsed, for random demand (state stays plain JSON)', () => {
    const rand = mulberry32(1234);
    for (let run = 0; run < 20; run++) {
      let b = initialBudget(DEFAULT_STORM_CONFIG, T0);
      let now = T0;
      let granted = 0;
      for (let i = 0; i < 500; i++) {
        now += randomInt(rand, 3_000);
        const cost = randomInt(rand, 5);
        const r = takeBudget(b, cost, now);
        if (r.ok) granted += cost;
        b = JSON.parse(JSON.stringify(r.budget)) as CommandBudget;
        expect(b.tokens).toBeGreaterThanOrEqual(0);
        expect(b.tokens).toBeLessThanOrEqual(30);
        expect(granted).toBeLessThanOrEqual(30 + ((now - T0) * 30) / 60_000 + 1e-9);
      }
    }
  });
});

describe('admitFiring', () => {
  const input = { suspended: false, depth: 0, recentFirings: [] as number[], budget: initialBudget(), cost: 1, now: T0 };

  it('skips a suspended rule before any other check', () => {
    expect(admitFiring({ ...input, suspended: true, depth: 9 })).toEqual({ verdict: 'skip' });
  });

  it('checks depth before re-triggering, and re-triggering before the budget', () => {
    const storming = Array.from({ length: 10 }, (_, i) => T0 - i);
    const empty = { tokens: 0, updatedAt: T0 };
    expect(admitFiring({ ...input, depth: 4, recentFirings: storming, budget: empty })).toMatchObject({
      verdict: 'suspend',
      reason: expect.stringMatching(/^causal_depth_exceeded/),
    });
    expect(admitFiring({ ...input, recentFirings: storming, budget: empty })).toMatchObject({
      verdict: 'suspend',
      reason: expect.stringMatching(/^storm:/),
    });
    const a = admitFiring({ ...input, budget: empty });
    expect(a).toMatchObject({ verdict: 'budget_exhausted', recentFirings: [T0] });
    expect(a.verdict === 'budget_exhausted' && a.reason).toMatch(
      /^budget_exhausted: needs 1 command\(s\), 0 left \(home limit 30 per 60s\)/,
    );
  });

  it('fires, recording the firing and taking its cost', () => {
    expect(admitFiring({ ...input, cost: 3, budget: { tokens: 30, updatedAt: T0 } })).toEqual({
      verdict: 'fire',
      recentFirings: [T0],
      budget: { tokens: 27, updatedAt: T0 },
    });
  });
});
