import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DURATION_LIMITS, formatDuration, parseDuration, parseSignedDuration } from '../../../actors/rules/duration.ts';

const SEED = { seed: 20261126, numRuns: 2_000 };

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['1m500ms', 60_500],
    ['0h5m', 300_000],
    ['007s', 7_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', 'empty'],
    ['0s', 'zero'],
    ['0m0s', 'zero in parts'],
    ['5', 'no unit'],
    ['m', 'no number'],
    ['5 m', 'a space'],
    [' 5m', 'a leading space'],
    ['+5m', 'a sign'],
    ['-5m', 'a negative sign'],
    ['30m1h', 'units out of order'],
    ['1m1m', 'a unit twice'],
    ['5ms3s', 'ms before s'],
    ['1.5h', 'a fraction'],
    ['5M', 'an upper-case unit'],
    ['5w', 'an unknown unit'],
    ['1e3ms', 'an exponent'],
    ['99999999999999999999ms', 'beyond the safe integers'],
    ['104249991375d', 'days beyond the safe integers'],
    ['1'.repeat(70) + 'ms', 'too long a text'],
  ])('refuses %j (%s)', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([[300], [null], [undefined], [{}], [['5m']]])('refuses the non-string %j', (x) => {
    expect(parseDuration(x)).toBeUndefined();
  });

  it('accepts the largest safe total and refuses one more', () => {
    expect(parseDuration(`${Number.MAX_SAFE_INTEGER}ms`)).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseDuration('9007199254740992ms')).toBeUndefined();
  });

  it('round-trips every positive safe duration through formatDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (ms) => parseDuration(formatDuration(ms)) === ms),
      SEED,
    );
  });

  it('round-trips durations made of random parts and reads their sum', () => {
    const units = [
      ['d', 86_400_000],
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1_000],
      ['ms', 1],
    ] as const;
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 10_000 })), { minLength: 5, maxLength: 5 }), (parts) => {
        const text = parts.map((n, i) => (n === null ? '' : `${n}${units[i]![0]}`)).join('');
        const sum = parts.reduce<number>((acc, n, i) => acc + (n ?? 0) * units[i]![1], 0);
        expect(parseDuration(text)).toBe(sum > 0 ? sum : undefined);
      }),
      SEED,
    );
  });
});

describe('parseSignedDuration', () => {
  it.each([
    ['-30m', -1_800_000],
    ['+1h', 3_600_000],
    ['15m', 900_000],
    ['0m', 0],
    ['-0s', 0],
  ])('reads %s as %d ms', (text, ms) => {
    expect(Object.is(parseSignedDuration(text), ms)).toBe(true);
  });

  it.each([[''], ['-'], ['+'], ['--5m'], ['+-5m'], ['- 5m'], ['5m-'], [5]])('refuses %j', (text) => {
    expect(parseSignedDuration(text)).toBeUndefined();
  });

  it('round-trips every safe integer through formatDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), (ms) =>
        Object.is(parseSignedDuration(formatDuration(ms)), ms),
      ),
      SEED,
    );
  });
});

describe('formatDuration', () => {
  it('writes the largest units first and leaves out zero parts', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(86_400_001)).toBe('1d1ms');
    expect(formatDuration(-1_800_000)).toBe('-30m');
    expect(formatDuration(0)).toBe('0s');
  });

  it('refuses a fraction of a millisecond', () => {
    expect(() => formatDuration(1.5)).toThrow(RangeError);
  });
});

describe('DURATION_LIMITS', () => {
  it('are the documented bounds', () => {
    expect(DURATION_LIMITS).toEqual({
      maxFor: parseDuration('7d'),
      maxDelay: parseDuration('7d'),
      maxMisfireGrace: parseDuration('24h'),
      maxSunOffset: parseDuration('6h'),
    });
  });
});
