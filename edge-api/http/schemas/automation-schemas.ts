/**
 * Schemas of the automation routes: the rule model (triggers, conditions, actions), rules as
 * written and as served, scenes, and the decision log. The request schemas check the structure
 * (types, required and unknown keys, the trigger, condition and action types) and every bad field
 * at once; the home actor (actors/rules/rule-validation.ts) then checks the meaning (ids,
 * durations, times, ranges, references) with its own messages. They refuse nothing it would take.
 */
import { DURATION_LIMITS } from '../../../actors/rules/duration.ts';
import {
  ACTION_TYPES,
  COMPARE_OPS,
  CONDITION_TYPES,
  DEFAULT_COMMAND_TTL_MS,
  DEFAULT_MISFIRE_GRACE,
  RULE_LIMITS,
  RULE_MODES,
  TRIGGER_TYPES,
  WEEKDAYS,
} from '../../../actors/rules/rule-types.ts';
import { VALUE_LIMITS } from '../../../actors/validation.ts';
import { z } from '../api-schemas.ts';
import { ParamsSchema, ValueSchema, keySchema } from './device-schemas.ts';

const DURATION_ERROR = 'must be a duration such as "500ms", "90s", "5m" or "1h30m"';
const Duration = z.string({ error: DURATION_ERROR }).openapi({
  description:
    'A duration: `<integer><unit>` parts, units d, h, m, s, ms in that order, each at most once ("500ms", "90s", "5m", "1h30m").',
  example: '5m',
});
const HHMM_ERROR = 'must be a time HH:MM from 00:00 to 23:59';
const LocalTime = z
  .string({ error: HHMM_ERROR })
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: HHMM_ERROR })
  .openapi({ example: '18:30', description: "Local time HH:MM in the home's time zone." });
const ID_ERROR = 'must be 1 to 64 letters, digits, _ or -';
const RuleId = z.string({ error: ID_ERROR }).regex(RULE_LIMITS.idPattern, { error: ID_ERROR }).openapi({ example: 'hall-night-light' });
const DeviceRef = keySchema(VALUE_LIMITS.idLength).openapi({ description: 'A device id.', example: 'motion1' });
const Name = keySchema(VALUE_LIMITS.nameLength);
/** A non-empty text of at most `max` characters. */
const text = (max: number) =>
  z
    .string({ error: 'must be a non-empty string' })
    .min(1, { error: 'must be a non-empty string' })
    .max(max, { error: `must be at most ${max} characters` });
const DisplayName = text(RULE_LIMITS.maxNameLength);

const AttributeTrigger = z
  .strictObject({ type: z.literal('attribute'), device: DeviceRef, attribute: Name, to: ValueSchema.optional(), for: Duration.optional() })
  .openapi('AttributeTrigger', {
    description:
      'Fires when the attribute changes (to `to`, when set); with `for`, once the new value has held that long ' +
      `(at most ${DURATION_LIMITS.maxFor / 86_400_000} days).`,
    example: { type: 'attribute', device: 'door1', attribute: 'open', to: true, for: '10m' },
  });
const EventTrigger = z.strictObject({ type: z.literal('event'), device: DeviceRef, event: Name }).openapi('EventTrigger', {
  description: 'Fires when the device reports the event.',
  example: { type: 'event', device: 'motion1', event: 'motion_detected' },
});
const AT_ERROR = 'must be a local time HH:MM or HH:MM:SS from 00:00 to 23:59:59';
const DAYS_ERROR = `must be a non-empty array of ${WEEKDAYS.join(', ')}`;
const TimeTrigger = z
  .strictObject({
    type: z.literal('time'),
    at: z
      .string({ error: AT_ERROR })
      .regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, { error: AT_ERROR })
      .openapi({ description: 'Local time HH:MM or HH:MM:SS.', example: '07:00' }),
    days: z
      .array(z.enum(WEEKDAYS), { error: DAYS_ERROR })
      .min(1, { error: DAYS_ERROR })
      .readonly()
      .optional()
      .openapi({ description: 'Each at most once; default: every day.' }),
  })
  .openapi('TimeTrigger', {
    description: "Fires at a local time in the home's time zone, on the given days.",
    example: { type: 'time', at: '07:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'] },
  });
const CronTrigger = z.strictObject({ type: z.literal('cron'), expression: text(RULE_LIMITS.maxCronLength) }).openapi('CronTrigger', {
  description: "Fires at each time of a cron expression (5 fields, or 6 with seconds first) in the home's time zone.",
  example: { type: 'cron', expression: '0 */2 * * *' },
});
const SunTrigger = z
  .strictObject({
    type: z.literal('sun'),
    event: z.enum(['sunrise', 'sunset']),
    offset: z
      .string({ error: 'must be a signed duration such as "-30m" or "+1h"' })
      .optional()
      .openapi({ description: 'A signed duration, at most 6 h either way ("-30m", "+1h").' }),
  })
  .openapi('SunTrigger', {
    description: "Fires at sunrise or sunset at the home's location (a home without a location cannot hold it), moved by `offset`.",
    example: { type: 'sun', event: 'sunset', offset: '-15m' },
  });

/** What starts a rule. */
export const TriggerSchema = z
  .discriminatedUnion('type', [AttributeTrigger, EventTrigger, TimeTrigger, CronTrigger, SunTrigger])
  .openapi('Trigger', { description: `One of ${TRIGGER_TYPES.join(', ')}.` });

const AttributeCondition = z
  .strictObject({
    // May be omitted (or null), as the home takes it: the `device` field names an attribute condition.
    type: z.literal('attribute').nullish().openapi({ description: 'May be omitted.' }),
    device: DeviceRef,
    attribute: Name,
    op: z.enum(COMPARE_OPS),
    value: ValueSchema,
  })
  .openapi('AttributeCondition', {
    description: 'Compares the latest reported value (`type` may be omitted); <, <=, >, >= compare numbers only.',
    example: { type: 'attribute', device: 'lux1', attribute: 'lux', op: '<', value: 20 },
  });
const TimeCondition = z.strictObject({ type: z.literal('time'), after: LocalTime, before: LocalTime }).openapi('TimeCondition', {
  description: 'True from `after` (inclusive) to `before` (exclusive); after > before crosses midnight.',
  example: { type: 'time', after: '18:30', before: '06:30' },
});

const MAX_DEPTH = RULE_LIMITS.maxConditionDepth;
const TOO_DEEP = `nests and/or/not too deep: at most ${MAX_DEPTH} levels of conditions`;
const isNesting = (x: unknown): boolean =>
  typeof x === 'object' && x !== null && ['and', 'or', 'not'].includes((x as { type?: unknown }).type as string);

/**
 * The conditions at nesting `depth` (1 at the top of `if`): built level by level down to
 * RULE_LIMITS.maxConditionDepth, where only attribute and time conditions remain, so no input
 * nests the validation deeper than the home allows (a recursive schema would overflow the stack on
 * a 64 KiB body of nested `not`s).
 */
function conditionAt(depth: number): z.ZodType {
  const leaf = depth >= MAX_DEPTH;
  const error = (iss: { code: string; input?: unknown }): string | undefined => {
    if (iss.code !== 'invalid_union') return undefined;
    return leaf && isNesting(iss.input) ? TOO_DEEP : `must be one of ${CONDITION_TYPES.join(', ')}`;
  };
  const level = { description: `A condition nested at level ${depth} of ${MAX_DEPTH}.` };
  if (leaf) return z.discriminatedUnion('type', [AttributeCondition, TimeCondition], { error }).openapi(`ConditionLevel${depth}`, level);
  const member = conditionAt(depth + 1);
  const group = z.strictObject({
    type: z.enum(['and', 'or']),
    conditions: z.array(member).min(1).max(RULE_LIMITS.maxItems).readonly(),
  });
  const not = z.strictObject({ type: z.literal('not'), condition: member });
  const named = depth === 1;
  const union = z.discriminatedUnion(
    'type',
    [
      AttributeCondition,
      TimeCondition,
      named
        ? group.openapi('GroupCondition', { description: `Every (and) or any (or) of its members, 1 to ${RULE_LIMITS.maxItems}.` })
        : group,
      named ? not.openapi('NotCondition', { description: 'True when its condition does not hold.' }) : not,
    ],
    { error },
  );
  return depth === 1 ? union : union.openapi(`ConditionLevel${depth}`, level);
}

/** What must hold when a rule fires: and/or/not nest at most RULE_LIMITS.maxConditionDepth levels. */
export const ConditionSchema = conditionAt(1).openapi('Condition', {
  description: `One of ${CONDITION_TYPES.join(', ')}; and/or/not nest at most ${MAX_DEPTH} levels (the innermost holds attribute and time conditions only).`,
});

const TTL_ERROR = `must be an integer from ${RULE_LIMITS.minTtlMs} to ${RULE_LIMITS.maxTtlMs} (milliseconds)`;

/** The fields of a command of a rule or a scene. */
const commandFields = {
  device: DeviceRef,
  name: Name,
  params: ParamsSchema.optional(),
  ttlMs: z
    .number({ error: TTL_ERROR })
    .int({ error: TTL_ERROR })
    .min(RULE_LIMITS.minTtlMs, { error: TTL_ERROR })
    .max(RULE_LIMITS.maxTtlMs, { error: TTL_ERROR })
    .optional()
    .openapi({ default: DEFAULT_COMMAND_TTL_MS, description: 'Milliseconds until it expires.' }),
};

/** A command of a rule or a scene. */
export const CommandActionSchema = z
  .strictObject({ type: z.literal('command').openapi({ description: 'May be omitted in a scene.' }), ...commandFields })
  .openapi('CommandAction', { example: { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } } });
const SceneAction = z
  .strictObject({ type: z.literal('scene'), scene: RuleId.openapi({ example: 'evening' }) })
  .openapi('SceneAction', { description: 'Runs every command of a scene of the home.' });
const NotifyAction = z
  .strictObject({ type: z.literal('notify'), message: text(RULE_LIMITS.maxMessageLength) })
  .openapi('NotifyAction', { description: "Tells the home's apps (an event on GET …/events)." });
const DelayAction = z.strictObject({ type: z.literal('delay'), for: Duration }).openapi('DelayAction', {
  description:
    "Waits (durably: restarts and handoffs keep it) before the actions after it; not last. While a run waits, the rule's " +
    '`mode` decides what a new firing does: single ignores it, restart starts anew, queued runs it after, parallel alongside.',
  example: { type: 'delay', for: '5m' },
});

/** What a rule does, in order. */
export const ActionSchema = z
  .discriminatedUnion('type', [CommandActionSchema, SceneAction, NotifyAction, DelayAction])
  .openapi('Action', { description: `One of ${ACTION_TYPES.join(', ')}.` });

const items = <T extends z.ZodType>(item: T, min: number) => z.array(item).min(min).max(RULE_LIMITS.maxItems).readonly();

/** The fields of a rule, as written and as served (`mode` and `if` null are their defaults, as the home takes them). */
const ruleFields = {
  id: RuleId.openapi({ description: 'Unique in the home; on PUT, the path id.' }),
  name: DisplayName,
  enabled: z.boolean().optional().openapi({ default: true }),
  mode: z.enum(RULE_MODES).nullish().openapi({ default: 'single', description: 'What a firing does while a run waits in a delay.' }),
  when: items(TriggerSchema, 1).openapi({ description: 'Any of these fires the rule.' }),
  if: items(ConditionSchema, 0).nullish().openapi({ default: [], description: 'All must hold.' }),
  then: items(ActionSchema, 1).openapi({ description: 'Done in order; a delay may not be last.' }),
  misfireGrace: Duration.optional().openapi({
    description: `How late a timer (a \`for\`, a schedule, a delay) may still run after its node was down: 1s to 24h; default ${DEFAULT_MISFIRE_GRACE}.`,
  }),
};

const SuspensionSchema = z
  .object({ reason: z.string(), at: z.number().openapi({ description: 'Epoch ms.' }) })
  .openapi({ description: 'Set while storm control holds the rule: POST …/resume clears it.' });

/** A rule as served: defaults filled in, and why storm control suspended it, if it did. */
export const RuleSchema = z
  .object({
    ...ruleFields,
    enabled: z.boolean(),
    mode: z.enum(RULE_MODES),
    if: items(ConditionSchema, 0),
    suspended: SuspensionSchema.optional(),
  })
  .openapi('Rule');

/** A rule as written: `suspended`, as a rule list serves it, is taken and ignored. */
const ruleInputFields = {
  ...ruleFields,
  suspended: z.unknown().optional().openapi({ readOnly: true, description: 'As served; ignored when written.' }),
};

/** `POST …/rules`: creates or replaces the rule with the body's id. */
export const RuleInputSchema = z.strictObject(ruleInputFields).openapi('RuleInput');
/** `PUT …/rules/{ruleId}`: the path names the rule; a body id, if any, must be the same. */
export const RuleReplacementSchema = z.strictObject({ ...ruleInputFields, id: ruleFields.id.optional() }).openapi('RuleReplacement');

/** Motion in the hall after dark: light on, off again 5 minutes after the last motion. */
export const ruleExample = {
  id: 'hall-night-light',
  name: 'Hall light on motion after sunset',
  mode: 'restart',
  when: [{ type: 'event', device: 'motion1', event: 'motion_detected' }],
  if: [
    {
      type: 'or',
      conditions: [
        { type: 'time', after: '18:30', before: '06:30' },
        { type: 'attribute', device: 'lux1', attribute: 'lux', op: '<', value: 20 },
      ],
    },
  ],
  then: [
    { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } },
    { type: 'delay', for: '5m' },
    { type: 'command', device: 'light1', name: 'set', params: { on: false } },
  ],
  misfireGrace: '2m',
} as const;

export const ruleViewExample = { ...ruleExample, enabled: true } as const;
export const suspendedRuleExample = { ...ruleViewExample, suspended: { reason: 'fired 11 times within 10 s', at: 1_767_225_600_000 } };

/** A scene as written and as served (as written, its commands may omit `type`). */
const sceneFields = {
  id: RuleId.openapi({ example: 'evening', description: 'Unique in the home; on PUT, the path id.' }),
  name: DisplayName,
};

/** A scene as served. */
export const SceneSchema = z.object({ ...sceneFields, actions: items(CommandActionSchema, 1) }).openapi('Scene');

const SceneCommand = z
  .strictObject({
    type: z.literal('command').optional().openapi({ description: 'May be omitted.' }),
    ...commandFields,
  })
  .openapi('SceneCommand', { example: { device: 'light1', name: 'set', params: { on: true, brightness: 30 } } });

/** A scene body: `POST …/scenes` (the id is required) and `PUT …/scenes/{sceneId}` (the path id). */
export const SceneInputSchema = z
  .strictObject({
    ...sceneFields,
    id: sceneFields.id.optional(),
    actions: items(SceneCommand, 1).openapi({ description: 'Commands run together.' }),
  })
  .openapi('SceneInput');

export const sceneExample = {
  id: 'evening',
  name: 'Evening',
  actions: [
    { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 30 } },
    { type: 'command', device: 'curtain1', name: 'close' },
  ],
} as const;

export const SceneRunSchema = z
  .object({
    sceneId: z.string(),
    commands: z.array(z.object({ commandId: z.string(), device: z.string() })).readonly(),
  })
  .openapi('SceneRun', { description: 'The commands issued: follow each on GET …/commands/{commandId}.' });

export const sceneRunExample = {
  sceneId: 'evening',
  commands: [
    { commandId: 'light1~s-evening-41', device: 'light1' },
    { commandId: 'curtain1~s-evening-42', device: 'curtain1' },
  ],
};
