/** ReminderScheduler: one timer for many reminders, fired in due order, each once, none after delete or drop. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseReminderMember, reminderMember } from '../../runtime/reminder-changes.ts';
import { ReminderScheduler } from '../../runtime/reminder-scheduler.ts';
import { mulberry32 } from '../support/prng.ts';

describe('ReminderScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const collect = () => {
    const fired: string[] = [];
    const s = new ReminderScheduler((shard, actorId, name, at) => fired.push(`${shard}/${actorId}/${name}/${at}`), Date.now);
    return { s, fired };
  };

  it('fires each reminder once, in due order, when it is due', () => {
    const { s, fired } = collect();
    s.set(1, reminderMember('home:a', 'x'), 1_000_300);
    s.set(1, reminderMember('home:a', 'y'), 1_000_100);
    s.set(2, reminderMember('home:b', 'x'), 1_000_200);
    vi.advanceTimersByTime(99);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['1/home:a/y/1000100']);
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual(['1/home:a/y/1000100', '2/home:b/x/1000200', '1/home:a/x/1000300']);
    expect(s.size).toBe(0);
  });

  it('moves a reminder set again, and forgets deleted ones and dropped shards', () => {
    const { s, fired } = collect();
    s.set(1, 'a@home:1', 1_000_100);
    s.set(1, 'a@home:1', 1_000_500);
    s.set(1, 'b@home:1', 1_000_100);
    s.delete(1, 'b@home:1');
    s.set(2, 'c@home:2', 1_000_100);
    s.dropShard(2);
    expect(s.size).toBe(1);
    vi.advanceTimersByTime(400);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['1/home:1/a/1000500']);
  });

  it('keeps the earlier time on ensure and fires past-due reminders at once', () => {
    const { s, fired } = collect();
    s.set(1, 'a@home:1', 1_000_300);
    s.ensure(1, 'a@home:1', 999_000);
    s.ensure(1, 'b@home:1', 999_000);
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(['1/home:1/b/999000']);
  });

  it('never fires after stop', () => {
    const { s, fired } = collect();
    s.set(1, 'a@home:1', 1_000_010);
    s.stop();
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual([]);
  });

  it('splits members at the first @ (actor ids may hold one, names never)', () => {
    expect(parseReminderMember(reminderMember('device:h1:d@1', 'for.r1.0'))).toEqual({ actorId: 'device:h1:d@1', name: 'for.r1.0' });
    expect(parseReminderMember('@x')).toBeUndefined();
    expect(parseReminderMember('x@')).toBeUndefined();
  });

  it('agrees with a plain model over random sets, deletes and drops, with heap compaction (fixed seed)', () => {
    for (const seed of [1, 42, 9001]) {
      const rand = mulberry32(seed);
      const { s, fired } = collect();
      const model = new Map<string, number>(); // `${shard}|${member}` → at
      const expected: string[] = [];
      let now = Date.now();
      for (let i = 0; i < 3_000; i++) {
        const shard = Math.floor(rand() * 4);
        const member = `n${Math.floor(rand() * 30)}@home:${Math.floor(rand() * 5)}`;
        const r = rand();
        if (r < 0.6) {
          const at = now + Math.floor(rand() * 500);
          s.set(shard, member, at);
          model.set(`${shard}|${member}`, at);
        } else if (r < 0.85) {
          s.delete(shard, member);
          model.delete(`${shard}|${member}`);
        } else if (r < 0.87) {
          s.dropShard(shard);
          for (const k of [...model.keys()]) if (k.startsWith(`${shard}|`)) model.delete(k);
        } else {
          const step = Math.floor(rand() * 50);
          now += step;
          // Everything due by `now` fires, in time order (ties in any order).
          const due = [...model].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
          for (const [k, at] of due) {
            model.delete(k);
            const [sh, m] = k.split('|') as [string, string];
            const p = parseReminderMember(m)!;
            expected.push(`${sh}/${p.actorId}/${p.name}/${at}`);
          }
          vi.advanceTimersByTime(step);
        }
        expect(s.size).toBe(model.size);
      }
      expect([...fired].sort()).toEqual([...expected].sort());
      // Fired in due order.
      const times = fired.map((f) => Number(f.split('/').at(-1)));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }
  });
});
