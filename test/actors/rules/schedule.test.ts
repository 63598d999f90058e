import { Cron } from 'croner';
import fc from 'fast-check';
import SunCalc from 'suncalc';
import { describe, expect, it, vi } from 'vitest';
import { nextFireTime, SCHEDULE_HORIZON_DAYS, timePattern } from '../../../actors/rules/schedule.ts';
import { WEEKDAYS, type TimeTrigger, type Weekday } from '../../../actors/rules/rule-types.ts';

const at = (iso: string): number => Date.parse(iso);
const MIN = 60_000;
const DAY = 86_400_000;
const utc = { timezone: 'UTC' };

interface Local {
  readonly date: string;
  readonly hhmm: string;
  readonly weekday: Weekday;
}

// Local wall clock per (zone, minute), memoized: the brute-force scans below revisit the same minutes.
const localCache = new Map<string, Map<number, Local>>();
const formatters = new Map<string, Intl.DateTimeFormat>();
function localAt(t: number, timeZone: string): Local {
  let zone = localCache.get(timeZone);
  if (zone === undefined) localCache.set(timeZone, (zone = new Map()));
  const hit = zone.get(t);
  if (hit !== undefined) return hit;
  const f =
    formatters.get(timeZone) ??
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
  formatters.set(timeZone, f);
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
  const local: Local = {
    date: `${p.year}-${p.month}-${p.day}`,
    hhmm: `${String(Number(p.hour) % 24).padStart(2, '0')}:${p.minute}`,
    weekday: String(p.weekday).toLowerCase() as Weekday,
  };
  zone.set(t, local);
  return local;
}

/**
 * The reference: scanning minute by minute, a daily `at` fires on each allowed local date at the
 * first instant whose local time is at or past `at` — the time itself, the end of a spring-forward
 * gap that swallowed it, or the first of two fall-back occurrences.
 */
function bruteForceNext(trigger: TimeTrigger, afterMs: number, timeZone: string): number | undefined {
  const start = Math.floor(afterMs / MIN) * MIN - 2 * DAY;
  let firedOn = localAt(start, timeZone).date; // the scan's first date is before `after`: ignore it
  for (let t = start; t < afterMs + 9 * DAY; t += MIN) {
    const local = localAt(t, timeZone);
    if (local.date === firedOn || local.hhmm < trigger.at) continue;
    firedOn = local.date;
    if (trigger.days !== undefined && !trigger.days.includes(local.weekday)) continue;
    if (t > afterMs) return t;
  }
  return undefined;
}

// 2026 DST switches: [zone, spring-forward day, fall-back day] (UTC dates around them are scanned).
const SWITCHES: readonly [string, string, string][] = [
  ['Europe/Berlin', '2026-03-29', '2026-10-25'],
  ['America/New_York', '2026-03-08', '2026-11-01'],
  ['Australia/Sydney', '2026-10-04', '2026-04-05'],
  ['Australia/Lord_Howe', '2026-10-04', '2026-04-05'], // 30-minute DST
  ['Pacific/Chatham', '2026-09-27', '2026-04-05'], // +12:45 / +13:45
  ['America/Santiago', '2026-09-06', '2026-04-04'], // at midnight: 00:00-01:00 skipped, 23:00-24:00 repeated
  ['Asia/Beirut', '2026-03-29', '2026-10-24'], // at midnight too
  ['Asia/Kolkata', '2026-03-29', '2026-10-25'],
  ['UTC', '2026-03-29', '2026-10-25'],
];

const hhmm = (h: number, m: number): string => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;

describe('nextFireTime for time triggers', () => {
  it('builds a fixed-time cron pattern with Sunday as 0', () => {
    expect(timePattern({ type: 'time', at: '06:30' })).toBe('0 30 6 * * *');
    expect(timePattern({ type: 'time', at: '23:59:58', days: ['mon', 'sun', 'sat'] })).toBe('58 59 23 * * 1,0,6');
  });

  it('fires at the local time in the home zone, strictly after the given instant', () => {
    const berlin = { timezone: 'Europe/Berlin' };
    expect(nextFireTime({ type: 'time', at: '06:30' }, at('2026-01-15T00:00:00Z'), berlin)).toBe(at('2026-01-15T05:30:00Z'));
    expect(nextFireTime({ type: 'time', at: '06:30' }, at('2026-01-15T05:30:00Z'), berlin)).toBe(at('2026-01-16T05:30:00Z'));
    expect(nextFireTime({ type: 'time', at: '06:30' }, at('2026-01-15T05:29:59.999Z'), berlin)).toBe(at('2026-01-15T05:30:00Z'));
    expect(nextFireTime({ type: 'time', at: '06:30:15' }, at('2026-07-15T00:00:00Z'), berlin)).toBe(at('2026-07-15T04:30:15Z'));
  });

  it('honours days: a weekday rule on Friday evening next fires on Monday', () => {
    const trigger: TimeTrigger = { type: 'time', at: '06:30', days: ['mon', 'tue', 'wed', 'thu', 'fri'] };
    // 2026-01-16 is a Friday.
    expect(nextFireTime(trigger, at('2026-01-16T20:00:00Z'), utc)).toBe(at('2026-01-19T06:30:00Z'));
  });

  it('fires a 02:30 rule once on the Berlin spring-forward day, at 03:00 local (01:00 UTC)', () => {
    const berlin = { timezone: 'Europe/Berlin' };
    const trigger: TimeTrigger = { type: 'time', at: '02:30' };
    const first = nextFireTime(trigger, at('2026-03-28T12:00:00Z'), berlin);
    expect(first).toBe(at('2026-03-29T01:00:00Z'));
    expect(nextFireTime(trigger, first!, berlin)).toBe(at('2026-03-30T00:30:00Z'));
  });

  it('fires a 02:30 rule once on the Berlin fall-back day, at the first 02:30 (CEST)', () => {
    const berlin = { timezone: 'Europe/Berlin' };
    const trigger: TimeTrigger = { type: 'time', at: '02:30' };
    const first = nextFireTime(trigger, at('2026-10-24T12:00:00Z'), berlin);
    expect(first).toBe(at('2026-10-25T00:30:00Z'));
    // Not again at the second 02:30 (CET, 01:30 UTC), even when asked from between the two.
    expect(nextFireTime(trigger, first!, berlin)).toBe(at('2026-10-26T01:30:00Z'));
    expect(nextFireTime(trigger, at('2026-10-25T01:15:00Z'), berlin)).toBe(at('2026-10-26T01:30:00Z'));
  });

  it.each<[string, string, string, string, string]>([
    // zone, local time, asked from, fires at (UTC), then next at (UTC)
    ['Australia/Lord_Howe', '02:15', '2026-10-03T00:00:00Z', '2026-10-03T15:30:00Z', '2026-10-04T15:15:00Z'], // gap 02:00-02:30: at 02:30 (+11)
    ['Australia/Lord_Howe', '01:45', '2026-04-04T00:00:00Z', '2026-04-04T14:45:00Z', '2026-04-05T15:15:00Z'], // 01:30-02:00 twice: the first
    ['Pacific/Chatham', '03:00', '2026-09-26T00:00:00Z', '2026-09-26T14:00:00Z', '2026-09-27T13:15:00Z'], // gap 02:45-03:45: at 03:45
    ['Pacific/Chatham', '03:00', '2026-04-04T00:00:00Z', '2026-04-04T13:15:00Z', '2026-04-05T14:15:00Z'], // 02:45-03:45 twice: the first
    ['America/Santiago', '00:30', '2026-09-05T12:00:00Z', '2026-09-06T04:00:00Z', '2026-09-07T03:30:00Z'], // gap 00:00-01:00: at 01:00
    ['America/Santiago', '23:30', '2026-04-04T12:00:00Z', '2026-04-05T02:30:00Z', '2026-04-06T03:30:00Z'], // 23:00-24:00 twice: the first
    ['Asia/Beirut', '00:00', '2026-03-28T12:00:00Z', '2026-03-28T22:00:00Z', '2026-03-29T21:00:00Z'], // gap 00:00-01:00: at 01:00
    ['Asia/Beirut', '23:15', '2026-10-24T12:00:00Z', '2026-10-24T20:15:00Z', '2026-10-25T21:15:00Z'], // 23:00-24:00 twice: the first
  ])('fires a rule at a time a DST change skips or repeats once, in %s at %s', (zone, time, from, first, then) => {
    const where = { timezone: zone };
    const trigger: TimeTrigger = { type: 'time', at: time };
    const fire = nextFireTime(trigger, at(from), where);
    expect(new Date(fire!).toISOString()).toBe(new Date(at(first)).toISOString());
    expect(new Date(nextFireTime(trigger, fire!, where)!).toISOString()).toBe(new Date(at(then)).toISOString());
  });

  it.each(SWITCHES)('fires a daily 02:30 rule exactly once on each DST switch day in %s', (zone, spring, fall) => {
    for (const day of [spring, fall]) {
      const fires: number[] = [];
      let t = at(`${day}T00:00:00Z`) - 2 * DAY;
      while (t < at(`${day}T00:00:00Z`) + 2 * DAY) {
        t = nextFireTime({ type: 'time', at: '02:30' }, t, { timezone: zone })!;
        fires.push(t);
      }
      const onDay = fires.filter((f) => localAt(f, zone).date === day);
      expect(onDay).toHaveLength(1);
      // Consecutive fires are one calendar day apart locally: none skipped, none doubled.
      const dates = fires.map((f) => localAt(f, zone).date);
      expect(new Set(dates).size).toBe(dates.length);
    }
  });

  it('matches a minute-by-minute scan at random instants around DST switches (fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SWITCHES),
        fc.boolean(),
        fc.integer({ min: -3 * DAY, max: 3 * DAY }),
        fc.integer({ min: 0, max: 23 }),
        fc.constantFrom(0, 1, 15, 29, 30, 59),
        fc.option(fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { minLength: 1, maxLength: 7 })),
        ([zone, spring, fall], onSpring, shift, h, m, days) => {
          const trigger: TimeTrigger = days === null ? { type: 'time', at: hhmm(h, m) } : { type: 'time', at: hhmm(h, m), days };
          const after = at(`${onSpring ? spring : fall}T00:00:00Z`) + shift;
          const next = nextFireTime(trigger, after, { timezone: zone });
          expect(next).toBeDefined();
          expect(next!).toBeGreaterThan(after);
          expect(next).toBe(bruteForceNext(trigger, after, zone));
          // The local wall time is `at`, unless `at` fell into a spring-forward gap that day.
          const local = localAt(next!, zone);
          if (local.hhmm !== trigger.at) {
            expect(local.hhmm > trigger.at).toBe(true);
            // Just before, the clock read an earlier time that day, or (a gap at midnight) the day before.
            const before = localAt(next! - MIN, zone);
            expect(before.date < local.date || (before.date === local.date && before.hhmm < trigger.at)).toBe(true);
          }
        },
      ),
      { seed: 1126, numRuns: 200 },
    );
  });
});

describe('nextFireTime for cron triggers', () => {
  it('reads 6 fields with seconds first, strictly after the instant', () => {
    const trigger = { type: 'cron', expression: '*/15 * * * * *' } as const;
    expect(nextFireTime(trigger, at('2026-01-01T00:00:14.500Z'), utc)).toBe(at('2026-01-01T00:00:15Z'));
    expect(nextFireTime(trigger, at('2026-01-01T00:00:15Z'), utc)).toBe(at('2026-01-01T00:00:30Z'));
  });

  it('reads 5 fields in the home zone', () => {
    const trigger = { type: 'cron', expression: '30 6 * * 1-5' } as const;
    // Friday 2026-01-16 after 06:30 New York (11:30 UTC): next is Monday 06:30 EST.
    expect(nextFireTime(trigger, at('2026-01-16T12:00:00Z'), { timezone: 'America/New_York' })).toBe(at('2026-01-19T11:30:00Z'));
  });

  it('returns undefined for a pattern that never matches', () => {
    expect(nextFireTime({ type: 'cron', expression: '0 0 30 2 *' }, at('2026-01-01T00:00:00Z'), utc)).toBeUndefined();
  });

  it(`returns undefined when the next match is more than ${SCHEDULE_HORIZON_DAYS} days ahead`, () => {
    const leapDay = { type: 'cron', expression: '0 0 29 2 *' } as const;
    // 2028-02-29 is 730 days after 2026-03-01, and 365 after 2027-03-01.
    expect(nextFireTime(leapDay, at('2026-03-01T00:00:00Z'), utc)).toBeUndefined();
    expect(nextFireTime(leapDay, at('2027-03-01T00:00:00Z'), utc)).toBe(at('2028-02-29T00:00:00Z'));
    const horizon = at('2028-02-29T00:00:00Z') - SCHEDULE_HORIZON_DAYS * DAY;
    expect(nextFireTime(leapDay, horizon, utc)).toBe(at('2028-02-29T00:00:00Z'));
    expect(nextFireTime(leapDay, horizon - 1, utc)).toBeUndefined();
  });

  const sequence = (expression: string, from: string, count: number, timezone = 'Europe/Berlin'): string[] => {
    const out: string[] = [];
    let t = at(from);
    for (let i = 0; i < count; i++) {
      t = nextFireTime({ type: 'cron', expression }, t, { timezone })!;
      out.push(new Date(t).toISOString());
    }
    return out;
  };

  it.each<[string, string[], string[]]>([
    // Berlin 2026: 02:00-03:00 skipped on 29 March (01:00 UTC), 02:00-03:00 twice on 25 October.
    ['30 2 * * *', ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'], ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']],
    [
      '30 2,14 * * *',
      ['2026-03-29T01:00:00.000Z', '2026-03-29T12:30:00.000Z', '2026-03-30T00:30:00.000Z'],
      ['2026-10-25T00:30:00.000Z', '2026-10-25T13:30:00.000Z', '2026-10-26T01:30:00.000Z'],
    ],
    [
      '30 2-3 * * *',
      ['2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'],
      ['2026-10-25T00:30:00.000Z', '2026-10-25T02:30:00.000Z', '2026-10-26T01:30:00.000Z'],
    ],
    [
      '0 0,30 2 * * *',
      ['2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z', '2026-03-30T00:30:00.000Z'],
      ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:00:00.000Z'],
    ],
  ])(
    'fires %s like a single time across both DST days: once at the end of the gap, once (the first) of a repeated hour',
    (expression, spring, fall) => {
      expect(sequence(expression, '2026-03-28T23:00:00Z', spring.length)).toEqual(spring);
      expect(sequence(expression, '2026-10-24T23:00:00Z', fall.length)).toEqual(fall);
    },
  );

  it('fires a list of hours like a single one on Chatham, 45 minutes off the hour', () => {
    // 2026-09-27 02:45-03:45 skipped: 03:00 fires at 03:45 (+13:45); 2026-04-05 02:45-03:45 twice: the first.
    expect(sequence('0 3,15 * * *', '2026-09-26T12:00:00Z', 2, 'Pacific/Chatham')).toEqual([
      '2026-09-26T14:00:00.000Z',
      '2026-09-27T01:15:00.000Z',
    ]);
    expect(sequence('0 3,15 * * *', '2026-04-04T12:00:00Z', 3, 'Pacific/Chatham')).toEqual([
      '2026-04-04T13:15:00.000Z',
      '2026-04-05T02:15:00.000Z',
      '2026-04-05T14:15:00.000Z',
    ]);
  });

  it('skips the times a gap swallows and fires twice in a repeated hour when a field has * or a step', () => {
    expect(sequence('*/30 2 * * *', '2026-03-28T23:00:00Z', 1)).toEqual(['2026-03-30T00:00:00.000Z']);
    expect(sequence('*/30 2 * * *', '2026-10-24T23:00:00Z', 5)).toEqual([
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-26T01:00:00.000Z',
    ]);
    // Lord Howe 2026-04-05: 01:30-02:00 twice (+11 until 15:00 UTC, then +10:30): 01:40 comes twice.
    expect(sequence('*/20 1 * * *', '2026-04-04T14:00:00Z', 6, 'Australia/Lord_Howe')).toEqual([
      '2026-04-04T14:20:00.000Z',
      '2026-04-04T14:40:00.000Z',
      '2026-04-04T15:10:00.000Z',
      '2026-04-05T14:30:00.000Z',
      '2026-04-05T14:50:00.000Z',
      '2026-04-05T15:10:00.000Z',
    ]);
  });

  it("agrees with croner's own time-zone handling around DST changes (fixed seed)", () => {
    // croner searches the zone itself (slowly, see the timing test); it is the reference here.
    const zones = SWITCHES.map(([zone]) => zone).concat('Antarctica/Troll', 'Africa/Casablanca');
    const field = (xs: string[]) => fc.constantFrom(...xs);
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom(...SWITCHES.flatMap(([, spring, fall]) => [spring, fall])),
        fc.integer({ min: -2 * DAY, max: 2 * DAY }),
        fc.tuple(
          field(['0', '0,30', '*/20', '15']),
          field(['0', '30', '*/15', '0,30', '10-20', '*', '45']),
          field(['*', '0', '1', '2', '3', '23', '0,12', '1-3', '2,14', '*/2', '22-23']),
          field(['*', '*', '1', '25-31', '4,5']),
          field(['*', '*', '0', '6', '1-5', 'SAT,SUN']),
        ),
        (zone, day, shift, [sec, min, hour, dom, dow]) => {
          const expression = `${sec} ${min} ${hour} ${dom} * ${dow}`;
          const croner = new Cron(expression, { paused: true, timezone: zone, mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard' });
          let t = at(`${day}T00:00:00Z`) + shift;
          for (let i = 0; i < 4; i++) {
            const next = nextFireTime({ type: 'cron', expression }, t, { timezone: zone });
            expect(next).toBe(croner.nextRun(new Date(t))?.getTime());
            if (next === undefined) return;
            t = next;
          }
        },
      ),
      { seed: 1127, numRuns: 300 },
    );
  });

  it('takes under 50 ms a call, in any zone, for patterns that match little but what DST gaps skip', () => {
    // croner's own zone search took 0.1 s to 100 s on such patterns.
    const patterns = [
      '* * 2 * * *',
      '* * 1-2 * * *',
      '* * 2 29 3 *',
      '* * 2 25-31 3 *',
      '* * 2 * 3 0',
      '* 2 25-31 10 *',
      '* * * 29 2 *',
      '0 0 30 2 *',
    ];
    const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Antarctica/Troll'];
    nextFireTime({ type: 'cron', expression: '* * * * *' }, 0, utc); // loads ICU's time zone data
    let slowest = 0;
    for (const timezone of zones) {
      for (const expression of patterns) {
        for (let t = at('2025-01-01T00:00:00Z'); t < at('2027-06-01T00:00:00Z'); t += 11 * DAY) {
          const started = performance.now();
          const next = nextFireTime({ type: 'cron', expression }, t, { timezone });
          slowest = Math.max(slowest, performance.now() - started);
          if (next !== undefined) expect(next - t).toBeLessThanOrEqual(SCHEDULE_HORIZON_DAYS * DAY);
        }
      }
    }
    expect(slowest).toBeLessThan(50);
  });

  it("never fires croner's extensions (validation refuses them), without searching", () => {
    // Each took croner 0.1 s to 100 s in Berlin or Lord Howe: they match only times DST gaps skip, or nothing.
    for (const expression of [
      '* * 2 25-31 3 +0',
      '* 2 * 3 0#5',
      '0,10,20 2 * 10 0#1',
      '* * * 31 1,3,5,7,8,10,12 +1#1',
      '0 0 L * *',
      '@daily',
    ]) {
      for (const timezone of ['Europe/Berlin', 'Australia/Lord_Howe']) {
        const started = performance.now();
        expect(nextFireTime({ type: 'cron', expression }, at('2026-11-26T00:00:00Z'), { timezone })).toBeUndefined();
        expect(performance.now() - started).toBeLessThan(50);
      }
    }
  });

  it('throws when croner breaks its promise of a match strictly after the instant', () => {
    // A walk that went on would return a wrong time or none; undefined would read as "never fires".
    const spy = vi.spyOn(Cron.prototype, 'nextRun').mockImplementation((d) => (d instanceof Date ? d : null));
    try {
      expect(() => nextFireTime({ type: 'cron', expression: '0 * * * *' }, at('2026-01-01T00:00:00Z'), utc)).toThrow(
        /strictly after|next match/,
      );
    } finally {
      spy.mockRestore();
    }
  });

  it('is always strictly after the instant and never skips a match (fixed seed)', () => {
    const trigger = { type: 'cron', expression: '0 */7 * * * *' } as const;
    fc.assert(
      fc.property(fc.integer({ min: at('2026-01-01T00:00:00Z'), max: at('2027-01-01T00:00:00Z') }), (after) => {
        const next = nextFireTime(trigger, after, { timezone: 'Asia/Kolkata' })!;
        expect(next).toBeGreaterThan(after);
        expect(next - after).toBeLessThanOrEqual(7 * MIN);
        expect(localAt(next, 'Asia/Kolkata').hhmm.slice(3)).toMatch(/^(00|07|14|21|28|35|42|49|56)$/);
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('nextFireTime for sun triggers', () => {
  const berlin = { timezone: 'Europe/Berlin', location: { latitude: 52.52, longitude: 13.405 } };
  const second = (d: Date): number => Math.round(d.getTime() / 1000) * 1000;

  it("is suncalc's sunrise or sunset, to the second, moved by the offset", () => {
    const times = SunCalc.getTimes(new Date('2026-06-01T12:00:00Z'), 52.52, 13.405);
    const after = at('2026-06-01T00:00:00Z');
    expect(nextFireTime({ type: 'sun', event: 'sunrise' }, after, berlin)).toBe(second(times.sunrise));
    expect(nextFireTime({ type: 'sun', event: 'sunset' }, after, berlin)).toBe(second(times.sunset));
    expect(nextFireTime({ type: 'sun', event: 'sunset', offset: '-30m' }, after, berlin)).toBe(second(times.sunset) - 30 * MIN);
    expect(nextFireTime({ type: 'sun', event: 'sunrise', offset: '+1h' }, after, berlin)).toBe(second(times.sunrise) + 60 * MIN);
  });

  it("moves to the next day once today's event has passed", () => {
    const today = SunCalc.getTimes(new Date('2026-06-01T12:00:00Z'), 52.52, 13.405);
    const tomorrow = SunCalc.getTimes(new Date('2026-06-02T12:00:00Z'), 52.52, 13.405);
    expect(nextFireTime({ type: 'sun', event: 'sunset' }, second(today.sunset), berlin)).toBe(second(tomorrow.sunset));
  });

  it('skips polar night: Tromsø has its next sunrise in January', () => {
    const tromso = { timezone: 'Europe/Oslo', location: { latitude: 69.65, longitude: 18.96 } };
    const next = nextFireTime({ type: 'sun', event: 'sunrise' }, at('2026-12-01T00:00:00Z'), tromso)!;
    expect(new Date(next).toISOString().slice(0, 7)).toBe('2027-01');
  });

  it('returns undefined without a location, or where no event happens within the horizon', () => {
    expect(nextFireTime({ type: 'sun', event: 'sunrise' }, at('2026-12-01T00:00:00Z'), utc)).toBeUndefined();
    const pole = { timezone: 'UTC', location: { latitude: 90, longitude: 0 } };
    expect(nextFireTime({ type: 'sun', event: 'sunrise' }, at('2026-12-01T00:00:00Z'), pole)).toBeUndefined();
  });

  it('is strictly after the instant and the earliest such event (fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -65, max: 65, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.constantFrom('sunrise', 'sunset'),
        fc.integer({ min: -6 * 60, max: 6 * 60 }),
        fc.integer({ min: at('2026-01-01T00:00:00Z'), max: at('2027-01-01T00:00:00Z') }),
        (latitude, longitude, event, offsetMin, after) => {
          const where = { timezone: 'UTC', location: { latitude, longitude } };
          const trigger = { type: 'sun', event, offset: `${offsetMin < 0 ? '-' : ''}${Math.abs(offsetMin)}m` } as const;
          const next = nextFireTime(trigger, after, where)!;
          expect(next).toBeGreaterThan(after);
          expect(next - after).toBeLessThanOrEqual(DAY + 10 * MIN);
          // Earliest: asking from just before it gives it, and from any point in between too.
          expect(nextFireTime(trigger, next - 1, where)).toBe(next);
          expect(nextFireTime(trigger, after + Math.floor((next - after) / 2), where)).toBe(next);
          expect(nextFireTime(trigger, next, where)!).toBeGreaterThan(next + DAY / 2);
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });
});
