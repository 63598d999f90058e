/** CircuitBreaker on an injected clock: opens after N consecutive failures, half-open after the cool-down, closes on success. */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerTransition } from '../../cluster/circuit-breaker.ts';

function setup(failureThreshold = 3, openMs = 1_000) {
  let now = 1_000_000;
  const transitions: BreakerTransition[] = [];
  const breaker = new CircuitBreaker(
    { failureThreshold, openMs },
    () => now,
    (t) => transitions.push(t),
  );
  return { breaker, transitions, advance: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold, and a success resets the count of consecutive failures', () => {
    const { breaker, transitions } = setup(3);
    breaker.failed();
    breaker.failed();
    breaker.succeeded();
    breaker.failed();
    breaker.failed();
    expect(breaker.state).toBe('closed');
    expect(breaker.failures).toBe(2);
    expect(breaker.admit()).toBe(true);
    expect(transitions).toEqual([]);
  });

  it('opens after N consecutive failures and refuses everything until the cool-down has passed', () => {
    const { breaker, transitions, advance } = setup(3, 1_000);
    for (let i = 0; i < 3; i++) breaker.failed();
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual([{ from: 'closed', to: 'open', failures: 3 }]);
    expect(breaker.admit()).toBe(false);
    expect(breaker.admit(true)).toBe(false);
    advance(999);
    expect(breaker.admit()).toBe(false);
    expect(breaker.state).toBe('open');
  });

  it('turns half-open after the cool-down and lets exactly one probe through; free attempts do not take its place', () => {
    const { breaker, advance } = setup(2, 500);
    breaker.failed();
    breaker.failed();
    advance(500);
    expect(breaker.admit(true)).toBe(true); // e.g. a one-way message on a stream the peer accepted
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit()).toBe(true); // the probe
    expect(breaker.admit()).toBe(false);
    expect(breaker.admit()).toBe(false);
    expect(breaker.admit(true)).toBe(true);
  });

  it('closes when the probe succeeds', () => {
    const { breaker, transitions, advance } = setup(2, 500);
    breaker.failed();
    breaker.failed();
    advance(600);
    expect(breaker.admit()).toBe(true);
    breaker.succeeded();
    expect(breaker.state).toBe('closed');
    expect(breaker.failures).toBe(0);
    expect(breaker.admit()).toBe(true);
    expect(breaker.admit()).toBe(true);
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for a full cool-down when the probe fails', () => {
    const { breaker, transitions, advance } = setup(2, 500);
    breaker.failed();
    breaker.failed();
    advance(500);
    expect(breaker.admit()).toBe(true);
    breaker.failed();
    expect(breaker.state).toBe('open');
    advance(499);
    expect(breaker.admit()).toBe(false);
    advance(1);
    expect(breaker.admit()).toBe(true);
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'open', 'half-open']);
  });
});
