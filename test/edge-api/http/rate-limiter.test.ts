import { describe, expect, it } from 'vitest';
import { ifMatchVersion, noneMatchHits } from '../../../edge-api/http/request-input.ts';
import { TokenBucketLimiter } from '../../../edge-api/http/rate-limiter.ts';
import { mulberry32, randomInt } from '../../support/prng.ts';

describe('TokenBucketLimiter', () => {
  it('admits a burst, then the refill rate, and says when to retry', () => {
    const limiter = new TokenBucketLimiter(10, 5);
    for (let i = 0; i < 5; i++) expect(limiter.take('k', 0)).toEqual({ ok: true });
    expect(limiter.take('k', 0)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(limiter.take('k', 50)).toEqual({ ok: false, retryAfterMs: 50 });
    expect(limiter.take('k', 100)).toEqual({ ok: true });
    expect(limiter.take('other', 100)).toEqual({ ok: true });
  });

  it('never admits more than burst + rate × elapsed over random request times', () => {
    const rand = mulberry32(42);
    for (let trial = 0; trial < 50; trial++) {
      const rate = 1 + randomInt(rand, 50);
      const burst = 1 + randomInt(rand, 20);
      const limiter = new TokenBucketLimiter(rate, burst);
      let now = 0;
      let admitted = 0;
      for (let i = 0; i < 500; i++) {
        now += randomInt(rand, 40);
        if (limiter.take('k', now).ok) admitted++;
      }
      expect(admitted).toBeLessThanOrEqual(burst + Math.floor((rate * now) / 1000));
    }
  });

  it('keeps at most maxKeys buckets, forgetting full ones first', () => {
    const limiter = new TokenBucketLimiter(1, 2, 10);
    for (let i = 0; i < 10; i++) limiter.take(`k${i}`, 0);
    limiter.take('busy', 0);
    limiter.take('busy', 0);
    for (let i = 0; i < 100; i++) limiter.take(`new${i}`, 10_000 + i);
    expect(limiter.size).toBeLessThanOrEqual(10);
  });
});

describe('entity tags', () => {
  it('parses If-Match as one strong version or *', () => {
    expect(ifMatchVersion(undefined)).toBeUndefined();
    expect(ifMatchVersion('*')).toBeUndefined();
    expect(ifMatchVersion(' "12" ')).toBe(12);
    for (const bad of ['12', 'W/"12"', '"1","2"', '""', '"-1"']) expect(() => ifMatchVersion(bad)).toThrow(/If-Match/);
  });

  it('matches If-None-Match lists, weak tags and *', () => {
    expect(noneMatchHits('"3"', 3)).toBe(true);
    expect(noneMatchHits('"1", W/"3"', 3)).toBe(true);
    expect(noneMatchHits('*', 3)).toBe(true);
    expect(noneMatchHits('"4"', 3)).toBe(false);
    expect(noneMatchHits(undefined, 3)).toBe(false);
  });
});
