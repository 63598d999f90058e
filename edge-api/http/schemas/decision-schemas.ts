/** Schemas of the decision log: what became of each triggered rule, and the filters of a read. */
import { DECISION_OUTCOMES, DEFAULT_DECISION_LOG_SIZE } from '../../../actors/rules/decision-log.ts';
import { validateId } from '../../../actors/rules/rule-validation.ts';
import { RULE_LIMITS } from '../../../actors/rules/rule-types.ts';
import { queryInt, z } from '../api-schemas.ts';
import { ValueSchema } from './device-schemas.ts';
import { ActionSchema, ConditionSchema } from './automation-schemas.ts';

/** Decision log entries per read: at most, and when `limit` is absent. */
export const DECISION_PAGE_LIMIT = { max: 200, default: 50 } as const;

/** `?limit=&rule=&outcome=`: each optional; every bad one is named. */
export const DecisionQuerySchema = z.object({
  limit: queryInt(1, DECISION_PAGE_LIMIT.max, DECISION_PAGE_LIMIT.default, 'Entries to return, newest first.'),
  rule: z
    .string()
    .refine((id) => validateId(id, 'rule').ok, { error: 'must be a rule id: 1 to 64 letters, digits, _ or -' })
    .optional()
    .openapi({ pattern: RULE_LIMITS.idPattern.source, description: 'Only the decisions of this rule.', example: 'hall-night-light' }),
  outcome: z.enum(DECISION_OUTCOMES).optional().openapi({ description: 'Only the decisions with this outcome.', example: 'fired' }),
});

const TriggerMatch = z
  .union([
    z.object({ type: z.literal('attribute'), device: z.string(), attribute: z.string(), value: ValueSchema, for: z.string().optional() }),
    z.object({ type: z.literal('event'), device: z.string(), event: z.string() }),
    z.object({ type: z.enum(['time', 'cron', 'sun']), dueAt: z.number().openapi({ description: 'Epoch ms it came due.' }) }),
  ])
  .openapi('TriggerMatch', { description: 'The trigger that fired, with what the change carried.' });

const ConditionResult = z
  .object({
    condition: ConditionSchema,
    saw: ValueSchema.nullable().openapi({
      description: 'The value compared (local HH:MM for a time condition); null if never reported, and for and/or/not.',
    }),
    passed: z.boolean(),
    // Typed any: the recursive type is beyond what Hono's JSON types follow.
    results: z
      .any()
      .optional()
      .openapi({
        type: 'array',
        items: { $ref: '#/components/schemas/ConditionResult' },
        description: "Of and/or/not: their members' verdicts, in order (absent otherwise).",
      }),
  })
  .openapi('ConditionResult');

const DecisionAction = z
  .discriminatedUnion('type', [
    z.object({
      type: z.literal('command'),
      device: z.string(),
      name: z.string(),
      params: z.record(z.string(), ValueSchema),
      commandId: z.string(),
      ttlMs: z.number().int(),
      scene: z.string().optional().openapi({ description: 'The scene the command came from.' }),
    }),
    z.object({ type: z.literal('notify'), message: z.string() }),
    z.object({ type: z.literal('skipped'), action: ActionSchema, reason: z.string() }),
  ])
  .openapi('DecisionAction', { description: 'One effect a firing took, or an action it could not run.' });

export const DecisionEntrySchema = z
  .object({
    seq: z.number().int().openapi({ description: 'Increases by one per entry in a home; never reused.' }),
    at: z.number().openapi({ description: 'Epoch ms.' }),
    ruleId: z.string(),
    ruleName: z.string(),
    trigger: TriggerMatch,
    depth: z.number().int().openapi({ description: 'Causal depth of the triggering change (0: a spontaneous report).' }),
    conditions: z.array(ConditionResult).readonly(),
    outcome: z.enum(DECISION_OUTCOMES),
    actions: z.array(DecisionAction).readonly().openapi({ description: 'Empty unless the outcome is fired.' }),
    reason: z.string().optional(),
    lateMs: z.number().optional().openapi({ description: 'Of missed: how late (ms) beyond misfireGrace.' }),
    skipped: z.number().int().optional().openapi({ description: 'Schedule occurrences that did not run while the node was down.' }),
    run: z
      .object({ no: z.number().int(), step: z.number().int() })
      .optional()
      .openapi({ description: 'Of a rule with delays: its run, and the index in `then` of the first action this entry took.' }),
  })
  .openapi('DecisionEntry', { description: `The home keeps the last ${DEFAULT_DECISION_LOG_SIZE} (condition_false ones apart).` });

export const DecisionListSchema = z.object({ items: z.array(DecisionEntrySchema).readonly() }).openapi('DecisionList');

export const decisionListExample = {
  items: [
    {
      seq: 42,
      at: 1_767_290_000_000,
      ruleId: 'hall-night-light',
      ruleName: 'Hall light on motion after sunset',
      trigger: { type: 'event', device: 'motion1', event: 'motion_detected' },
      depth: 0,
      conditions: [
        {
          condition: { type: 'time', after: '18:30', before: '06:30' },
          saw: '21:14',
          passed: true,
        },
      ],
      outcome: 'fired',
      actions: [
        {
          type: 'command',
          device: 'light1',
          name: 'set',
          params: { on: true, brightness: 60 },
          commandId: 'light1~r-hall-night-light-7',
          ttlMs: 30_000,
        },
      ],
      run: { no: 7, step: 0 },
    },
  ],
} as const;
