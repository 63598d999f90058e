import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetSpans, utcOffsetAt } from '../../../actors/rules/zone-offsets.ts';

const at = (iso: string): number => Date.parse(iso);
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('utcOffsetAt', () => {
  it.each<[string, string, number]>([
    ['Europe/Berlin', '2026-01-15T12:00:00Z', 60],
    ['Europe/Berlin', '2026-07-15T12:00:00Z', 120],
    ['Asia/Kolkata', '2026-07-15T12:00:00Z', 330],
    ['Australia/Lord_Howe', '2026-07-15T12:00:00Z', 630],
    ['Australia/Lord_Howe', '2026-01-15T12:00:00Z', 660],
    ['Pacific/Chatham', '2026-07-15T12:00:00Z', 765],
    ['Pacific/Chatham', '2026-01-15T12:00:00Z', 825],
    ['America/Santiago', '2026-07-15T12:00:00Z', -240],
    ['UTC', '2026-07-15T12:00:00Z', 0],
  ])('reads %s at %s as UTC%+d minutes', (zone, iso, minutes) => {
    expect(utcOffsetAt(zone, at(iso))).toBe(minutes * MIN);
    expect(utcOffsetAt(zone, at(iso) + 999)).toBe(minutes * MIN);
  });

  it('throws for a zone Intl does not know', () => {
    expect(() => utcOffsetAt('Mars/Olympus_Mons', 0)).toThrow(RangeError);
  });
});

describe('offsetSpans', () => {
  it.each<[string, string, number, number]>([
    // Each 2026 change: its first instant, the offset before and after (minutes).
    ['Europe/Berlin', '2026-03-29T01:00:00Z', 60, 120],
    ['Europe/Berlin', '2026-10-25T01:00:00Z', 120, 60],
    ['Australia/Lord_Howe', '2026-04-04T15:00:00Z', 660, 630],
    ['Australia/Lord_Howe', '2026-10-03T15:30:00Z', 630, 660],
    ['Pacific/Chatham', '2026-04-04T14:00:00Z', 825, 765],
    ['Pacific/Chatham', '2026-09-26T14:00:00Z', 765, 825],
    ['America/Santiago', '2026-04-05T03:00:00Z', -180, -240],
    ['America/Santiago', '2026-09-06T04:00:00Z', -240, -180],
    ['Asia/Beirut', '2026-03-28T22:00:00Z', 120, 180],
    ['Asia/Beirut', '2026-10-24T21:00:00Z', 180, 120],
    ['Antarctica/Troll', '2026-03-29T01:00:00Z', 0, 120],
  ])('finds the change of %s at %s to the second', (zone, iso, before, after) => {
    const change = at(iso);
    const spans = offsetSpans(zone, change - HOUR, change + HOUR);
    expect(spans).toHaveLength(2);
    expect(spans[0]).toMatchObject({ end: change, offset: before * MIN });
    expect(spans[1]).toMatchObject({ start: change, offset: after * MIN, before: before * MIN });
    expect(utcOffsetAt(zone, change - 1)).toBe(before * MIN);
  });

  it('gives one endless span for a zone that never changes', () => {
    for (const zone of ['UTC', 'Asia/Kolkata']) {
      const spans = offsetSpans(zone, at('2026-01-01T00:00:00Z'), at('2027-06-01T00:00:00Z'));
      expect(spans).toEqual([{ start: -Infinity, end: Infinity, offset: utcOffsetAt(zone, 0), before: utcOffsetAt(zone, 0) }]);
    }
  });

  it('covers [from, to] back to back, each span at the offset Intl reads inside it (fixed seed)', () => {
    const zones = [
      'Europe/Berlin',
      'America/New_York',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'America/Santiago',
      'Asia/Beirut',
      'Africa/Casablanca',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: at('2025-06-01T00:00:00Z'), max: at('2027-06-01T00:00:00Z') }),
        fc.integer({ min: 0, max: 400 * 24 * HOUR }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (zone, from, length, where) => {
          const to = from + length;
          const spans = offsetSpans(zone, from, to);
          expect(spans[0]!.start).toBeLessThanOrEqual(from);
          expect(spans.at(-1)!.end).toBeGreaterThan(to);
          for (let i = 1; i < spans.length; i++) {
            expect(spans[i]!.start).toBe(spans[i - 1]!.end);
            expect(spans[i]!.before).toBe(spans[i - 1]!.offset);
            expect(spans[i]!.offset).not.toBe(spans[i]!.before);
          }
          const t = Math.floor(from + where * length);
          const span = spans.find((s) => s.start <= t && t < s.end)!;
          expect(span.offset).toBe(utcOffsetAt(zone, t));
        },
      ),
      { seed: 2026, numRuns: 300 },
    );
  });
});
