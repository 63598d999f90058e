/** Validates untrusted rule, scene and time-zone input into the rule model, naming the bad field. */
import type { DomainError, Outcome, Value } from '../types.ts';
import { checkKey, checkValue, VALUE_LIMITS } from '../validation.ts';
import {
  ACTION_TYPES,
  COMPARE_OPS,
  CONDITION_TYPES,
  ORDERING_OPS,
  RULE_LIMITS,
  RULE_MODES,
  TRIGGER_TYPES,
  type Action,
  type CommandAction,
  type CompareOp,
  type Condition,
  type Rule,
  type RuleMode,
  type Scene,
  type Trigger,
} from './rule-types.ts';

type Obj = Readonly<Record<string, unknown>>;

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** An `invalid_argument` failure: `field` is the path, the message says the path and why. */
export function invalidField(field: string, reason: string): { ok: false; error: DomainError } {
  return { ok: false, error: { code: 'invalid_argument', field, message: `${field} ${reason}` } };
}

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const oneOf = (xs: readonly string[]): string => `must be one of ${xs.join(', ')}`;

function unknownKey(obj: Obj, allowed: readonly string[], path: string): Outcome<never> | undefined {
  const extra = Object.keys(obj).find((k) => !allowed.includes(k));
  return extra === undefined ? undefined : invalidField(path === '' ? extra : `${path}.${extra}`, 'is not a known field');
}

function text(x: unknown, path: string, max: number): Outcome<string> {
  if (typeof x !== 'string' || x.length === 0) return invalidField(path, 'must be a non-empty string');
  if (x.length > max) return invalidField(path, `must be at most ${max} characters`);
  return ok(x);
}

/** Checks a rule, scene or hub id: 1..64 letters, digits, `_` or `-` (URI-safe, usable in actor names). */
export function validateId(x: unknown, path: string): Outcome<string> {
  if (typeof x !== 'string' || !RULE_LIMITS.idPattern.test(x)) return invalidField(path, 'must be 1 to 64 letters, digits, _ or -');
  return x === '__proto__' ? invalidField(path, 'is a reserved name') : ok(x);
}

/** Checks a display name: 1..128 characters. */
export function validateName(x: unknown, path = 'name'): Outcome<string> {
  return text(x, path, RULE_LIMITS.maxNameLength);
}

function value(x: unknown, path: string): Outcome<Value> {
  const e = checkValue(path, x);
  return e ? { ok: false, error: e } : ok(x as Value);
}

/** A device id (`id`) or an attribute, event, command or parameter name (`name`). */
function ref(x: unknown, path: string, kind: 'id' | 'name'): Outcome<string> {
  const e = checkKey(path, x, kind === 'id' ? VALUE_LIMITS.idLength : VALUE_LIMITS.nameLength);
  return e ? { ok: false, error: e } : ok(x as string);
}

function list<T>(x: unknown, path: string, min: number, item: (x: unknown, path: string) => Outcome<T>): Outcome<T[]> {
  if (!Array.isArray(x)) return invalidField(path, 'must be an array');
  if (x.length < min) return invalidField(path, `must have at least ${min} item`);
  if (x.length > RULE_LIMITS.maxItems) return invalidField(path, `must have at most ${RULE_LIMITS.maxItems} items`);
  const out: T[] = [];
  for (const [i, el] of x.entries()) {
    const r = item(el, `${path}[${i}]`);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out);
}

function trigger(x: unknown, path: string): Outcome<Trigger> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  if (x.type === 'attribute') {
    const extra = unknownKey(x, ['type', 'device', 'attribute', 'to'], path);
    if (extra) return extra;
    const device = ref(x.device, `${path}.device`, 'id');
    if (!device.ok) return device;
    const attribute = ref(x.attribute, `${path}.attribute`, 'name');
    if (!attribute.ok) return attribute;
    if (x.to === undefined) return ok({ type: 'attribute', device: device.value, attribute: attribute.value });
    const to = value(x.to, `${path}.to`);
    if (!to.ok) return to;
    return ok({ type: 'attribute', device: device.value, attribute: attribute.value, to: to.value });
  }
  if (x.type === 'event') {
    const extra = unknownKey(x, ['type', 'device', 'event'], path);
    if (extra) return extra;
    const device = ref(x.device, `${path}.device`, 'id');
    if (!device.ok) return device;
    const event = ref(x.event, `${path}.event`, 'name');
    if (!event.ok) return event;
    return ok({ type: 'event', device: device.value, event: event.value });
  }
  return invalidField(`${path}.type`, oneOf(TRIGGER_TYPES));
}

const hhmm = (x: unknown, path: string): Outcome<string> =>
  typeof x === 'string' && HHMM.test(x) ? ok(x) : invalidField(path, 'must be a time HH:MM from 00:00 to 23:59');

function condition(x: unknown, path: string): Outcome<Condition> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  // `type` may be omitted on attribute conditions: the `device` field identifies them.
  const type = x.type ?? ('device' in x ? 'attribute' : undefined);
  if (type === 'time') {
    const extra = unknownKey(x, ['type', 'after', 'before'], path);
    if (extra) return extra;
    const after = hhmm(x.after, `${path}.after`);
    if (!after.ok) return after;
    const before = hhmm(x.before, `${path}.before`);
    if (!before.ok) return before;
    return ok({ type: 'time', after: after.value, before: before.value });
  }
  if (type !== 'attribute') return invalidField(`${path}.type`, oneOf(CONDITION_TYPES));
  const extra = unknownKey(x, ['type', 'device', 'attribute', 'op', 'value'], path);
  if (extra) return extra;
  const device = ref(x.device, `${path}.device`, 'id');
  if (!device.ok) return device;
  const attribute = ref(x.attribute, `${path}.attribute`, 'name');
  if (!attribute.ok) return attribute;
  const op = x.op as CompareOp;
  if (!COMPARE_OPS.includes(op)) return invalidField(`${path}.op`, oneOf(COMPARE_OPS));
  const v = value(x.value, `${path}.value`);
  if (!v.ok) return v;
  if (ORDERING_OPS.includes(op) && typeof v.value !== 'number') {
    return invalidField(`${path}.value`, `must be a number: ${op} compares numbers only`);
  }
  return ok({ type: 'attribute', device: device.value, attribute: attribute.value, op, value: v.value });
}

function params(x: unknown, path: string): Outcome<Record<string, Value>> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  const keys = Object.keys(x);
  const max = VALUE_LIMITS.attributesPerMessage;
  if (keys.length > max) return invalidField(path, `must have at most ${max} entries`);
  const out: [string, Value][] = [];
  for (const k of keys) {
    const name = ref(k, `${path}.${k}`, 'name');
    if (!name.ok) return name;
    const v = value(x[k], `${path}.${k}`);
    if (!v.ok) return v;
    out.push([k, v.value]);
  }
  return ok(Object.fromEntries(out));
}

function command(x: Obj, path: string): Outcome<CommandAction> {
  const extra = unknownKey(x, ['type', 'device', 'name', 'params', 'ttlMs'], path);
  if (extra) return extra;
  const device = ref(x.device, `${path}.device`, 'id');
  if (!device.ok) return device;
  const name = ref(x.name, `${path}.name`, 'name');
  if (!name.ok) return name;
  let out: CommandAction = { type: 'command', device: device.value, name: name.value };
  if (x.params !== undefined) {
    const p = params(x.params, `${path}.params`);
    if (!p.ok) return p;
    out = { ...out, params: p.value };
  }
  if (x.ttlMs !== undefined) {
    const { minTtlMs, maxTtlMs } = RULE_LIMITS;
    if (typeof x.ttlMs !== 'number' || !Number.isInteger(x.ttlMs) || x.ttlMs < minTtlMs || x.ttlMs > maxTtlMs) {
      return invalidField(`${path}.ttlMs`, `must be an integer from ${minTtlMs} to ${maxTtlMs} (milliseconds)`);
    }
    out = { ...out, ttlMs: x.ttlMs };
  }
  return ok(out);
}

function action(x: unknown, path: string): Outcome<Action> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  if (x.type === 'command') return command(x, path);
  if (x.type === 'scene') {
    const extra = unknownKey(x, ['type', 'scene'], path);
    if (extra) return extra;
    const scene = validateId(x.scene, `${path}.scene`);
    return scene.ok ? ok({ type: 'scene', scene: scene.value }) : scene;
  }
  if (x.type === 'notify') {
    const extra = unknownKey(x, ['type', 'message'], path);
    if (extra) return extra;
    const message = text(x.message, `${path}.message`, RULE_LIMITS.maxMessageLength);
    return message.ok ? ok({ type: 'notify', message: message.value }) : message;
  }
  return invalidField(`${path}.type`, oneOf(ACTION_TYPES));
}

/**
 * Validates a rule from an untrusted body. Defaults: `enabled` true, `mode` 'single', `if` [].
 * A read-only `suspended` field (as served by the rule list) is accepted and ignored.
 */
export function validateRule(input: unknown): Outcome<Rule> {
  if (!isObj(input)) return invalidField('rule', 'must be an object');
  const extra = unknownKey(input, ['id', 'name', 'enabled', 'mode', 'when', 'if', 'then', 'suspended'], '');
  if (extra) return extra;
  const ruleId = validateId(input.id, 'id');
  if (!ruleId.ok) return ruleId;
  const name = validateName(input.name);
  if (!name.ok) return name;
  if (input.enabled !== undefined && typeof input.enabled !== 'boolean') return invalidField('enabled', 'must be true or false');
  const mode = input.mode ?? 'single';
  if (typeof mode !== 'string' || !RULE_MODES.includes(mode as RuleMode)) return invalidField('mode', oneOf(RULE_MODES));
  const when = list(input.when, 'when', 1, trigger);
  if (!when.ok) return when;
  const conditions = list(input.if ?? [], 'if', 0, condition);
  if (!conditions.ok) return conditions;
  const then = list(input.then, 'then', 1, action);
  if (!then.ok) return then;
  return ok({
    id: ruleId.value,
    name: name.value,
    enabled: input.enabled ?? true,
    mode: mode as RuleMode,
    when: when.value,
    if: conditions.value,
    then: then.value,
  });
}

/** Validates a scene; its actions are commands (`type` may be omitted). */
export function validateScene(input: unknown): Outcome<Scene> {
  if (!isObj(input)) return invalidField('scene', 'must be an object');
  const extra = unknownKey(input, ['id', 'name', 'actions'], '');
  if (extra) return extra;
  const sceneId = validateId(input.id, 'id');
  if (!sceneId.ok) return sceneId;
  const name = validateName(input.name);
  if (!name.ok) return name;
  const actions = list(input.actions, 'actions', 1, (x, path) => {
    if (!isObj(x)) return invalidField(path, 'must be an object');
    if (x.type !== undefined && x.type !== 'command') return invalidField(`${path}.type`, 'must be command');
    return command(x, path);
  });
  if (!actions.ok) return actions;
  return ok({ id: sceneId.value, name: name.value, actions: actions.value });
}

/** Checks an IANA time zone name (`Europe/Berlin`, `UTC`) against the runtime's Intl data. */
export function validateTimeZone(tz: unknown, path = 'timezone'): Outcome<string> {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) return invalidField(path, 'must be an IANA time zone name');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return ok(tz);
  } catch {
    return invalidField(path, `must be an IANA time zone name such as Europe/Berlin, not ${JSON.stringify(tz)}`);
  }
}
