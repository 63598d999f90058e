/** Zod failures in the edge's words: field paths, our phrasing of every issue kind, unknown keys, and the bounded field list. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fieldPath, fieldProblems, invalidFields, MAX_FIELD_PROBLEMS } from '../../../edge-api/http/validation-error.ts';

/** The problems of parsing `input` with `schema` (which must fail). */
function problems(schema: z.ZodType, input: unknown) {
  const result = schema.safeParse(input);
  if (result.success) throw new Error('expected a failure');
  return fieldProblems(result.error);
}

/** The one reason of a failing parse at the top level. */
const reason = (schema: z.ZodType, input: unknown): string | undefined => problems(schema, input)[0]?.message;

describe('fieldPath', () => {
  it('names indexes and keys as our messages always did', () => {
    expect(fieldPath([])).toBe('body');
    expect(fieldPath(['add', 0, 'weight'])).toBe('add[0].weight');
    expect(fieldPath(['weights', 'n1'])).toBe('weights.n1');
  });

  it('quotes keys that are empty or hold . [ ] or "', () => {
    expect(fieldPath(['weights', 'a.b'])).toBe('weights["a.b"]');
    expect(fieldPath(['weights', ''])).toBe('weights[""]');
    expect(fieldPath(['x[0]'])).toBe('["x[0]"]');
    expect(fieldPath(['a', 'say "hi"'])).toBe('a["say \\"hi\\""]');
  });

  it('cuts a long key', () => {
    expect(fieldPath(['weights', 'k'.repeat(10_000)])).toBe(`weights.${'k'.repeat(64)}…`);
  });
});

describe('our phrasing of zod issues', () => {
  it('says more/less than for exclusive bounds, at least/at most for inclusive ones', () => {
    expect(reason(z.number().gt(0), 0)).toBe('must be more than 0');
    expect(reason(z.number().lt(10), 10)).toBe('must be less than 10');
    expect(reason(z.number().min(1), 0)).toBe('must be at least 1');
    expect(reason(z.number().max(9), 10)).toBe('must be at most 9');
  });

  it('counts items and characters in the singular and the plural', () => {
    expect(reason(z.array(z.string()).max(1), ['a', 'b'])).toBe('must hold at most 1 item');
    expect(reason(z.array(z.string()).min(2), ['a'])).toBe('must hold at least 2 items');
    expect(reason(z.string().min(1), '')).toBe('must be at least 1 character');
    expect(reason(z.string().max(3), 'abcd')).toBe('must be at most 3 characters');
  });

  it('names the values of an enum, and the one value of a literal', () => {
    expect(reason(z.enum(['a', 'b']), 'c')).toBe('must be one of a, b');
    expect(reason(z.literal('on'), 'off')).toBe('must be on');
  });

  it('names the types of a union of plain types, and the documented forms of another union', () => {
    expect(reason(z.union([z.number(), z.boolean(), z.string()]), null)).toBe('must be a number, true or false, or a string');
    expect(reason(z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]), { c: 1 })).toBe(
      'must be one of the documented forms',
    );
  });

  it('names the discriminator values of a discriminated union, at the discriminator', () => {
    const schema = z.discriminatedUnion('type', [z.object({ type: z.literal('time') }), z.object({ type: z.literal('sun') })]);
    expect(problems(schema, { type: 'moon' })).toEqual([{ field: 'type', message: 'must be one of time, sun' }]);
  });

  it('phrases multiples, record keys, and a custom check without a message', () => {
    expect(reason(z.number().multipleOf(5), 3)).toBe('must be a multiple of 5');
    expect(problems(z.record(z.string().regex(/^n/), z.number()), { x1: 1 })).toEqual([{ field: 'x1', message: 'is not a valid key' }]);
    expect(
      reason(
        z.string().refine(() => false),
        'x',
      ),
    ).toBe('is not valid');
    expect(
      reason(
        z.string().refine(() => false, { error: 'must be nicer' }),
        'x',
      ),
    ).toBe('must be nicer');
  });

  it('says required for a missing field and the type for a wrong one', () => {
    expect(problems(z.object({ a: z.string() }), {})).toEqual([{ field: 'a', message: 'is required' }]);
    expect(problems(z.object({ a: z.boolean() }), { a: 1 })).toEqual([{ field: 'a', message: 'must be true or false' }]);
  });
});

describe('unknown keys', () => {
  const Schema = z.strictObject({ name: z.string(), size: z.number() });

  it('come first, whatever the order of the body', () => {
    expect(problems(Schema, { name: 7, size: 1, bogus: 1 }).map((p) => p.field)).toEqual(['bogus', 'name']);
  });

  it('are one entry per key, first (the error lists every bad field; invalidFields bounds the list)', () => {
    const body = Object.fromEntries([['name', 7], ['size', 1], ...Array.from({ length: 1000 }, (_, i) => [`k${i}`, 0])]);
    const found = problems(Schema, body);
    expect(found).toHaveLength(1001);
    expect(found[0]).toEqual({ field: 'k0', message: 'is not a known field (expected name, size)' });
    expect(found[999]).toEqual({ field: 'k999', message: 'is not a known field (expected name, size)' });
    expect(found[1000]).toMatchObject({ field: 'name' });
    expect(problems(Schema, { name: 'x', size: 1, a: 1, b: 2 })).toEqual([
      { field: 'a', message: 'is not a known field (expected name, size)' },
      { field: 'b', message: 'is not a known field (expected name, size)' },
    ]);
    const err = invalidFields(found);
    expect(err.message).toBe('k0 is not a known field (expected name, size) (and 1000 more: the first 20 are in details.fields)');
    expect(err.details?.fields).toHaveLength(MAX_FIELD_PROBLEMS);
  });
});

describe('invalidFields', () => {
  it(`lists at most ${MAX_FIELD_PROBLEMS} fields and counts them all in the message`, () => {
    const all = Array.from({ length: 16_000 }, (_, i) => ({ field: `items[${i}]`, message: 'must be a string' }));
    const err = invalidFields(all);
    expect(err.message).toBe('items[0] must be a string (and 15999 more: the first 20 are in details.fields)');
    expect(err.details).toEqual({ field: 'items[0]', fields: all.slice(0, MAX_FIELD_PROBLEMS) });
  });

  it('says "see details.fields" when they are all there', () => {
    const two = [
      { field: 'a', message: 'must be a string' },
      { field: 'b', message: 'must be a number' },
    ];
    expect(invalidFields(two).message).toBe('a must be a string (and 1 more: see details.fields)');
  });

  it('names one field without a count', () => {
    const err = invalidFields([{ field: 'limit', message: 'must be an integer from 1 to 200' }]);
    expect(err.message).toBe('limit must be an integer from 1 to 200');
  });
});
