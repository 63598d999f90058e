/**
 * Schemas of the automation routes: the rule model (triggers, conditions, actions), rules as
 * written and as served, scenes, and the decision log. The home actor validates rule and scene
 * bodies (actors/rules/rule-validation.ts) with its own messages and field paths: the request
 * schemas here describe that structure and refuse nothing the home would take.
 */
import { DURATION_LIMITS } from '../../../actors/rules/duration.ts';
import {
  ACTION_TYPES,
  COMPARE_OPS,
  DEFAULT_COMMAND_TTL_MS,
  DEFAULT_MISFIRE_GRACE,
  RULE_LIMITS,
  RULE_MODES,
  TRIGGER_TYPES,
  WEEKDAYS,
} from '../../../actors/rules/rule-types.ts';
import { VALUE_LIMITS } from '../../../actors/validation.ts';
import { z } from '../api-schemas.ts';
import { ValueSchema } from './device-schemas.ts';

/** A reference to a named schema of the document (for the loose request schemas and recursion). */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const Duration = z.string().openapi({
  description:
    'A duration: `<integer><unit>` parts, units d, h, m, s, ms in that order, each at most once ("500ms", "90s", "5m", "1h30m").',
  example: '5m',
});
const LocalTime = z
  .string()
  .openapi({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', example: '18:30', description: "Local time HH:MM in the home's time zone." });
const RuleId = z.string().openapi({ pattern: RULE_LIMITS.idPattern.source, example: 'hall-night-light' });
const DeviceRef = z.string().openapi({ description: `A device id (1 to ${VALUE_LIMITS.idLength} characters).`, example: 'motion1' });
const Name = z.string().openapi({ description: `A name (1 to ${VALUE_LIMITS.nameLength} characters).` });

const AttributeTrigger = z
  .object({ type: z.literal('attribute'), device: DeviceRef, attribute: Name, to: ValueSchema.optional(), for: Duration.optional() })
  .openapi('AttributeTrigger', {
    description:
      'Fires when the attribute changes (to `to`, when set); with `for`, once the new value has held that long ' +
      `(at most ${DURATION_LIMITS.maxFor / 86_400_000} days).`,
    example: { type: 'attribute', device: 'door1', attribute: 'open', to: true, for: '10m' },
  });
const EventTrigger = z.object({ type: z.literal('event'), device: DeviceRef, event: Name }).openapi('EventTrigger', {
  description: 'Fires when the device reports the event.',
  example: { type: 'event', device: 'motion1', event: 'motion_detected' },
});
const TimeTrigger = z
  .object({
    type: z.literal('time'),
    at: z.string().openapi({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d)?$', description: 'Local time HH:MM or HH:MM:SS.' }),
    days: z.array(z.enum(WEEKDAYS)).readonly().optional().openapi({ description: 'Default: every day.' }),
  })
  .openapi('TimeTrigger', {
    description: "Fires at a local time in the home's time zone, on the given days.",
    example: { type: 'time', at: '07:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'] },
  });
const CronTrigger = z
  .object({ type: z.literal('cron'), expression: z.string().openapi({ maxLength: RULE_LIMITS.maxCronLength }) })
  .openapi('CronTrigger', {
    description: "Fires at each time of a cron expression (5 fields, or 6 with seconds first) in the home's time zone.",
    example: { type: 'cron', expression: '0 */2 * * *' },
  });
const SunTrigger = z
  .object({
    type: z.literal('sun'),
    event: z.enum(['sunrise', 'sunset']),
    offset: z.string().optional().openapi({ description: 'A signed duration, at most 6 h either way ("-30m", "+1h").' }),
  })
  .openapi('SunTrigger', {
    description: "Fires at sunrise or sunset at the home's location (a home without a location cannot hold it), moved by `offset`.",
    example: { type: 'sun', event: 'sunset', offset: '-15m' },
  });

/** What starts a rule. */
export const TriggerSchema = z
  .discriminatedUnion('type', [AttributeTrigger, EventTrigger, TimeTrigger, CronTrigger, SunTrigger])
  .openapi('Trigger', { description: `One of ${TRIGGER_TYPES.join(', ')}.` });

// Conditions nest (and/or/not): members refer to the named schema instead of repeating it, typed
// any (Hono's JSON types do not follow the recursive type).
const NestedCondition = z.any().openapi(ref('Condition'));

const AttributeCondition = z
  .object({ type: z.literal('attribute').optional(), device: DeviceRef, attribute: Name, op: z.enum(COMPARE_OPS), value: ValueSchema })
  .openapi('AttributeCondition', {
    description: 'Compares the latest reported value (`type` may be omitted); <, <=, >, >= compare numbers only.',
    example: { type: 'attribute', device: 'lux1', attribute: 'lux', op: '<', value: 20 },
  });
const TimeCondition = z.object({ type: z.literal('time'), after: LocalTime, before: LocalTime }).openapi('TimeCondition', {
  description: 'True from `after` (inclusive) to `before` (exclusive); after > before crosses midnight.',
  example: { type: 'time', after: '18:30', before: '06:30' },
});
const GroupCondition = z
  .object({
    type: z.enum(['and', 'or']),
    // Typed any: the recursive type is beyond what Hono's JSON types follow.
    conditions: z.any().openapi({ type: 'array', items: ref('Condition'), minItems: 1, maxItems: RULE_LIMITS.maxItems }),
  })
  .openapi('GroupCondition', {
    description: `Every (and) or any (or) of its members; nesting at most ${RULE_LIMITS.maxConditionDepth} levels.`,
  });
const NotCondition = z
  .object({ type: z.literal('not'), condition: NestedCondition })
  .openapi('NotCondition', { description: 'True when its condition does not hold.' });

/** What must hold when a rule fires. */
export const ConditionSchema = z.union([AttributeCondition, TimeCondition, GroupCondition, NotCondition]).openapi('Condition');

const ParamsSchema = z.record(z.string(), ValueSchema).openapi({ maxProperties: VALUE_LIMITS.attributesPerMessage });

/** A command of a rule or a scene. */
export const CommandActionSchema = z
  .object({
    type: z.literal('command').openapi({ description: 'May be omitted in a scene.' }),
    device: DeviceRef,
    name: Name,
    params: ParamsSchema.optional(),
    ttlMs: z.number().int().optional().openapi({
      minimum: RULE_LIMITS.minTtlMs,
      maximum: RULE_LIMITS.maxTtlMs,
      default: DEFAULT_COMMAND_TTL_MS,
      description: 'Milliseconds until it expires.',
    }),
  })
  .openapi('CommandAction', { example: { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } } });
const SceneAction = z
  .object({ type: z.literal('scene'), scene: RuleId.openapi({ example: 'evening' }) })
  .openapi('SceneAction', { description: 'Runs every command of a scene of the home.' });
const NotifyAction = z
  .object({ type: z.literal('notify'), message: z.string().openapi({ maxLength: RULE_LIMITS.maxMessageLength }) })
  .openapi('NotifyAction', { description: "Tells the home's apps (an event on GET …/events)." });
const DelayAction = z.object({ type: z.literal('delay'), for: Duration }).openapi('DelayAction', {
  description:
    "Waits (durably: restarts and handoffs keep it) before the actions after it; not last. While a run waits, the rule's " +
    '`mode` decides what a new firing does: single ignores it, restart starts anew, queued runs it after, parallel alongside.',
  example: { type: 'delay', for: '5m' },
});

/** What a rule does, in order. */
export const ActionSchema = z
  .discriminatedUnion('type', [CommandActionSchema, SceneAction, NotifyAction, DelayAction])
  .openapi('Action', { description: `One of ${ACTION_TYPES.join(', ')}.` });

/** A rule as served: defaults filled in, and why storm control suspended it, if it did. */
export const RuleSchema = z
  .object({
    id: RuleId,
    name: z.string(),
    enabled: z.boolean(),
    mode: z.enum(RULE_MODES),
    when: z.array(TriggerSchema).readonly(),
    if: z.array(ConditionSchema).readonly(),
    then: z.array(ActionSchema).readonly(),
    misfireGrace: Duration.optional().openapi({ description: `How late a timer may run; absent: ${DEFAULT_MISFIRE_GRACE}.` }),
    suspended: z
      .object({ reason: z.string(), at: z.number().openapi({ description: 'Epoch ms.' }) })
      .optional()
      .openapi({ description: 'Set while storm control holds the rule: POST …/resume clears it.' }),
  })
  .openapi('Rule');

/** A rule body: any field passes here, the home checks them (see the module comment); documented as the home takes it. */
const looseField = (doc: object) => z.unknown().optional().openapi(doc);

const RULE_FIELDS = {
  id: looseField({ type: 'string', pattern: RULE_LIMITS.idPattern.source, description: 'Unique in the home; on PUT, the path id.' }),
  name: looseField({ type: 'string', minLength: 1, maxLength: RULE_LIMITS.maxNameLength }),
  enabled: looseField({ type: 'boolean', default: true }),
  mode: looseField({
    type: 'string',
    enum: [...RULE_MODES],
    default: 'single',
    description: 'What a firing does while a run waits in a delay.',
  }),
  when: looseField({
    type: 'array',
    items: ref('Trigger'),
    minItems: 1,
    maxItems: RULE_LIMITS.maxItems,
    description: 'Any of these fires the rule.',
  }),
  if: looseField({ type: 'array', items: ref('Condition'), maxItems: RULE_LIMITS.maxItems, default: [], description: 'All must hold.' }),
  then: looseField({
    type: 'array',
    items: ref('Action'),
    minItems: 1,
    maxItems: RULE_LIMITS.maxItems,
    description: 'Done in order; a delay may not be last.',
  }),
  misfireGrace: looseField({
    type: 'string',
    description: `How late a timer (a \`for\`, a schedule, a delay) may still run after its node was down: 1s to 24h; default ${DEFAULT_MISFIRE_GRACE}.`,
  }),
  suspended: looseField({ readOnly: true, description: 'As served; ignored when written.' }),
};

/** `POST …/rules`: creates or replaces the rule with the body's id. */
export const RuleInputSchema = z
  .looseObject(RULE_FIELDS)
  .openapi('RuleInput', { additionalProperties: false, required: ['id', 'name', 'when', 'then'] });
/** `PUT …/rules/{ruleId}`: the path names the rule; a body id, if any, must be the same. */
export const RuleReplacementSchema = z
  .looseObject(RULE_FIELDS)
  .openapi('RuleReplacement', { additionalProperties: false, required: ['name', 'when', 'then'] });

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

/** A scene as served. */
export const SceneSchema = z
  .object({ id: RuleId.openapi({ example: 'evening' }), name: z.string(), actions: z.array(CommandActionSchema).readonly() })
  .openapi('Scene');

/** A scene body: checked by the home, documented here. */
export const SceneInputSchema = z
  .looseObject({
    id: looseField({ type: 'string', pattern: RULE_LIMITS.idPattern.source, description: 'Unique in the home; on PUT, the path id.' }),
    name: looseField({ type: 'string', minLength: 1, maxLength: RULE_LIMITS.maxNameLength }),
    actions: looseField({
      type: 'array',
      items: ref('CommandAction'),
      minItems: 1,
      maxItems: RULE_LIMITS.maxItems,
      description: 'Commands run together (`type` may be omitted).',
    }),
  })
  .openapi('SceneInput', { additionalProperties: false, required: ['name', 'actions'] });

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
