/**
 * What fires a home's rules: a device change (its triggers that fire at once, and the `for` holds
 * of its attributes) and a rule timer coming due (a held value, a schedule, a run's delay).
 */
import type { ReminderFired } from '../../runtime/behavior.ts';
import type { HomeState } from '../home-messages.ts';
import type { DeviceChanged } from '../types.ts';
import { ownGet } from '../validation.ts';
import { checkConditions, matchTrigger, type TriggerMatch } from './rule-evaluator.ts';
import { decide, logMissed, resumeRun, type RunScope } from './rule-runs.ts';
import {
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
import { nextFireTime, type ScheduleWhere } from './schedule.ts';

export const isSuspended = (s: HomeState, ruleId: string): boolean => ownGet(s.ruleStatus, ruleId)?.suspended !== undefined;

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
 * A rule timer came due: a `for` whose value held, a schedule's time, or a run's delay. Later than
 * the rule's misfireGrace, it does not run (the decision log says `missed`); a suspended rule does
 * nothing. A schedule is set again for its next time after the one due (so a late firing neither
 * skips nor repeats one), or after now when it was missed.
 */
export function timerFired(s: HomeState, fired: ReminderFired, scope: RunScope): HomeState {
  const timer = parseTimerName(fired.name);
  const rule = timer === undefined || !s.exists ? undefined : ownGet(s.rules, timer.ruleId);
  // A rule's timers are cancelled with the rule (edit, disable, delete): anything else is not ours.
  if (timer === undefined || rule === undefined || !rule.enabled) return s;
  let next = s;
  if (timer.kind === 'run') {
    next = resumeRun(s, fired, rule.id, timer.n, scope);
  } else {
    const t = rule.when[timer.n];
    let trigger: TriggerMatch | undefined;
    let depth = 0;
    if (timer.kind === 'for' && t !== undefined && isHeldTrigger(t)) {
      const held = heldPayload(fired.payload);
      if (held !== undefined) {
        trigger = { type: 'attribute', device: t.device, attribute: t.attribute, value: held.value, for: t.for };
        depth = held.depth;
      }
    } else if (timer.kind === 'at' && t !== undefined && isScheduleTrigger(t)) {
      trigger = { type: t.type, dueAt: fired.dueAt };
      const missed = fired.lateMs > misfireGraceMs(rule);
      const at = nextFireTime(t, missed ? scope.now : fired.dueAt, whereOf(s));
      if (at !== undefined) scope.book.set(timerName('at', rule.id, timer.n), at);
    }
    if (trigger !== undefined && !isSuspended(s, rule.id)) {
      const start = { rule, trigger, depth, conditions: [] };
      next =
        fired.lateMs > misfireGraceMs(rule)
          ? logMissed(s, start, fired.lateMs, scope)
          : decide(s, { ...start, conditions: checkConditions(s, rule.if, scope.now) }, scope);
    }
  }
  return next;
}
