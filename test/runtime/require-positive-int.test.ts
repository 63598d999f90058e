import { describe, expect, it } from 'vitest';
import { requirePositiveInt } from '../../runtime/require-positive-int.ts';

describe('requirePositiveInt', () => {
  it('returns a positive safe integer', () => {
    expect(requirePositiveInt('n', 1)).toBe(1);
    expect(requirePositiveInt('n', Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])('refuses %s with a RangeError naming the setting', (value) => {
    expect(() => requirePositiveInt('sseLimit.perHome', value)).toThrow(RangeError);
    expect(() => requirePositiveInt('sseLimit.perHome', value)).toThrow(`sseLimit.perHome must be a positive integer, not ${value}`);
  });
});
