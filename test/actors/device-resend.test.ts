/**
 * The device actor's delivery check of `sent` commands, through its pure reducer: a command still
 * `sent` when its check comes is sent again (same id) while the hub's stream is open, backing off
 * 3 → 6 → 12 s, at most 3 times, never past its expiry, never after its result, never after a
 * later command of the device went down; a reconnect starts the checks over; a replay of the
 * journal gives the same state.
 */
import { describe, expect, it } from 'vitest';
import { deviceActorId } from '../../actors/actor-id.ts';
import { resendDelay } from '../../actors/device-commands.ts';
import { deviceBehavior } from '../../actors/device.ts';
import { COMMAND_LIMITS } from '../../actors/device-state.ts';
import type { DeviceMsg, DeviceState, ExpireResult } from '../../actors/device-state.ts';
import type { DomainEffect, IssueCommand } from '../../actors/types.ts';
import { valueOf } from '../support/outcome.ts';
import { mulberry32, pick, randomInt } from '../support/prng.ts';

const ID = deviceActorId('h1', 'lamp');
const { resendAfterMs, resendLimit } = COMMAND_LIMITS;
const run = (s: DeviceState, msg: DeviceMsg, now: number) => deviceBehavior.receive(s, msg, { id: ID, now, replaying: false });
const wakeAt = (s: DeviceState): number | undefined => deviceBehavior.nextWakeAt!(s);
const WAKE: DeviceMsg = { type: 'command.expire' };
const issue = (commandId: string, ttlMs = 600_000): IssueCommand => ({
  type: 'command.issue',
  commandId,
  name: 'set',
  params: { on: true },
  ttlMs,
  depth: 0,
  source: { kind: 'app' },
});
const online: DeviceMsg = { type: 'hub.connection', online: true, hubId: 'hub1' };
const offline: DeviceMsg = { type: 'hub.connection', online: false };
const onlineDevice = (): DeviceState => {
  const attached = run(deviceBehavior.initial(ID), { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] }, 0);
  return run(attached.state, online, 0).state;
};
const sentIds = (effects: readonly DomainEffect[] | undefined): string[] =>
  (effects ?? []).flatMap((e) => (e.type === 'hub.command' ? [e.command.commandId] : []));

describe('device delivery check of sent commands', () => {
  it('sends a command still `sent` again, under the same id, resendAfterMs after it went down', () => {
    const first = run(onlineDevice(), issue('c1'), 1_000);
    expect(sentIds(first.effects)).toEqual(['c1']);
    // One wake-up covers it: the check comes before the expiry.
    expect(wakeAt(first.state)).toBe(1_000 + resendAfterMs);
    const early = run(first.state, WAKE, 1_000 + resendAfterMs - 1);
    expect(early.state).toBe(first.state);
    expect(early.journal).toBe(false);
    expect(sentIds(early.effects)).toEqual([]);
    const due = run(first.state, WAKE, 1_000 + resendAfterMs);
    expect(due.journal).toBe(true);
    expect(valueOf<ExpireResult>(due.reply)).toEqual({ expired: [], resent: ['c1'] });
    // The very command the first send carried; no status event (it stays `sent`).
    expect(due.effects).toEqual([first.effects![0]]);
    expect(due.state.commands.c1).toEqual(first.state.commands.c1);
    expect(due.state.resends).toEqual({ c1: { at: 4_000 + 2 * resendAfterMs, n: 1 } });
    expect(wakeAt(due.state)).toBe(4_000 + 2 * resendAfterMs);
  });

  it('backs off 3 → 6 → 12 s and stops after resendLimit re-sends (the hello sends it again)', () => {
    let s = run(onlineDevice(), issue('c1', COMMAND_LIMITS.maxTtlMs), 0).state;
    const gaps: number[] = [];
    let last = 0;
    for (let i = 0; i < resendLimit; i++) {
      const at = wakeAt(s)!;
      gaps.push(at - last);
      const step = run(s, WAKE, at);
      expect(sentIds(step.effects)).toEqual(['c1']);
      s = step.state;
      last = at;
    }
    expect(resendLimit).toBe(3);
    expect(gaps).toEqual([3_000, 6_000, 12_000]);
    expect([0, 1, 2].map(resendDelay)).toEqual([3_000, 6_000, 12_000]);
    expect(s.resends?.c1?.n).toBe(resendLimit);
    // No check is left: the next wake-up is the expiry, and an early wake sends nothing.
    expect(wakeAt(s)).toBe(COMMAND_LIMITS.maxTtlMs);
    const idle = run(s, WAKE, last + 600_000);
    expect(sentIds(idle.effects)).toEqual([]);
    expect(idle.journal).toBe(false);
    // The hub's next hello sends it again and starts the checks over.
    const back = run(run(s, offline, last + 1_000).state, online, last + 2_000);
    expect(sentIds(back.effects)).toEqual(['c1']);
    expect(back.state.resends?.c1).toEqual({ at: last + 2_000 + resendAfterMs, n: 0 });
  });

  it('costs at most 4 journal entries over the hour for a command never answered with a 1 h TTL', () => {
    const HOUR = 3_600_000;
    let s = run(onlineDevice(), issue('c1', HOUR), 0).state;
    let journaled = 1; // the issue
    let resent = 0;
    let wakes = 0;
    for (let at = wakeAt(s); at !== undefined && at < HOUR; at = wakeAt(s)) {
      const step = run(s, WAKE, at);
      wakes++;
      if (step.journal) journaled++;
      resent += sentIds(step.effects).length;
      s = step.state;
      expect(wakes).toBeLessThan(100); // no busy loop on a check that sends nothing
    }
    expect(resent).toBe(resendLimit);
    expect(journaled).toBeLessThanOrEqual(4);
    // Then the expiry, at the hour.
    expect(wakeAt(s)).toBe(HOUR);
    expect(run(s, WAKE, HOUR).state.commands.c1?.status).toBe('expired');
  });

  it('never sends a command again after a later command of the device went down (off then on)', () => {
    // c1 "on" goes `sent` (durable) but its send is lost with its node; c2 "off" goes down.
    let s = onlineDevice();
    const events: string[] = [];
    const c1 = run(s, { ...issue('c1'), params: { on: true } }, 1_000); // effect dropped
    s = c1.state;
    const c2 = run(s, { ...issue('c2'), params: { on: false } }, 2_000);
    events.push(...sentIds(c2.effects));
    s = c2.state;
    // Every wake-up over the next minutes: c1 is never sent after c2.
    for (let at = wakeAt(s); at !== undefined && at < 120_000; at = wakeAt(s)) {
      const step = run(s, WAKE, at);
      events.push(...sentIds(step.effects));
      s = step.state;
    }
    expect(events.indexOf('c1')).toBe(-1);
    expect(events.filter((id) => id === 'c2')).toHaveLength(1 + resendLimit);
    expect(s.commands.c1?.status).toBe('sent'); // until its result, its expiry or the hub's hello
    // The hello sends every `sent` command again in issue order: c1, then c2 (the last word).
    const back = run(run(s, offline, 130_000).state, online, 131_000);
    expect(sentIds(back.effects)).toEqual(['c1', 'c2']);
    // Then only the newest is checked.
    const next = run(back.state, WAKE, wakeAt(back.state)!);
    expect(sentIds(next.effects)).toEqual(['c2']);
    // A later command that expired while queued (never sent) does not stop the checks.
    let q = run(run(onlineDevice(), issue('a'), 0).state, offline, 10).state;
    q = run(q, issue('b', 500), 20).state;
    q = run(q, WAKE, 520).state;
    expect(q.commands.b?.status).toBe('expired');
    q = run(q, online, 600).state; // sends a again
    expect(sentIds(run(q, WAKE, wakeAt(q)!).effects)).toEqual(['a']);
  });

  it('does not send a command again once its result came, and forgets its check', () => {
    let s = run(onlineDevice(), issue('c1'), 1_000).state;
    s = run(s, WAKE, 4_000).state; // re-sent once
    expect(s.resends).toBeDefined();
    const done = run(s, { type: 'command.result', commandId: 'c1', ok: true }, 5_000);
    expect(done.state.commands.c1?.status).toBe('succeeded');
    expect(done.state).not.toHaveProperty('resends');
    expect(wakeAt(done.state)).toBeUndefined();
    const late = run(done.state, WAKE, 20_000);
    expect(sentIds(late.effects)).toEqual([]);
    expect(late.journal).toBe(false);
    // A result before the first check: no wake-up is left for it either.
    const quick = run(run(onlineDevice(), issue('c2'), 1_000).state, { type: 'command.result', commandId: 'c2', ok: false }, 1_050);
    expect(wakeAt(quick.state)).toBeUndefined();
  });

  it('never checks past the expiry: the wake at the expiry expires the command and sends nothing', () => {
    let s = run(onlineDevice(), issue('c1', 5_000), 0).state; // expires at 5 000
    const first = run(s, WAKE, 3_000);
    expect(sentIds(first.effects)).toEqual(['c1']);
    s = first.state;
    // The next check (9 000) would come after the expiry: the wake-up is the expiry.
    expect(wakeAt(s)).toBe(5_000);
    const end = run(s, WAKE, 5_000);
    expect(valueOf<ExpireResult>(end.reply)).toEqual({ expired: ['c1'], resent: [] });
    expect(sentIds(end.effects)).toEqual([]);
    expect(end.state.commands.c1?.status).toBe('expired');
    expect(end.state).not.toHaveProperty('resends');
    expect(wakeAt(end.state)).toBeUndefined();
    // A TTL shorter than the first check: the command is never sent again, only expired.
    const short = run(onlineDevice(), issue('c2', 2_000), 0).state;
    expect(wakeAt(short)).toBe(2_000);
    expect(sentIds(run(short, WAKE, 2_000).effects)).toEqual([]);
  });

  it('does not check while the hub is offline (its hello sends them), and starts over from a reconnect', () => {
    let s = run(onlineDevice(), issue('c1'), 0).state;
    s = run(s, WAKE, 3_000).state;
    s = run(s, WAKE, 9_000).state; // n = 2, next at 21 000
    expect(s.resends?.c1).toEqual({ at: 21_000, n: 2 });
    s = run(s, offline, 10_000).state;
    expect(wakeAt(s)).toBe(600_000); // only the expiry
    const idle = run(s, WAKE, 30_000);
    expect(sentIds(idle.effects)).toEqual([]);
    expect(idle.journal).toBe(false);
    const back = run(s, online, 40_000);
    expect(sentIds(back.effects)).toEqual(['c1']);
    expect(back.state.resends?.c1).toEqual({ at: 40_000 + resendAfterMs, n: 0 });
    expect(wakeAt(back.state)).toBe(40_000 + resendAfterMs);
    expect(resendDelay(1)).toBe(2 * resendAfterMs);
    const next = run(back.state, WAKE, 40_000 + resendAfterMs);
    expect(sentIds(next.effects)).toEqual(['c1']);
    expect(next.state.resends?.c1).toEqual({ at: 43_000 + 2 * resendAfterMs, n: 1 });
  });

  it('checks only the newest command sent: the older ones wait for their result, expiry or the hello', () => {
    let s = onlineDevice();
    s = run(s, issue('z'), 1_000).state;
    s = run(s, issue('a'), 1_500).state;
    s = run(s, issue('m'), 2_000).state;
    expect(wakeAt(s)).toBe(2_000 + resendAfterMs);
    const step = run(s, WAKE, 2_000 + resendAfterMs);
    expect(sentIds(step.effects)).toEqual(['m']);
    // m answered: z and a are still not re-sent (m went down after them).
    const done = run(step.state, { type: 'command.result', commandId: 'm', ok: true }, 6_000).state;
    expect(wakeAt(done)).toBe(600_000 + 1_000);
    expect(sentIds(run(done, WAKE, 30_000).effects)).toEqual([]);
  });

  it('checks a `sent` command of a state written before checks existed (no entry) from its sentAt', () => {
    const s = run(onlineDevice(), issue('c1'), 1_000).state;
    const { resends: _none, ...old } = s;
    expect(wakeAt(old)).toBe(1_000 + resendAfterMs);
    expect(sentIds(run(old, WAKE, 50_000).effects)).toEqual(['c1']);
  });

  it('is deterministic: random histories replayed from their journal give the same state (fixed seed)', () => {
    const rand = mulberry32(0x15c0_ffee);
    let resent = 0;
    for (let trial = 0; trial < 150; trial++) {
      let s = onlineDevice();
      const journal: [DeviceMsg, number][] = [];
      let now = 0;
      let n = 0;
      for (let i = 0; i < 60; i++) {
        const live = Object.values(s.commands).filter((c) => c.status === 'sent' || c.status === 'queued');
        const r = rand();
        let msg: DeviceMsg;
        // Mostly the wake-up at its time (as the runtime's reminder delivers it), sometimes early or late.
        const wake = wakeAt(s);
        if (r < 0.4 && wake !== undefined) {
          now = Math.max(now, wake + randomInt(rand, 3) * 500 - 500);
          msg = WAKE;
        } else {
          now += randomInt(rand, 4_000);
          if (r < 0.6) msg = issue(`c${n++}`, 1_000 + randomInt(rand, 60_000));
          else if (r < 0.75 && live.length > 0) msg = { type: 'command.result', commandId: pick(rand, live).commandId, ok: rand() < 0.8 };
          else if (r < 0.85) msg = offline;
          else if (r < 0.95) msg = online;
          else msg = WAKE;
        }
        const step = run(s, msg, now);
        if (msg === WAKE) {
          resent += sentIds(step.effects).length;
          // A check never re-sends a command once a later one of the device went down.
          for (const id of sentIds(step.effects)) {
            const c = s.commands[id]!;
            expect(Object.values(s.commands).some((d) => d.issueNo > c.issueNo && d.sentAt !== undefined)).toBe(false);
            expect(s.resends?.[id]?.n ?? 0).toBeLessThan(resendLimit);
          }
        }
        for (const id of sentIds(step.effects)) {
          // Only a live command goes down, only while the stream is open, never at or past its expiry.
          const c = step.state.commands[id]!;
          expect(c.status).toBe('sent');
          expect(now).toBeLessThan(c.expiresAtMs);
          expect(step.state.hubOnline).toBe(true);
        }
        if (step.journal) journal.push([msg, now]);
        // A step that is not journaled leaves the state as it was.
        else expect(step.state).toBe(s);
        for (const id of Object.keys(step.state.resends ?? {})) expect(step.state.commands[id]?.status).toBe('sent');
        s = step.state;
      }
      let replayed = onlineDevice();
      for (const [msg, at] of journal) replayed = deviceBehavior.receive(replayed, msg, { id: ID, now: at, replaying: true }).state;
      expect(JSON.stringify(replayed)).toBe(JSON.stringify(s));
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    }
    // The histories do exercise the checks.
    expect(resent).toBeGreaterThan(500);
  });
});
