/** The timers scenario's homes: their rules (far-future schedules, one staggered cron), the device they command, and the cron's due times. */
import type { HelloDevice } from '../../../tools/hub-client/hub-client.ts';

/** The device every rule commands (declared by the home's hub in its hello). */
export const TIMER_DEVICE: HelloDevice = { deviceId: 'light1', type: 'light', capabilities: ['on'] };

/** Rules per home: every one holds one pending schedule reminder (`at.<rule>.0`). */
export const RULES_PER_HOME = 10;

/** The id of rule `k` of a home; rule 0 becomes the firing cron rule in the lateness phase. */
export const ruleId = (k: number): string => `t${k}`;

const command = (on: boolean) => ({ type: 'command', device: TIMER_DEVICE.deviceId, name: 'set', params: { on } });

/**
 * Rule `k` as a far-future schedule: a cron on 1 January at 04:0k:00 (home time), so it never comes
 * due during a run (a run that spans that minute sees up to ten firings per home).
 */
export function farRule(k: number): Record<string, unknown> {
  return {
    id: ruleId(k),
    name: `Bench far-future schedule ${k}`,
    when: [{ type: 'cron', expression: `0 ${k} 4 1 1 *` }],
    then: [command(false)],
  };
}

/**
 * The firing rule of home `index`: every `periodS` seconds at second offset `index % periodS`, so
 * N homes spread over the period make N / periodS firings a second, due at whole seconds.
 * @param periodS seconds, a divisor of 60.
 */
export function cronRule(index: number, periodS: number): Record<string, unknown> {
  return {
    id: ruleId(0),
    name: 'Bench periodic command',
    when: [{ type: 'cron', expression: `${index % periodS}-59/${periodS} * * * * *` }],
    then: [command(true)],
  };
}

/** The cron schedule of home `index`: it is due at epoch ms `offsetMs + k·periodMs` (whole seconds, so time zones do not shift it). */
export interface CronSlot {
  readonly periodMs: number;
  readonly offsetMs: number;
}

export const cronSlotOf = (index: number, periodS: number): CronSlot => ({ periodMs: periodS * 1000, offsetMs: (index % periodS) * 1000 });

/**
 * The due time (epoch ms) a command received at `receivedAt` answers: the latest boundary at or
 * before it. Exact while lateness stays below one period (a later one is counted against the next
 * boundary, which then shows a missing and a doubled firing).
 */
export function dueBefore(slot: CronSlot, receivedAt: number): number {
  return slot.offsetMs + Math.floor((receivedAt - slot.offsetMs) / slot.periodMs) * slot.periodMs;
}

/** The due times of `slot` in [from, to) (epoch ms). */
export function dueTimesIn(slot: CronSlot, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = dueBefore(slot, from - 1) + slot.periodMs; t < to; t += slot.periodMs) out.push(t);
  return out;
}
