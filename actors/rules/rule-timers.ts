/**
 * The durable timers of a home's rules, held as reminders of the home actor: `for.<rule>.<i>` (an
 * attribute trigger's value held long enough), `at.<rule>.<i>` (the next time of a schedule
 * trigger) and `run.<rule>.<n>` (a run waiting in a delay; see rule-runs.ts). Rule ids have no `.`,
 * so a name splits into exactly three parts.
 */
import type { Value } from '../types.ts';
import { ownGet } from '../validation.ts';
import { parseDuration } from './duration.ts';
import type { ReminderBook } from './reminder-book.ts';
import type { TriggerMatch } from './rule-evaluator.ts';
import { DEFAULT_MISFIRE_GRACE, type AttributeTrigger, type Rule, type ScheduleTrigger, type Trigger } from './rule-types.ts';
import { nextFireTime, type ScheduleWhere } from './schedule.ts';

/** The kinds of rule timers, each a reminder name prefix. */
export type TimerKind = 'for' | 'at' | 'run';

/**
 * The reminder name of a rule timer: `<kind>.<ruleId>.<n>` (n: trigger index, or run number; a
 * non-negative safe integer, which `parseTimerName` reads back).
 */
export const timerName = (kind: TimerKind, ruleId: string, n: number): string => `${kind}.${ruleId}.${n}`;

// Decimal without leading zeros, at most 16 digits: every safe integer (run numbers count up per home).
const TIMER_NUMBER = /^(?:0|[1-9]\d{0,15})$/;

/** A rule timer's name taken apart, or undefined for any other name (the runtime's own, a malformed one). */
export function parseTimerName(name: string): { readonly kind: TimerKind; readonly ruleId: string; readonly n: number } | undefined {
  const parts = name.split('.');
  if (parts.length !== 3) return undefined;
  const [kind, ruleId, n] = parts as [string, string, string];
  if ((kind !== 'for' && kind !== 'at' && kind !== 'run') || ruleId.length === 0 || !TIMER_NUMBER.test(n)) return undefined;
  const no = Number(n);
  return Number.isSafeInteger(no) ? { kind, ruleId, n: no } : undefined;
}

/** Whether two JSON values are equal: same members whatever their order, an `undefined` member as absent. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x).filter((k) => x[k] !== undefined);
  if (keys.length !== Object.keys(y).filter((k) => y[k] !== undefined).length) return false;
  return keys.every((k) => Object.hasOwn(y, k) && sameJson(x[k], y[k]));
}

const SCHEDULE_TYPES: ReadonlySet<Trigger['type']> = new Set(['time', 'cron', 'sun']);

export const isScheduleTrigger = (t: Trigger): t is ScheduleTrigger => SCHEDULE_TYPES.has(t.type);

/** An attribute trigger that fires only once its value has held `for`. */
export const isHeldTrigger = (t: Trigger): t is AttributeTrigger & { readonly for: string } =>
  t.type === 'attribute' && t.for !== undefined;

/** How late (ms) a timer of `rule` may fire and still run. */
export function misfireGraceMs(rule: Rule): number {
  // Validated rules always parse; the default guards a rule stored before misfireGrace existed.
  return parseDuration(rule.misfireGrace ?? DEFAULT_MISFIRE_GRACE) ?? (parseDuration(DEFAULT_MISFIRE_GRACE) as number);
}

/**
 * Sets each schedule trigger's reminder of `rule` to its first time strictly after `afterMs`
 * (cancelled when there is none). A `set` replaces a pending one, so calling it again (time zone or
 * location changed) moves the reminders.
 */
export function armSchedules(book: ReminderBook, rule: Rule, where: ScheduleWhere, afterMs: number): void {
  rule.when.forEach((t, i) => {
    if (!isScheduleTrigger(t)) return;
    const name = timerName('at', rule.id, i);
    const at = nextFireTime(t, afterMs, where);
    if (at === undefined) book.cancel(name);
    else book.set(name, at);
  });
}

/** Occurrences of a schedule walked at most when it fires after an outage; more came due: missed. */
export const CATCH_UP_LIMIT = 1_000;

/** A schedule's occurrences from the one due up to now (see `catchUp`). */
export interface CatchUp {
  /** The newest occurrence at or before now (epoch ms); with `overflow`, the last one walked. */
  readonly newest: number;
  /** Occurrences from the one due to `newest`, both included (>= 1). */
  readonly due: number;
  /** More than `CATCH_UP_LIMIT` occurrences came due after the one due: `newest` is not the newest. */
  readonly overflow: boolean;
  /** The first occurrence strictly after max(dueAt, now): the schedule's next reminder (undefined: none). */
  readonly next: number | undefined;
}

/**
 * Walks a schedule from its occurrence `dueAt` up to `now` (epoch ms), so that a reminder that
 * comes due late (its node was down) runs at most once, for the newest occurrence, and its next
 * reminder is after now. An on-time firing costs one next-time computation, as re-arming does.
 */
export function catchUp(trigger: ScheduleTrigger, dueAt: number, now: number, where: ScheduleWhere): CatchUp {
  let newest = dueAt;
  let due = 1;
  for (let i = 0; i < CATCH_UP_LIMIT; i++) {
    const next = nextFireTime(trigger, newest, where);
    if (next === undefined || next > now) return { newest, due, overflow: false, next };
    newest = next;
    due++;
  }
  return { newest, due, overflow: true, next: nextFireTime(trigger, Math.max(dueAt, now), where) };
}

/** The index of the first schedule trigger of `rule` that never fires at `where` after `afterMs`, if any. */
export function neverFiring(rule: Rule, where: ScheduleWhere, afterMs: number): number | undefined {
  const i = rule.when.findIndex((t) => isScheduleTrigger(t) && nextFireTime(t, afterMs, where) === undefined);
  return i < 0 ? undefined : i;
}

/** Cancels every timer of `ruleId` of `kinds` (default all). */
export function cancelRuleTimers(book: ReminderBook, ruleId: string, kinds: readonly TimerKind[] = ['for', 'at', 'run']): void {
  for (const kind of kinds) for (const name of book.namesStartingWith(`${kind}.${ruleId}.`)) book.cancel(name);
}

/** Cancels every rule timer of the home (not the runtime's own reminders). */
export function cancelAllRuleTimers(book: ReminderBook): void {
  for (const kind of ['for', 'at', 'run'] as const) for (const name of book.namesStartingWith(`${kind}.`)) book.cancel(name);
}

/** What a `for` reminder carries: the value that must hold, and the causal depth of the change that set it. */
export interface HeldPayload {
  readonly value: Value;
  readonly depth: number;
}

/** A `for` reminder's payload, checked (it is plain JSON read back from the journal). */
export function heldPayload(x: unknown): HeldPayload | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const { value, depth } = x as Record<string, unknown>;
  const isValue = typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string';
  return isValue && typeof depth === 'number' && Number.isSafeInteger(depth) && depth >= 0 ? { value, depth } : undefined;
}

/** The match a held trigger `t` makes once `value` has held for its `for`, as the decision log records it. */
export const heldMatch = (t: AttributeTrigger & { readonly for: string }, value: Value): TriggerMatch => ({
  type: 'attribute',
  device: t.device,
  attribute: t.attribute,
  value,
  for: t.for,
});

interface HeldRef {
  readonly rule: Rule;
  readonly index: number;
  readonly trigger: AttributeTrigger & { readonly for: string };
}

// Per rules object (states are immutable; an edit replaces the record): device → its held triggers.
const heldCache = new WeakMap<object, ReadonlyMap<string, readonly HeldRef[]>>();

function heldByDevice(rules: Readonly<Record<string, Rule>>): ReadonlyMap<string, readonly HeldRef[]> {
  let byDevice = heldCache.get(rules);
  if (byDevice === undefined) {
    const m = new Map<string, HeldRef[]>();
    for (const rule of Object.values(rules)) {
      if (!rule.enabled) continue;
      rule.when.forEach((trigger, index) => {
        if (!isHeldTrigger(trigger)) return;
        let list = m.get(trigger.device);
        if (list === undefined) m.set(trigger.device, (list = []));
        list.push({ rule, index, trigger });
      });
    }
    heldCache.set(rules, (byDevice = m));
  }
  return byDevice;
}

/**
 * The `for` timers after a change of `deviceId` (`changed`: attributes whose value changed): a
 * change to a value the trigger wants (its `to`, or any value) sets the timer at `now + for`,
 * unless one is pending for that same value (a value re-reported is not a change: the timer keeps
 * its time); a change to any other value cancels it. `armable(rule)` is false for a rule that must
 * not start one (suspended); its pending ones are still cancelled by a change away.
 */
export function trackHeldValues(
  book: ReminderBook,
  rules: Readonly<Record<string, Rule>>,
  deviceId: string,
  changed: Readonly<Record<string, Value>>,
  depth: number,
  now: number,
  armable: (rule: Rule) => boolean,
): void {
  const refs = heldByDevice(rules).get(deviceId);
  if (refs === undefined) return;
  for (const { rule, index, trigger } of refs) {
    const value = ownGet(changed, trigger.attribute);
    if (value === undefined) continue;
    const name = timerName('for', rule.id, index);
    if (trigger.to !== undefined && trigger.to !== value) {
      book.cancel(name);
      continue;
    }
    if (heldPayload(book.get(name)?.payload)?.value === value) continue;
    if (!armable(rule)) {
      book.cancel(name);
      continue;
    }
    const ms = parseDuration(trigger.for);
    if (ms === undefined) continue; // validated rules always parse
    const payload: HeldPayload = { value, depth };
    book.set(name, now + ms, payload);
  }
}

const immediateCache = new WeakMap<Rule, readonly Trigger[]>();

/** The triggers of `rule` that a change fires at once (attribute without `for`, event), memoized per rule object. */
export function immediateTriggers(rule: Rule): readonly Trigger[] {
  let ts = immediateCache.get(rule);
  if (ts === undefined) immediateCache.set(rule, (ts = rule.when.filter((t) => !isScheduleTrigger(t) && !isHeldTrigger(t))));
  return ts;
}
