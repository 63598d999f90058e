/** The automation rule and scene model: triggers, conditions and actions, as stored and served. */
import type { Value } from '../types.ts';

/** How a rule behaves when it fires again while a previous run is still in progress (delays, later). */
export type RuleMode = 'single' | 'restart' | 'queued' | 'parallel';
export const RULE_MODES: readonly RuleMode[] = ['single', 'restart', 'queued', 'parallel'];

/** Comparison operators of attribute conditions; the ordering ones apply to numbers only. */
export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export const COMPARE_OPS: readonly CompareOp[] = ['==', '!=', '<', '<=', '>', '>='];
export const ORDERING_OPS: readonly CompareOp[] = ['<', '<=', '>', '>='];

/** Fires when `attribute` of `device` changes; with `to`, only when it changes to that value. */
export interface AttributeTrigger {
  readonly type: 'attribute';
  readonly device: string;
  readonly attribute: string;
  readonly to?: Value;
}

/** Fires when `device` reports `event` (`motion_detected`, `double`, ...). */
export interface EventTrigger {
  readonly type: 'event';
  readonly device: string;
  readonly event: string;
}

export type Trigger = AttributeTrigger | EventTrigger;
export const TRIGGER_TYPES: readonly Trigger['type'][] = ['attribute', 'event'];

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

export type Condition = AttributeCondition | TimeCondition;
export const CONDITION_TYPES: readonly Condition['type'][] = ['attribute', 'time'];

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

export type Action = CommandAction | SceneAction | NotifyAction;
export const ACTION_TYPES: readonly Action['type'][] = ['command', 'scene', 'notify'];

/** A validated rule: fires on any of `when`, if all of `if` hold, doing each of `then` in order. */
export interface Rule {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly mode: RuleMode;
  readonly when: readonly Trigger[];
  readonly if: readonly Condition[];
  readonly then: readonly Action[];
}

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
  /** Per list: triggers, conditions, actions, scene actions. */
  maxItems: 16,
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
