import { describe, expect, it } from 'vitest';
import { formatHHMM, inWindow, localHHMM, localMinutes, minutesInWindow, parseHHMM } from '../../../actors/rules/time-window.ts';
import { mulberry32 } from '../../support/prng.ts';

const at = (iso: string): number => Date.parse(iso);
const MIN = 60_000;

/** Minutes of the UTC interval [from, to) that fall inside the window, sampled every minute. */
function minutesInside(from: string, to: string, tz: string, after: string, before: string): number {
  let n = 0;
  for (let t = at(from); t < at(to); t += MIN) if (inWindow(t, tz, after, before)) n++;
  return n;
}

describe('localMinutes', () => {
  it.each([
    // Winter: Berlin is UTC+1, New York UTC-5; the local date differs from the UTC date.
    ['2024-01-15T23:30:00Z', 'UTC', '23:30'],
    ['2024-01-15T23:30:00Z', 'Europe/Berlin', '00:30'],
    ['2024-01-16T03:00:00Z', 'America/New_York', '22:00'],
    // Summer: Berlin UTC+2, New York UTC-4.
    ['2024-07-01T02:15:00Z', 'Europe/Berlin', '04:15'],
    ['2024-07-01T02:15:00Z', 'America/New_York', '22:15'],
    ['2024-07-01T00:00:00Z', 'Asia/Kolkata', '05:30'],
    ['2024-07-01T18:29:59Z', 'Asia/Kolkata', '23:59'],
    ['2024-07-01T18:30:00Z', 'Asia/Kolkata', '00:00'],
  ])('at %s in %s is %s', (iso, tz, hhmm) => {
    expect(localHHMM(at(iso), tz)).toBe(hhmm);
    expect(localMinutes(at(iso), tz)).toBe(parseHHMM(hhmm));
  });

  it('follows the DST switch: New York at 12:00 UTC is 07:00 the day before spring-forward and 08:00 on it', () => {
    expect(localHHMM(at('2024-03-09T12:00:00Z'), 'America/New_York')).toBe('07:00');
    expect(localHHMM(at('2024-03-10T12:00:00Z'), 'America/New_York')).toBe('08:00');
    // Berlin jumps from 01:59 CET to 03:00 CEST at 01:00 UTC on 2024-03-31.
    expect(localHHMM(at('2024-03-31T00:59:00Z'), 'Europe/Berlin')).toBe('01:59');
    expect(localHHMM(at('2024-03-31T01:00:00Z'), 'Europe/Berlin')).toBe('03:00');
  });

  it('matches the fixed offset of zones without DST at random instants', () => {
    const rand = mulberry32(42);
    for (let i = 0; i < 2000; i++) {
      const t = Math.floor(rand() * 4_102_444_800_000); // 1970..2100
      const utc = Math.floor(t / MIN) % 1440;
      expect(localMinutes(t, 'UTC')).toBe(utc);
      expect(localMinutes(t, 'Etc/UTC')).toBe(utc);
      expect(localMinutes(t, 'Asia/Kolkata')).toBe((utc + 330) % 1440);
    }
  });
});

describe('parseHHMM / formatHHMM', () => {
  it('round-trips every minute of the day', () => {
    for (let m = 0; m < 1440; m++) expect(parseHHMM(formatHHMM(m))).toBe(m);
    expect(formatHHMM(0)).toBe('00:00');
    expect(formatHHMM(1439)).toBe('23:59');
  });

  it('throws on malformed times', () => {
    for (const bad of ['24:00', '6:00', '12:60', '']) expect(() => parseHHMM(bad)).toThrow();
  });
});

describe('minutesInWindow', () => {
  const window = (m: string, a: string, b: string) => minutesInWindow(parseHHMM(m), parseHHMM(a), parseHHMM(b));

  it('is [after, before) for a daytime window', () => {
    expect(window('08:00', '08:00', '17:00')).toBe(true);
    expect(window('16:59', '08:00', '17:00')).toBe(true);
    expect(window('17:00', '08:00', '17:00')).toBe(false);
    expect(window('07:59', '08:00', '17:00')).toBe(false);
  });

  it('crosses midnight when after > before: 18:00–06:00 includes 23:30 and 05:59, excludes 12:00', () => {
    for (const m of ['18:00', '23:30', '23:59', '00:00', '05:59']) expect(window(m, '18:00', '06:00')).toBe(true);
    for (const m of ['06:00', '12:00', '17:59']) expect(window(m, '18:00', '06:00')).toBe(false);
  });

  it('is the whole day when after == before', () => {
    for (let m = 0; m < 1440; m += 7) expect(minutesInWindow(m, 600, 600)).toBe(true);
  });

  it('is the complement of the swapped window for random bounds', () => {
    const rand = mulberry32(7);
    for (let i = 0; i < 5000; i++) {
      const [m, a, b] = [0, 0, 0].map(() => Math.floor(rand() * 1440)) as [number, number, number];
      if (a === b) continue;
      expect(minutesInWindow(m, a, b)).toBe(!minutesInWindow(m, b, a));
    }
  });
});

describe('inWindow', () => {
  it('uses the home time zone: 22:30 UTC in January is 23:30 in Berlin', () => {
    const t = at('2024-01-15T22:30:00Z');
    expect(inWindow(t, 'Europe/Berlin', '23:00', '23:59')).toBe(true);
    expect(inWindow(t, 'UTC', '23:00', '23:59')).toBe(false);
  });

  it('crosses midnight in Berlin on a date where UTC is still the previous day', () => {
    const t = at('2024-01-15T23:30:00Z'); // 00:30 on the 16th in Berlin
    expect(inWindow(t, 'Europe/Berlin', '18:00', '06:00')).toBe(true);
    expect(inWindow(t, 'Europe/Berlin', '00:00', '01:00')).toBe(true);
    expect(inWindow(t, 'UTC', '00:00', '01:00')).toBe(false);
    expect(inWindow(at('2024-01-16T04:59:00Z'), 'Europe/Berlin', '18:00', '06:00')).toBe(true); // 05:59
    expect(inWindow(at('2024-01-16T05:00:00Z'), 'Europe/Berlin', '18:00', '06:00')).toBe(false); // 06:00
    expect(inWindow(at('2024-01-16T11:00:00Z'), 'Europe/Berlin', '18:00', '06:00')).toBe(false); // 12:00
  });

  it('crosses midnight in New York on a date where UTC is already the next day', () => {
    const t = at('2024-01-16T03:00:00Z'); // 22:00 on the 15th in New York
    expect(inWindow(t, 'America/New_York', '20:00', '23:00')).toBe(true);
    expect(inWindow(t, 'UTC', '20:00', '23:00')).toBe(false);
    expect(inWindow(at('2024-01-16T10:59:00Z'), 'America/New_York', '18:00', '06:00')).toBe(true); // 05:59
    expect(inWindow(at('2024-01-16T17:00:00Z'), 'America/New_York', '18:00', '06:00')).toBe(false); // 12:00
  });

  it('has an hour less at night when the clocks spring forward and an hour more when they fall back', () => {
    expect(minutesInside('2024-03-23T12:00:00Z', '2024-03-24T12:00:00Z', 'Europe/Berlin', '18:00', '06:00')).toBe(720);
    expect(minutesInside('2024-03-30T12:00:00Z', '2024-03-31T12:00:00Z', 'Europe/Berlin', '18:00', '06:00')).toBe(660);
    expect(minutesInside('2024-10-26T12:00:00Z', '2024-10-27T12:00:00Z', 'Europe/Berlin', '18:00', '06:00')).toBe(780);
    expect(minutesInside('2024-03-09T17:00:00Z', '2024-03-10T17:00:00Z', 'America/New_York', '18:00', '06:00')).toBe(660);
  });

  it('never matches a window inside the skipped hour, and matches the repeated hour twice', () => {
    expect(minutesInside('2024-03-30T22:00:00Z', '2024-03-31T04:00:00Z', 'Europe/Berlin', '02:00', '03:00')).toBe(0);
    expect(minutesInside('2024-10-26T22:00:00Z', '2024-10-27T04:00:00Z', 'Europe/Berlin', '02:00', '03:00')).toBe(120);
  });
});
