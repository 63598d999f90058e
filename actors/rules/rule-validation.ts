/** Validates untrusted rule, scene and time-zone input into the rule model, naming the bad field. */
import type { DomainError, Outcome, Value } from '../types.ts';
import { checkKey, checkValue, VALUE_LIMITS } from '../validation.ts';
import { DURATION_LIMITS, formatDuration, parseDuration, parseSignedDuration } from './duration.ts';
import { cronExpressionError } from './schedule.ts';
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
  type GeoLocation,
  type Rule,
  type RuleMode,
  type Scene,
  type Trigger,
  type Weekday,
  WEEKDAYS,
} from './rule-types.ts';

type Obj = Readonly<Record<string, unknown>>;

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const HHMMSS = /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/;
/** Smallest misfireGrace: every timer fires a few milliseconds late, so less would miss them all. */
const MIN_MISFIRE_GRACE_MS = 1_000;

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

/** A duration from `min` to `max` milliseconds, kept as written. */
function duration(x: unknown, path: string, min: number, max: number): Outcome<string> {
  const ms = parseDuration(x);
  const range = `from ${formatDuration(min)} to ${formatDuration(max)}`;
  if (ms === undefined) return invalidField(path, `must be a duration such as "500ms", "90s", "5m" or "1h30m" (${range})`);
  if (ms < min || ms > max) return invalidField(path, `must be ${range}`);
  return ok(x as string);
}

function weekdays(x: unknown, path: string): Outcome<Weekday[]> {
  if (!Array.isArray(x) || x.length === 0) return invalidField(path, `must be a non-empty array of ${WEEKDAYS.join(', ')}`);
  const seen = new Set<Weekday>();
  for (const [i, d] of x.entries()) {
    if (typeof d !== 'string' || !WEEKDAYS.includes(d as Weekday)) return invalidField(`${path}[${i}]`, oneOf(WEEKDAYS));
    if (seen.has(d as Weekday)) return invalidField(`${path}[${i}]`, 'is listed twice');
    seen.add(d as Weekday);
  }
  return ok([...seen]);
}

function scheduleTrigger(x: Obj, path: string): Outcome<Trigger> | undefined {
  if (x.type === 'time') {
    const extra = unknownKey(x, ['type', 'at', 'days'], path);
    if (extra) return extra;
    if (typeof x.at !== 'string' || !HHMMSS.test(x.at)) {
      return invalidField(`${path}.at`, 'must be a local time HH:MM or HH:MM:SS from 00:00 to 23:59:59');
    }
    if (x.days === undefined) return ok({ type: 'time', at: x.at });
    const days = weekdays(x.days, `${path}.days`);
    return days.ok ? ok({ type: 'time', at: x.at, days: days.value }) : days;
  }
  if (x.type === 'cron') {
    const extra = unknownKey(x, ['type', 'expression'], path);
    if (extra) return extra;
    const expression = text(x.expression, `${path}.expression`, RULE_LIMITS.maxCronLength);
    if (!expression.ok) return expression;
    const refused = cronExpressionError(expression.value);
    if (refused !== undefined) return invalidField(`${path}.expression`, refused);
    return ok({ type: 'cron', expression: expression.value });
  }
  if (x.type === 'sun') {
    const extra = unknownKey(x, ['type', 'event', 'offset'], path);
    if (extra) return extra;
    if (x.event !== 'sunrise' && x.event !== 'sunset') return invalidField(`${path}.event`, oneOf(['sunrise', 'sunset']));
    if (x.offset === undefined) return ok({ type: 'sun', event: x.event });
    const offset = parseSignedDuration(x.offset);
    const max = DURATION_LIMITS.maxSunOffset;
    if (offset === undefined || Math.abs(offset) > max) {
      return invalidField(
        `${path}.offset`,
        `must be a signed duration such as "-30m" or "+1h" from -${formatDuration(max)} to +${formatDuration(max)}`,
      );
    }
    return ok({ type: 'sun', event: x.event, offset: x.offset as string });
  }
  return undefined;
}

function trigger(x: unknown, path: string): Outcome<Trigger> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  if (x.type === 'attribute') {
    const extra = unknownKey(x, ['type', 'device', 'attribute', 'to', 'for'], path);
    if (extra) return extra;
    const device = ref(x.device, `${path}.device`, 'id');
    if (!device.ok) return device;
    const attribute = ref(x.attribute, `${path}.attribute`, 'name');
    if (!attribute.ok) return attribute;
    let out: Trigger = { type: 'attribute', device: device.value, attribute: attribute.value };
    if (x.to !== undefined) {
      const to = value(x.to, `${path}.to`);
      if (!to.ok) return to;
      out = { ...out, to: to.value };
    }
    if (x.for !== undefined) {
      const held = duration(x.for, `${path}.for`, 1, DURATION_LIMITS.maxFor);
      if (!held.ok) return held;
      out = { ...out, for: held.value };
    }
    return ok(out);
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
  return scheduleTrigger(x, path) ?? invalidField(`${path}.type`, oneOf(TRIGGER_TYPES));
}

const hhmm = (x: unknown, path: string): Outcome<string> =>
  typeof x === 'string' && HHMM.test(x) ? ok(x) : invalidField(path, 'must be a time HH:MM from 00:00 to 23:59');

/** A condition at nesting `depth` (1 at the top of `if`); and/or/not nest up to RULE_LIMITS.maxConditionDepth. */
function condition(x: unknown, path: string, depth = 1): Outcome<Condition> {
  if (!isObj(x)) return invalidField(path, 'must be an object');
  // `type` may be omitted on attribute conditions: the `device` field identifies them.
  const type = x.type ?? ('device' in x ? 'attribute' : undefined);
  if (type === 'and' || type === 'or' || type === 'not') {
    const max = RULE_LIMITS.maxConditionDepth;
    if (depth >= max) return invalidField(path, `nests and/or/not too deep: at most ${max} levels of conditions`);
    if (type === 'not') {
      const extra = unknownKey(x, ['type', 'condition'], path);
      if (extra) return extra;
      const inner = condition(x.condition, `${path}.condition`, depth + 1);
      return inner.ok ? ok({ type, condition: inner.value }) : inner;
    }
    const extra = unknownKey(x, ['type', 'conditions'], path);
    if (extra) return extra;
    const members = list(x.conditions, `${path}.conditions`, 1, (c, p) => condition(c, p, depth + 1));
    return members.ok ? ok({ type, conditions: members.value }) : members;
  }
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
  if (x.type === 'delay') {
    const extra = unknownKey(x, ['type', 'for'], path);
    if (extra) return extra;
    const wait = duration(x.for, `${path}.for`, 1, DURATION_LIMITS.maxDelay);
    return wait.ok ? ok({ type: 'delay', for: wait.value }) : wait;
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
 * Validates a rule from an untrusted body. Defaults: `enabled` true, `mode` 'single', `if` [],
 * `misfireGrace` absent (DEFAULT_MISFIRE_GRACE applies; a rule's own is 1 s .. 24 h). `then` may
 * hold delays anywhere but at the end. Whether the home has a `location` for sun triggers is the
 * home's check, not this one. A read-only `suspended` field (as served by the rule list) is
 * accepted and ignored.
 */
export function validateRule(input: unknown): Outcome<Rule> {
  if (!isObj(input)) return invalidField('rule', 'must be an object');
  const extra = unknownKey(input, ['id', 'name', 'enabled', 'mode', 'when', 'if', 'then', 'misfireGrace', 'suspended'], '');
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
  const last = then.value.length - 1;
  if (then.value[last]?.type === 'delay') return invalidField(`then[${last}]`, 'is a delay: a rule cannot end with a delay');
  const rule: Rule = {
    id: ruleId.value,
    name: name.value,
    enabled: input.enabled ?? true,
    mode: mode as RuleMode,
    when: when.value,
    if: conditions.value,
    then: then.value,
  };
  if (input.misfireGrace === undefined) return ok(rule);
  const grace = duration(input.misfireGrace, 'misfireGrace', MIN_MISFIRE_GRACE_MS, DURATION_LIMITS.maxMisfireGrace);
  return grace.ok ? ok({ ...rule, misfireGrace: grace.value }) : grace;
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

/** Checks a home's location: `{latitude: −90..90, longitude: −180..180}` in degrees. */
export function validateLocation(x: unknown, field = 'location'): Outcome<GeoLocation> {
  if (!isObj(x)) return invalidField(field, 'must be an object {latitude, longitude}');
  const extra = unknownKey(x, ['latitude', 'longitude'], field);
  if (extra) return extra;
  const { latitude, longitude } = x;
  if (typeof latitude !== 'number' || !Number.isFinite(latitude) || latitude < -90 || latitude > 90) {
    return invalidField(`${field}.latitude`, 'must be a number of degrees from -90 to 90');
  }
  if (typeof longitude !== 'number' || !Number.isFinite(longitude) || longitude < -180 || longitude > 180) {
    return invalidField(`${field}.longitude`, 'must be a number of degrees from -180 to 180');
  }
  return ok({ latitude, longitude });
}
