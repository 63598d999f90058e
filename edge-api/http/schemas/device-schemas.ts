/** Schemas of the device routes: the device list, the shadow and its desired patch, commands and their records. */
import { COMMAND_LIMITS, DEVICE_LIMITS } from '../../../actors/device-state.ts';
import { DEFAULT_COMMAND_TTL_MS, RULE_LIMITS } from '../../../actors/rules/rule-types.ts';
import { VALUE_LIMITS } from '../../../actors/validation.ts';
import { z } from '../api-schemas.ts';

/** An attribute value, as the hub contract's `Value`: a number, a boolean or a text (its length is the actor's to check). */
export const ValueSchema = z
  .union([z.number(), z.boolean(), z.string()], { error: 'must be a number, boolean or string' })
  .openapi('Value', {
    description: `An attribute value: a finite number, true or false, or a text of at most ${VALUE_LIMITS.textLength} characters.`,
    example: true,
  });

/**
 * A name or an id of 1 to `max` characters, with the actors' message (`checkKey`, which also
 * refuses `__proto__`: a record key schema must, as zod would drop that key from its output).
 */
export const keySchema = (max: number) => {
  const error = `must be a string of 1-${max} characters`;
  return z.string({ error }).min(1, { error }).max(max, { error });
};

const RecordKey = keySchema(VALUE_LIMITS.nameLength);

/**
 * A record of named `values`. Zod skips a `__proto__` key (its output must not set a prototype), so
 * it is refused here, as the actors' `checkKey` refuses it ("is a reserved name"), along with the
 * record's other problems (a failed preprocess stops the pipe, so it checks the rest itself).
 */
const namedValues = <T extends z.ZodType>(values: T) => {
  const max = VALUE_LIMITS.attributesPerMessage;
  const record = z
    .record(RecordKey, values, { error: 'must be an object' })
    .refine((r) => Object.keys(r).length <= max, { error: `must have at most ${max} entries` })
    .openapi({ maxProperties: max });
  return z.preprocess((x, ctx) => {
    if (typeof x !== 'object' || x === null || !Object.hasOwn(x, '__proto__')) return x;
    ctx.addIssue({ code: 'custom', message: 'is a reserved name', path: ['__proto__'], input: x });
    for (const issue of record.safeParse(x).error?.issues ?? []) ctx.addIssue({ ...issue, input: x } as never);
    return x;
  }, record);
};

/** Named parameters of a command: at most VALUE_LIMITS.attributesPerMessage. */
export const ParamsSchema = namedValues(ValueSchema);

/** Named values: `{on: true, brightness: 40}`. */
const ValuesSchema = z.record(z.string(), ValueSchema);

export const DeviceBriefSchema = z.object({
  deviceId: z.string().openapi({ example: 'light1' }),
  type: z.string().openapi({ example: 'light', description: 'What the hub said the device is.' }),
  hubId: z.string().optional().openapi({ description: 'The hub that announced it.', example: 'hub1' }),
});

/** One page of a home's devices, sorted by id. */
export const DevicePageSchema = z
  .object({
    items: z.array(DeviceBriefSchema).readonly(),
    nextCursor: z.string().nullable().openapi({ description: 'Opaque: pass it as `cursor` for the next page; null on the last page.' }),
  })
  .openapi('DevicePage');

export const devicePageExample = {
  items: [
    { deviceId: 'light1', type: 'light', hubId: 'hub1' },
    { deviceId: 'motion1', type: 'motion_sensor', hubId: 'hub1' },
  ],
  nextCursor: 'bW90aW9uMQ',
};

/** The device shadow: reported values (with the hub's timestamp), desired ones, and what is still to do. */
export const ShadowSchema = z
  .object({
    deviceId: z.string(),
    type: z.string().nullable().openapi({ description: 'Null until its hub announced it.' }),
    capabilities: z.array(z.string()).readonly(),
    reported: z
      .record(
        z.string(),
        z.object({ value: ValueSchema, ts: z.number().openapi({ description: 'Hub timestamp of the report, epoch ms.' }) }),
      )
      .openapi({ description: `What the device reported last, per attribute (at most ${DEVICE_LIMITS.reportedAttributes}).` }),
    desired: ValuesSchema.openapi({ description: `What the apps want, per attribute (at most ${DEVICE_LIMITS.desiredAttributes}).` }),
    delta: ValuesSchema.openapi({ description: 'The desired values the device has not reported yet: what its hub is told to do.' }),
    version: z.number().int().openapi({ description: 'Increases on every change; the ETag is `"<version>"`.' }),
    online: z.boolean().openapi({ description: 'Its hub is connected and the device reported since.' }),
    lastSeen: z.number().nullable().openapi({ description: 'Epoch ms of its last applied report; null if none.' }),
  })
  .openapi('Shadow');

export const shadowExample = {
  deviceId: 'light1',
  type: 'light',
  capabilities: ['on', 'brightness'],
  reported: { on: { value: false, ts: 1_767_225_600_000 }, brightness: { value: 10, ts: 1_767_225_600_000 } },
  desired: { on: true },
  delta: { on: true },
  version: 8,
  online: true,
  lastSeen: 1_767_225_600_000,
};

/**
 * `PATCH …/devices/{deviceId}`: a merge into `desired`. The device still checks the text lengths
 * and the shadow's total with its own messages (`desired.on must be at most 1024 characters`).
 */
export const DesiredPatchSchema = z
  .strictObject({
    desired: namedValues(ValueSchema.nullable()).openapi({
      // The generator drops the null of a nullable named schema in a record's values.
      additionalProperties: { anyOf: [{ $ref: '#/components/schemas/Value' }, { type: 'null' }] },
      description:
        `Merged into the desired values: a value sets an attribute, null removes it (at most ${VALUE_LIMITS.attributesPerMessage} ` +
        `entries, names of 1 to ${VALUE_LIMITS.nameLength} characters).`,
      example: { on: true, brightness: 40 },
    }),
  })
  .openapi('DesiredPatch');

export const desiredPatchExample = { desired: { on: true, brightness: null } };

const COMMAND_TTL_ERROR = `must be an integer in 1..${COMMAND_LIMITS.maxTtlMs}`;

/** `POST …/devices/{deviceId}/commands`: the device checks the text lengths and `__proto__` names with its own messages. */
export const CommandIssueSchema = z
  .strictObject({
    name: keySchema(VALUE_LIMITS.nameLength).openapi({
      description: 'What to run; the hub knows the names its devices take.',
      example: 'set',
    }),
    params: ParamsSchema.optional().openapi({
      default: {},
      description: `Named values for the command (at most ${VALUE_LIMITS.attributesPerMessage}).`,
      example: { on: true, brightness: 40 },
    }),
    ttlMs: z
      .number({ error: COMMAND_TTL_ERROR })
      .int({ error: COMMAND_TTL_ERROR })
      .min(1, { error: COMMAND_TTL_ERROR })
      .max(COMMAND_LIMITS.maxTtlMs, { error: COMMAND_TTL_ERROR })
      .optional()
      .openapi({
        default: DEFAULT_COMMAND_TTL_MS,
        description: 'Milliseconds until the command expires if the hub has not completed it.',
        example: 60_000,
      }),
  })
  .openapi('CommandIssue');

export const commandIssueExample = { name: 'set', params: { on: true, brightness: 40 }, ttlMs: 60_000 };

const CommandStatusSchema = z.enum(['queued', 'sent', 'succeeded', 'failed', 'expired']).openapi('CommandStatus', {
  description: 'queued → sent → succeeded | failed, or expired from queued or sent.',
});

export const CommandAcceptedSchema = z
  .object({
    commandId: z.string().openapi({ description: '`<deviceId>~<Idempotency-Key or a random key>`.' }),
    status: CommandStatusSchema,
  })
  .openapi('CommandAccepted');

export const commandAcceptedExample = { commandId: 'light1~tap-1', status: 'sent' } as const;

/** A command's record; times are epoch ms. */
export const CommandRecordSchema = z
  .object({
    commandId: z.string(),
    name: z.string(),
    params: ValuesSchema,
    status: CommandStatusSchema,
    createdAt: z.number().openapi({ description: 'Epoch ms.' }),
    expiresAtMs: z.number().openapi({ description: 'Epoch ms after which it expires unless completed.' }),
    depth: z.number().int().openapi({ description: 'Causal depth: 0 from an app, more from a rule.' }),
    source: z
      .union([
        z.object({ kind: z.literal('app') }),
        z.object({ kind: z.literal('rule'), ruleId: z.string().openapi({ pattern: RULE_LIMITS.idPattern.source }) }),
      ])
      .openapi({ description: 'Who asked: an app, or a rule.' }),
    issueNo: z.number().int().openapi({ description: "1-based position in the device's issue order." }),
    sentAt: z.number().optional().openapi({ description: 'Epoch ms it went to the hub.' }),
    completedAt: z.number().optional().openapi({ description: 'Epoch ms it succeeded, failed or expired.' }),
    error: z.string().optional().openapi({ description: 'Why the hub could not run it.' }),
    result: ValuesSchema.optional().openapi({ description: 'What the hub said the command produced.' }),
  })
  .openapi('CommandRecord');

export const commandRecordExample = {
  commandId: 'light1~tap-1',
  name: 'set',
  params: { on: true, brightness: 40 },
  status: 'succeeded',
  createdAt: 1_767_225_600_000,
  expiresAtMs: 1_767_225_660_000,
  depth: 0,
  source: { kind: 'app' },
  issueNo: 3,
  sentAt: 1_767_225_600_002,
  completedAt: 1_767_225_600_180,
  result: { brightness: 40 },
} as const;

/*
 * Request headers as documented parameters. The routes read and check them themselves, from
 * node's parsed headers (request-input.ts), with their messages: no header schema validates them.
 */

export const IF_NONE_MATCH = {
  name: 'If-None-Match',
  in: 'header' as const,
  required: false,
  description: 'ETags of a shadow the client holds (a list, weak tags or `*`): a match answers 304 without a body.',
  schema: { type: 'string' as const },
  example: '"8"',
};

export const IF_MATCH = {
  name: 'If-Match',
  in: 'header' as const,
  required: false,
  description: 'Write only if the shadow is still at this version: one strong ETag `"<version>"` as served, or `*`; else 412.',
  schema: { type: 'string' as const, pattern: '^(\\*|"\\d{1,15}")$' },
  example: '"8"',
};

export const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header' as const,
  required: false,
  description:
    'Names the command (`<deviceId>~<key>`): a retry with the same key and body answers the first command, another body ' +
    'under it is a 409. 1 to 64 letters, digits, `_` or `-`, not starting with `r-` or `s-` (rule and scene commands).',
  schema: { type: 'string' as const, pattern: '^[A-Za-z0-9_-]{1,64}$' },
  example: 'tap-1',
};

/** The response header of a shadow: its version as a strong entity tag. */
export const ETAG_HEADER = {
  ETag: { description: 'The shadow version as a strong entity tag, `"<version>"`.', schema: { type: 'string' as const }, example: '"8"' },
};
