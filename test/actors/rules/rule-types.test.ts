import { describe, expect, it } from 'vitest';
import { COMPARE_OPS, compareValues, ORDERING_OPS } from '../../../actors/rules/rule-types.ts';
import type { Value } from '../../../actors/types.ts';

describe('compareValues', () => {
  it('compares numbers with every operator', () => {
    const cases: [number, number, boolean[]][] = [
      // ==, !=, <, <=, >, >=
      [1, 2, [false, true, true, true, false, false]],
      [2, 2, [true, false, false, true, false, true]],
      [3, 2, [false, true, false, false, true, true]],
    ];
    for (const [seen, value, expected] of cases) {
      expect(
        COMPARE_OPS.map((op) => compareValues(seen, op, value)),
        `${seen} vs ${value}`,
      ).toEqual(expected);
    }
  });

  it('tests equality of any values strictly, and orders nothing but two numbers', () => {
    const values: Value[] = ['2', true, 'a'];
    expect(compareValues('on', '==', 'on')).toBe(true);
    expect(compareValues(true, '!=', false)).toBe(true);
    expect(compareValues('2', '==', 2)).toBe(false);
    for (const v of values) for (const op of ORDERING_OPS) expect(compareValues(v, op, 2), `${String(v)} ${op} 2`).toBe(false);
    for (const op of ORDERING_OPS) expect(compareValues(2, op, 'b')).toBe(false);
  });
});
