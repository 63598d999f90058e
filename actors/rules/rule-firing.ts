/**
 * What fires a home's rules: a device change (its triggers that fire at once, and the `for` holds
 * of its attributes) and a rule timer coming due (a held value, a schedule, a run's delay).
 */
import type { ReminderFired } from '../../runtime/behavior.ts';
import type { HomeState } from '../home-messages.ts';
import type { DeviceChanged } from '../types.ts';
import { ownGet } from '../validation.ts';
import { checkConditions, matchTrigger } from './rule-evaluator.ts';
import { formatDuration } from './duration.ts';
import { decide, graceOf, isSuspended, logMissed, resumeRun, type RunScope, type Start } from './rule-runs.ts';
import type { Rule, ScheduleTrigger } from './rule-types.ts';
import {
  CATCH_UP_LIMIT,
  catchUp,
  heldMatch,
  heldPayload,
  immediateTriggers,
  isHeldTrigger,
  isScheduleTrigger,
  misfireGraceMs,
  parseTimerName,
  timerName,
  trackHeldValues,
} from './rule-timers.ts';
import { keepValues, knowDevice } from './rule-watch.ts';
import type { ScheduleWhere } from './schedule.ts';

/** Where the home is, for its schedule triggers. */
export const whereOf = (s: HomeState): ScheduleWhere =>
  s.location === undefined ? { timezone: s.timezone } : { timezone: s.timezone, location: s.location };

/**
 * One change: the device is known, the values conditions read are kept, the `for` timers of its
 * attributes are set or cancelled, and the rules it triggers at once fire (or log why not).
 */
export function applyChange(s: HomeState, change: DeviceChanged, scope: RunScope): HomeState {
  let next = keepValues(knowDevice(s, change.deviceId, change.deviceType), change.deviceId, change.attributes);
  const rules = next.rules;
  trackHeldValues(scope.book, rules, change.deviceId, change.changed, change.depth, scope.now, (rule) => !isSuspended(next, rule.id));
  for (const rule of Object.values(rules)) {
    if (!rule.enabled || isSuspended(next, rule.id)) continue;
    const trigger = matchTrigger(immediateTriggers(rule), change);
    if (trigger === undefined) continue;
    const conditions = checkConditions(next, rule.if, scope.now, change);
    next = decide(next, { rule, trigger, depth: change.depth, conditions }, scope);
  }
  return next;
}

/**
 * A schedule trigger `t` (when[`index`]) of `rule` came due at `dueAt`. Its next reminder is set
 * strictly after both the time due and now, and the rule runs at most once: for the newest
 * occurrence at or before now, when that is late by at most the rule's misfireGrace (the decision
 * says how many before it were skipped). Otherwise one `missed` decision says how many came due.
 * So an outage neither replays every occurrence it spanned nor trips storm control.
 */
function scheduleDue(s: HomeState, rule: Rule, t: ScheduleTrigger, index: number, dueAt: number, scope: RunScope): HomeState {
  const c = catchUp(t, dueAt, scope.now, whereOf(s));
  if (c.next !== undefined) scope.book.set(timerName('at', rule.id, index), c.next);
  if (isSuspended(s, rule.id)) return s;
  const start: Start = { rule, trigger: { type: t.type, dueAt: c.newest }, depth: 0, conditions: [], skipped: c.due - 1 };
  const late = Math.max(0, scope.now - c.newest);
  const grace = misfireGraceMs(rule);
  if (!c.overflow && late <= grace) return decide(s, { ...start, conditions: checkConditions(s, rule.if, scope.now) }, scope);
  const since = new Date(dueAt).toISOString();
  const reason = c.overflow
    ? `missed: more than ${CATCH_UP_LIMIT} occurrences came due since ${since} before it could run`
    : c.due === 1
      ? undefined
      : `missed: ${c.due} occurrences came due since ${since}, the newest ${formatDuration(Math.round(late))} before it could run, more than the rule's misfireGrace of ${graceOf(rule)}`;
  return logMissed(s, { ...start, skipped: c.due }, late, scope, reason === undefined ? {} : { reason });
}

/**
 * A rule timer came due: a `for` whose value held, a schedule's time (see `scheduleDue`), or a
 * run's delay (see `resumeRun`). A hold later than the rule's misfireGrace does not run (the
 * decision log says `missed`); a suspended rule does nothing.
 */
export function timerFired(s: HomeState, fired: ReminderFired, scope: RunScope): HomeState {
  const timer = parseTimerName(fired.name);
  const rule = timer === undefined || !s.exists ? undefined : ownGet(s.rules, timer.ruleId);
  // A rule's timers are cancelled with the rule (edit, disable, delete): anything else is not ours.
  if (timer === undefined || rule === undefined || !rule.enabled) return s;
  if (timer.kind === 'run') return resumeRun(s, fired, rule.id, timer.n, scope);
  const t = rule.when[timer.n];
  if (t === undefined) return s;
  if (timer.kind === 'at') return isScheduleTrigger(t) ? scheduleDue(s, rule, t, timer.n, fired.dueAt, scope) : s;
  const held = heldPayload(fired.payload);
  if (!isHeldTrigger(t) || held === undefined || isSuspended(s, rule.id)) return s;
  const start: Start = { rule, trigger: heldMatch(t, held.value), depth: held.depth, conditions: [] };
  if (fired.lateMs > misfireGraceMs(rule)) return logMissed(s, start, fired.lateMs, scope);
  return decide(s, { ...start, conditions: checkConditions(s, rule.if, scope.now) }, scope);
}
