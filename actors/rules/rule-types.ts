/** The automation rule and scene model: triggers, conditions and actions, as stored and served. */
import type { Value } from '../types.ts';

/** How a rule behaves when it fires again while a previous run is still in progress (delays, later). */
export type RuleMode = 'single' | 'restart' | 'queued' | 'parallel';
export const RULE_MODES: readonly RuleMode[] = ['single', 'restart', 'queued', 'parallel'];

/** Comparison operators of attribute conditions; the ordering ones apply to numbers only. */
export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export const COMPARE_OPS: readonly CompareOp[] = ['==', '!=', '<', '<=', '>', '>='];
export const ORDERING_OPS: readonly CompareOp[] = ['<', '<=', '>', '>='];

/**
 * A duration as written in a rule: one or more `<integer><unit>` parts, units `d`, `h`, `m`, `s`,
 * `ms` in that order, each at most once (`"500ms"`, `"90s"`, `"5m"`, `"1h30m"`). Kept as the app
 * wrote it; `parseDuration` (duration.ts) turns it into milliseconds.
 */
export type Duration = string;

/**
 * Fires when `attribute` of `device` changes; with `to`, only when it changes to that value. With
 * `for`, only once the new value (or `to`) has held that long; a change before then cancels it.
 * A value re-reported unchanged is not a change.
 */
export interface AttributeTrigger {
  readonly type: 'attribute';
  readonly device: string;
  readonly attribute: string;
  readonly to?: Value;
  readonly for?: Duration;
}

/** Fires when `device` reports `event` (`motion_detected`, `double`, ...). */
export interface EventTrigger {
  readonly type: 'event';
  readonly device: string;
  readonly event: string;
}

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/**
 * Fires at local time `at` (`HH:MM` or `HH:MM:SS`) in the home's time zone, on `days` (default
 * every day). A time skipped by a DST change (02:30 on a spring-forward day) fires once, at the
 * first instant after the gap; a time repeated by one (fall-back) fires once, at its first instant.
 */
export interface TimeTrigger {
  readonly type: 'time';
  readonly at: string;
  readonly days?: readonly Weekday[];
}

/** Fires at each time of a cron `expression` (5 fields, or 6 with seconds first) in the home's time zone. */
export interface CronTrigger {
  readonly type: 'cron';
  readonly expression: string;
}

/**
 * Fires at sunrise or sunset at the home's `location` (a home without one cannot hold such a
 * rule), moved by `offset` (a signed duration: `"-30m"`, `"+1h"`, `"15m"`).
 */
export interface SunTrigger {
  readonly type: 'sun';
  readonly event: 'sunrise' | 'sunset';
  readonly offset?: string;
}

export type Trigger = AttributeTrigger | EventTrigger | TimeTrigger | CronTrigger | SunTrigger;
export const TRIGGER_TYPES: readonly Trigger['type'][] = ['attribute', 'event', 'time', 'cron', 'sun'];

/** The triggers that fire at a computed time (each held by one durable reminder). */
export type ScheduleTrigger = TimeTrigger | CronTrigger | SunTrigger;

/** A home's place on Earth, for sun triggers: degrees, latitude −90..90, longitude −180..180. */
export interface GeoLocation {
  readonly latitude: number;
  readonly longitude: number;
}

/**
 * Compares the latest reported value of `device.attribute` with `value`. A device or attribute
 * that has never been reported fails every comparison.
 */
export interface AttributeCondition {
  readonly type: 'attribute';
  readonly device: string;
  readonly attribute: string;
  readonly op: CompareOp;
  readonly value: Value;
}

/**
 * True from `after` (inclusive) to `before` (exclusive), local time `HH:MM` in the home's IANA
 * time zone. `after > before` crosses midnight (18:00–06:00); `after == before` is all day.
 */
export interface TimeCondition {
  readonly type: 'time';
  readonly after: string;
  readonly before: string;
}

/** True when every (`and`) or any (`or`) of `conditions` holds (1..16 of them). */
export interface GroupCondition {
  readonly type: 'and' | 'or';
  readonly conditions: readonly Condition[];
}

/** True when `condition` does not hold. */
export interface NotCondition {
  readonly type: 'not';
  readonly condition: Condition;
}

export type Condition = AttributeCondition | TimeCondition | GroupCondition | NotCondition;
export const CONDITION_TYPES: readonly Condition['type'][] = ['attribute', 'time', 'and', 'or', 'not'];

/** Runs a command on a device. ttlMs: milliseconds until the command expires (default 30 000). */
export interface CommandAction {
  readonly type: 'command';
  readonly device: string;
  readonly name: string;
  readonly params?: Readonly<Record<string, Value>>;
  readonly ttlMs?: number;
}

/** Runs every command of a scene; a scene missing at firing time is skipped and logged. */
export interface SceneAction {
  readonly type: 'scene';
  readonly scene: string;
}

/** Tells the home's apps something. */
export interface NotifyAction {
  readonly type: 'notify';
  readonly message: string;
}

/**
 * Waits `for` before the actions after it (a durable reminder: it survives restarts and
 * handoffs). While a run waits, the rule's `mode` decides what a new firing does: `single`
 * ignores it, `restart` cancels the waiting run and starts anew, `queued` runs it after the
 * waiting one, `parallel` runs it alongside.
 */
export interface DelayAction {
  readonly type: 'delay';
  readonly for: Duration;
}

export type Action = CommandAction | SceneAction | NotifyAction | DelayAction;
export const ACTION_TYPES: readonly Action['type'][] = ['command', 'scene', 'notify', 'delay'];

/** A validated rule: fires on any of `when`, if all of `if` hold, doing each of `then` in order. */
export interface Rule {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly mode: RuleMode;
  readonly when: readonly Trigger[];
  readonly if: readonly Condition[];
  readonly then: readonly Action[];
  /**
   * How late a timer of this rule (a `for`, a schedule, a delay) may fire after its node was down
   * and still run; later, the decision log records `missed`. Absent: `DEFAULT_MISFIRE_GRACE`.
   */
  readonly misfireGrace?: Duration;
}

/** misfireGrace when a rule sets none. A rule's own is 1 s .. 24 h (a timer always fires a few ms late). */
export const DEFAULT_MISFIRE_GRACE: Duration = '10m';

/** A named set of commands run together (`movie`: close the curtain, dim the lights). */
export interface Scene {
  readonly id: string;
  readonly name: string;
  readonly actions: readonly CommandAction[];
}

/** Why and since when (epoch ms) a rule is suspended by storm control. */
export interface Suspension {
  readonly reason: string;
  readonly at: number;
}

/** Limits enforced by validation. */
export const RULE_LIMITS = {
  /** Ids of rules and scenes. */
  idPattern: /^[A-Za-z0-9_-]{1,64}$/,
  maxNameLength: 128,
  /** Per list: triggers, conditions (also per and/or group), actions, scene actions. */
  maxItems: 16,
  /** Nesting of and/or/not: a top-level condition is at depth 1, a group's members one deeper. */
  maxConditionDepth: 4,
  /** Of a cron expression. */
  maxCronLength: 128,
  /** Of notify messages. Device ids, names and values follow VALUE_LIMITS of ../validation.ts. */
  maxMessageLength: 1024,
  /** ttlMs of a command action: 1 s .. 24 h. */
  minTtlMs: 1_000,
  maxTtlMs: 86_400_000,
} as const;

/** Default ttlMs of a command issued by a rule or scene. */
export const DEFAULT_COMMAND_TTL_MS = 30_000;

/** Applies a comparison; ordering operators are false unless both sides are numbers. */
export function compareValues(seen: Value, op: CompareOp, value: Value): boolean {
  switch (op) {
    case '==':
      return seen === value;
    case '!=':
      return seen !== value;
    default:
      if (typeof seen !== 'number' || typeof value !== 'number') return false;
      if (op === '<') return seen < value;
      if (op === '<=') return seen <= value;
      if (op === '>') return seen > value;
      return seen >= value;
  }
}
