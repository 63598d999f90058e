/** Pure rule evaluation: which trigger of a rule a device change matches and what each condition saw. */
import type { DeviceChanged, Value } from '../types.ts';
import { compareValues, type Condition, type Trigger } from './rule-types.ts';
import { ownGet } from '../validation.ts';
import { localMinutes, formatHHMM, minutesInWindow, parseHHMM } from './time-window.ts';

/** What `checkConditions` reads of a home: its time zone and device values. */
export interface HomeView {
  /** IANA time zone of time conditions. */
  readonly timezone: string;
  /** Latest reported values per device id of the attributes conditions read (see rule-interest.ts). */
  readonly values: Readonly<Record<string, Readonly<Record<string, Value>>>>;
}

/**
 * The trigger that matched, with what the change carried; an attribute trigger's `for` is copied
 * so the home knows to hold it rather than fire. A schedule trigger fires at `dueAt` (epoch ms).
 */
export type TriggerMatch =
  | {
      readonly type: 'attribute';
      readonly device: string;
      readonly attribute: string;
      readonly value: Value;
      readonly for?: string;
    }
  | { readonly type: 'event'; readonly device: string; readonly event: string }
  | { readonly type: 'time' | 'cron' | 'sun'; readonly dueAt: number };

/**
 * One condition's verdict. `saw` is the attribute value the condition compared (null when the
 * device or attribute has never been reported), for a time condition the local time `HH:MM`, and
 * null for and/or/not, whose members' verdicts are in `results` (in order, every member checked).
 */
export interface ConditionResult {
  readonly condition: Condition;
  readonly saw: Value | null;
  readonly passed: boolean;
  readonly results?: readonly ConditionResult[];
}

/**
 * The attribute or event trigger among `triggers` that `change` matches first, or undefined.
 * Schedule triggers never match a change: their reminder fires them.
 */
export function matchTrigger(triggers: readonly Trigger[], change: DeviceChanged): TriggerMatch | undefined {
  for (const t of triggers) {
    if (t.type === 'attribute') {
      if (t.device !== change.deviceId) continue;
      const value = ownGet(change.changed, t.attribute);
      if (value === undefined || (t.to !== undefined && t.to !== value)) continue;
      const match = { type: 'attribute', device: t.device, attribute: t.attribute, value } as const;
      return t.for === undefined ? match : { ...match, for: t.for };
    }
    if (t.type === 'event' && t.device === change.deviceId && change.event !== undefined && change.event === t.event) {
      return { type: 'event', device: t.device, event: t.event };
    }
  }
  return undefined;
}

/**
 * Evaluates one condition against the home's device values at local minute `minutes`. and/or/not
 * check every member (so the decision log shows each value), not just until the verdict is known.
 */
export function checkCondition(
  condition: Condition,
  attributeOf: (device: string, attribute: string) => Value | undefined,
  minutes: () => number,
): ConditionResult {
  switch (condition.type) {
    case 'time': {
      const now = minutes();
      const passed = minutesInWindow(now, parseHHMM(condition.after), parseHHMM(condition.before));
      return { condition, saw: formatHHMM(now), passed };
    }
    case 'attribute': {
      const saw = attributeOf(condition.device, condition.attribute);
      if (saw === undefined) return { condition, saw: null, passed: false };
      return { condition, saw, passed: compareValues(saw, condition.op, condition.value) };
    }
    case 'not': {
      const inner = checkCondition(condition.condition, attributeOf, minutes);
      return { condition, saw: null, passed: !inner.passed, results: [inner] };
    }
    case 'and':
    case 'or': {
      const results = condition.conditions.map((c) => checkCondition(c, attributeOf, minutes));
      const passed = condition.type === 'and' ? results.every((r) => r.passed) : results.some((r) => r.passed);
      return { condition, saw: null, passed, results };
    }
  }
}

/** Reads attribute values: the changed device's from `change` (when given), any other's from the home. */
function valuesOf(home: HomeView, change?: DeviceChanged): (device: string, attribute: string) => Value | undefined {
  return (device, attribute) => {
    const attributes = change !== undefined && device === change.deviceId ? change.attributes : ownGet(home.values, device);
    return attributes === undefined ? undefined : ownGet(attributes, attribute);
  };
}

/** Local minutes at `now` in the home's zone, computed once and only if a time condition asks. */
function minutesOf(home: HomeView, now: number): () => number {
  let local: number | undefined;
  return () => (local ??= localMinutes(now, home.timezone));
}

/**
 * Checks `conditions` at `now` (epoch ms) in the home's time zone, against the home's latest
 * values, the device of `change` (when given) read from the change, which is newer. For a
 * timer's firing (a `for`, a schedule) pass no change: every value then comes from the home,
 * which keeps them (rule-interest.ts).
 */
export function checkConditions(home: HomeView, conditions: readonly Condition[], now: number, change?: DeviceChanged): ConditionResult[] {
  const attributeOf = valuesOf(home, change);
  const minutes = minutesOf(home, now);
  return conditions.map((c) => checkCondition(c, attributeOf, minutes));
}
