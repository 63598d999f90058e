/** Pure rule evaluation: which rules a device change triggers and what each condition saw. */
import type { DeviceChanged, Value } from '../types.ts';
import { compareValues, type Action, type Condition, type Rule, type Suspension, type Trigger } from './rule-types.ts';
import { ownGet } from '../validation.ts';
import { localMinutes, formatHHMM, minutesInWindow, parseHHMM } from './time-window.ts';

/** What `evaluate` reads of a home: its rules and their status, its time zone, and device values. */
export interface HomeView {
  readonly rules: Readonly<Record<string, Rule>>;
  /** Rules with `suspended` set are not evaluated. */
  readonly ruleStatus?: Readonly<Record<string, { readonly suspended?: Suspension }>>;
  /** IANA time zone of time conditions. */
  readonly timezone: string;
  /** Latest reported values per device id of the attributes conditions read (see rule-interest.ts). */
  readonly values: Readonly<Record<string, Readonly<Record<string, Value>>>>;
}

/** The trigger that matched, with what the change carried. */
export type TriggerMatch =
  | { readonly type: 'attribute'; readonly device: string; readonly attribute: string; readonly value: Value }
  | { readonly type: 'event'; readonly device: string; readonly event: string };

/**
 * One condition's verdict. `saw` is the attribute value the condition compared (null when the
 * device or attribute has never been reported) or, for a time condition, the local time `HH:MM`.
 */
export interface ConditionResult {
  readonly condition: Condition;
  readonly saw: Value | null;
  readonly passed: boolean;
}

/** A rule whose trigger matched; `passed` is true when every condition held. */
export interface Firing {
  readonly ruleId: string;
  readonly trigger: TriggerMatch;
  readonly conditions: readonly ConditionResult[];
  readonly passed: boolean;
  readonly actions: readonly Action[];
}

/** The trigger of `rule` that `change` matches first, or undefined. */
export function matchTrigger(triggers: readonly Trigger[], change: DeviceChanged): TriggerMatch | undefined {
  for (const t of triggers) {
    if ((t.type !== 'attribute' && t.type !== 'event') || t.device !== change.deviceId) continue;
    if (t.type === 'attribute') {
      const value = ownGet(change.changed, t.attribute);
      if (value !== undefined && (t.to === undefined || t.to === value)) {
        return { type: 'attribute', device: t.device, attribute: t.attribute, value };
      }
    } else if (change.event !== undefined && change.event === t.event) {
      return { type: 'event', device: t.device, event: t.event };
    }
  }
  return undefined;
}

/** Evaluates one condition against the home's device values at local minute `minutes`. */
export function checkCondition(
  condition: Condition,
  attributeOf: (device: string, attribute: string) => Value | undefined,
  minutes: () => number,
): ConditionResult {
  if (condition.type === 'time') {
    const now = minutes();
    const passed = minutesInWindow(now, parseHHMM(condition.after), parseHHMM(condition.before));
    return { condition, saw: formatHHMM(now), passed };
  }
  if (condition.type !== 'attribute') throw new Error(`condition ${condition.type} is not evaluated yet`);
  const saw = attributeOf(condition.device, condition.attribute);
  if (saw === undefined) return { condition, saw: null, passed: false };
  return { condition, saw, passed: compareValues(saw, condition.op, condition.value) };
}

/**
 * The rules `change` triggers, in rule insertion order: every enabled, non-suspended rule with a
 * matching trigger, with each condition checked against the home's latest values (the changed
 * device's values taken from `change`) at `now` (epoch ms) in the home's time zone.
 */
export function evaluate(home: HomeView, change: DeviceChanged, now: number): Firing[] {
  const firings: Firing[] = [];
  let localNow: number | undefined; // computed once, only if a time condition needs it
  const minutes = (): number => (localNow ??= localMinutes(now, home.timezone));
  const attributeOf = (device: string, attribute: string): Value | undefined => {
    const attributes = device === change.deviceId ? change.attributes : ownGet(home.values, device);
    return attributes === undefined ? undefined : ownGet(attributes, attribute);
  };
  for (const rule of Object.values(home.rules)) {
    if (!rule.enabled) continue;
    if (home.ruleStatus !== undefined && ownGet(home.ruleStatus, rule.id)?.suspended !== undefined) continue;
    const trigger = matchTrigger(rule.when, change);
    if (trigger === undefined) continue;
    const conditions = rule.if.map((c) => checkCondition(c, attributeOf, minutes));
    firings.push({
      ruleId: rule.id,
      trigger,
      conditions,
      passed: conditions.every((c) => c.passed),
      actions: rule.then,
    });
  }
  return firings;
}
