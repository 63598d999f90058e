/** Schemas of the provisioning routes: a home (as written and as served) and its hubs' secrets. */
import { validateId } from '../../../actors/rules/rule-validation.ts';
import { RULE_LIMITS } from '../../../actors/rules/rule-types.ts';
import { z } from '../api-schemas.ts';

/** `graceSeconds` of a hub secret rotation: 0 (the old secret stops at once) to 30 days. */
export const HUB_SECRET_GRACE_SECONDS = { min: 0, max: 2_592_000 } as const;

const LATITUDE = 'must be a number of degrees from -90 to 90';
const LONGITUDE = 'must be a number of degrees from -180 to 180';

/** Where a home is, in degrees: latitude −90..90, longitude −180..180 (for sun triggers). */
export const HomeLocationSchema = z
  .strictObject(
    {
      latitude: z
        .number({ error: LATITUDE })
        .min(-90, { error: LATITUDE })
        .max(90, { error: LATITUDE })
        .openapi({ example: 48.137, description: 'Degrees north.' }),
      longitude: z
        .number({ error: LONGITUDE })
        .min(-180, { error: LONGITUDE })
        .max(180, { error: LONGITUDE })
        .openapi({ example: 11.575, description: 'Degrees east.' }),
    },
    { error: (iss) => (iss.code === 'invalid_type' ? 'must be an object {latitude, longitude}' : undefined) },
  )
  .openapi('HomeLocation');

/**
 * `PUT /v1/homes/{homeId}`: the types of the fields and the location's shape and ranges; the home
 * checks the rest with its own messages (name length, a known time zone).
 */
export const HomeUpsertSchema = z
  .strictObject({
    name: z
      .string({ error: 'must be a non-empty string' })
      .openapi({ description: `Display name, 1 to ${RULE_LIMITS.maxNameLength} characters.`, example: 'Flat' }),
    timezone: z.string({ error: 'must be an IANA time zone name' }).optional().openapi({
      description: 'IANA time zone of schedule triggers and time conditions; kept when omitted (UTC for a new home).',
      example: 'Europe/Berlin',
    }),
    location: HomeLocationSchema.nullable()
      .optional()
      .openapi({
        description: 'Where the home is, for sun triggers: kept when omitted, removed by null (refused while a sun rule needs it).',
        example: { latitude: 48.137, longitude: 11.575 },
      }),
  })
  .openapi('HomeUpsert');

export const homeUpsertExample = { name: 'Flat', timezone: 'Europe/Berlin', location: { latitude: 48.137, longitude: 11.575 } };

const DeviceInBrief = z.object({
  deviceId: z.string(),
  type: z.string().openapi({ example: 'light' }),
  hubId: z.string().optional().openapi({ description: 'The hub that announced it.' }),
});

/** A home in brief, as `PUT` and `GET /v1/homes/{homeId}` serve it. */
export const HomeSchema = z
  .object({
    homeId: z.string(),
    name: z.string(),
    timezone: z.string(),
    location: HomeLocationSchema.optional(),
    devices: z.array(DeviceInBrief).readonly(),
    hubs: z.array(z.string()).readonly().openapi({ description: 'Ids of its hubs.' }),
    ruleCount: z.number().int(),
    sceneCount: z.number().int(),
  })
  .openapi('Home');

export const homeExample = {
  homeId: 'flat-1',
  name: 'Flat',
  timezone: 'Europe/Berlin',
  location: { latitude: 48.137, longitude: 11.575 },
  devices: [{ deviceId: 'light1', type: 'light', hubId: 'hub1' }],
  hubs: ['hub1'],
  ruleCount: 1,
  sceneCount: 0,
};

/**
 * A new hub's id: 1..64 letters, digits, `_` or `-`, checked (by the home's own rule and message)
 * before its secret is stored.
 */
const HubIdSchema = z
  .unknown()
  .transform((x, ctx) => {
    const id = validateId(x, 'hubId');
    if (id.ok) return id.value;
    ctx.addIssue({ code: 'custom', message: id.error.message.replace(/^hubId /, '') });
    return z.NEVER;
  })
  .openapi({ type: 'string', pattern: RULE_LIMITS.idPattern.source, example: 'hub1', description: 'The hub, unique in its home.' });

export const HubRegistrationSchema = z.strictObject({ hubId: HubIdSchema }).openapi('HubRegistration');

/** A hub secret, shown once (only its digest is kept). */
export const HubSecretSchema = z
  .object({
    hubId: z.string(),
    secret: z.string().openapi({ description: 'The hub authenticates with it (Bearer); shown once, never again.' }),
  })
  .openapi('HubSecret');

const GRACE = `must be an integer from ${HUB_SECRET_GRACE_SECONDS.min} to ${HUB_SECRET_GRACE_SECONDS.max}`;

/** The optional body of a rotation; an empty body is `{}` (no grace period). */
export const HubSecretRotationSchema = z
  .strictObject({
    graceSeconds: z
      .number({ error: GRACE })
      .int({ error: GRACE })
      .min(HUB_SECRET_GRACE_SECONDS.min, { error: GRACE })
      .max(HUB_SECRET_GRACE_SECONDS.max, { error: GRACE })
      .optional()
      .openapi({ description: 'Seconds the old secrets keep working; 0 (default): they stop at once.', example: 600 }),
  })
  .openapi('HubSecretRotation');

export const HubSecretRotatedSchema = z
  .object({
    hubId: z.string(),
    secret: z.string().openapi({ description: 'The new secret: it works at once on every node; shown once.' }),
    previousValidUntil: z.number().int().openapi({ description: 'Epoch ms until which the old secrets work.' }),
  })
  .openapi('HubSecretRotated');

export const hubSecretExample = { hubId: 'hub1', secret: 'hub_3q2-7wEeAKcLfB5Xz0aV1mN8pR4sT6uY9iO2kJ7hG5d' };
