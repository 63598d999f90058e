/** Device routes: the device list, shadows with ETag/If-Match, commands and their status. */
import { randomBytes } from 'node:crypto';
import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { deviceActorId, homeActorId } from '../../actors/actor-id.ts';
import type { SetDesired } from '../../actors/device-state.ts';
import { DEVICE_PAGE } from '../../actors/home.ts';
import { DEFAULT_COMMAND_TTL_MS } from '../../actors/rules/rule-types.ts';
import { commandIdFor, deviceOfCommand } from '../../actors/types.ts';
import { VALUE_LIMITS } from '../../actors/validation.ts';
import type { IssueCommand } from '../../actors/types.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import {
  errorResponses,
  invalidExample,
  homeIdParam,
  jsonRequest,
  jsonResponse,
  pathId,
  queryInt,
  securityOf,
  z,
  type EdgeApp,
} from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
import { invalidArgument, notFound } from './http-error.ts';
import { etagOf, idempotencyKey, ifMatchVersion, noneMatchHits, PATH_ID_MAX, requestHeader } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import {
  CommandAcceptedSchema,
  commandAcceptedExample,
  CommandIssueSchema,
  commandIssueExample,
  CommandRecordSchema,
  commandRecordExample,
  DesiredPatchSchema,
  desiredPatchExample,
  DevicePageSchema,
  devicePageExample,
  ETAG_HEADER,
  IDEMPOTENCY_KEY,
  IF_MATCH,
  IF_NONE_MATCH,
  ShadowSchema,
  shadowExample,
} from './schemas/device-schemas.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** The id of the app command a `POST …/commands` issues, made before its body is read. */
    appCommandId: string;
  }
}

/** Longest command id a device accepts (its id limit). */
const COMMAND_ID_MAX = 128;

/** A command id for a new app command: the caller's idempotency key, else 16 random characters. */
function newCommandId(deviceId: string, key: string | undefined): string {
  const commandId = commandIdFor(deviceId, key ?? randomBytes(12).toString('base64url'));
  if (commandId.length > COMMAND_ID_MAX) {
    const field = key === undefined ? 'deviceId' : 'Idempotency-Key';
    throw invalidArgument(field, `is too long: device id, "~" and key must fit in ${COMMAND_ID_MAX} characters`);
  }
  return commandId;
}

/**
 * Names the command from the Idempotency-Key before the body is read (a bad key is the 400, as
 * it always was), and in the request's audit entry even when the body is then refused.
 */
const appCommandId: MiddlewareHandler = async (c, next) => {
  const commandId = newCommandId(c.req.param('deviceId') ?? '', idempotencyKey(c));
  c.set('appCommandId', commandId);
  addAuditTarget(c, { commandId });
  await next();
};

const tags = ['Devices'];
const deviceParams = z.object({ homeId: homeIdParam, deviceId: pathId('deviceId', 'light1', 'The device.') });

const listDevices = createRoute({
  method: 'get',
  path: '/v1/homes/{homeId}/devices',
  tags,
  summary: "A page of the home's devices, sorted by id",
  security: securityOf('read'),
  request: {
    params: z.object({ homeId: homeIdParam }),
    query: z.object({
      limit: queryInt(1, DEVICE_PAGE.max, DEVICE_PAGE.default, 'Devices per page.'),
      cursor: z
        .string()
        .optional()
        .openapi({ description: 'The `nextCursor` of the previous page; absent: from the start.', example: 'bW90aW9uMQ' }),
    }),
  },
  responses: {
    200: jsonResponse('The page; `nextCursor` is null on the last one.', DevicePageSchema, devicePageExample),
    ...errorResponses(invalidExample('limit', `must be an integer from 1 to ${DEVICE_PAGE.max}`), 'not_found'),
  },
});

// The hot path of the HTTP benchmark: its params validator reads the router's params, and
// If-None-Match is read from node's parsed headers (requestHeader): no WHATWG Headers is built.
const getShadow = createRoute({
  method: 'get',
  path: '/v1/homes/{homeId}/devices/{deviceId}',
  tags,
  summary: 'The device shadow (ETag; 304 to a matching If-None-Match)',
  security: securityOf('read'),
  request: { params: deviceParams },
  parameters: [IF_NONE_MATCH],
  responses: {
    200: { ...jsonResponse('The shadow; its ETag is its version.', ShadowSchema, shadowExample), headers: ETAG_HEADER },
    304: { description: 'Not modified: If-None-Match matches the current version. No body.', headers: ETAG_HEADER },
    ...errorResponses('not_found'),
  },
});

const patchShadow = createRoute({
  method: 'patch',
  path: '/v1/homes/{homeId}/devices/{deviceId}',
  tags,
  summary: 'Set desired values (merge; null removes), optionally only at a version (If-Match)',
  security: securityOf('control'),
  request: { params: deviceParams, body: jsonRequest(DesiredPatchSchema, desiredPatchExample) },
  parameters: [IF_MATCH],
  responses: {
    200: { ...jsonResponse('The shadow after the change, with its new ETag.', ShadowSchema, shadowExample), headers: ETAG_HEADER },
    ...errorResponses(invalidExample('desired.on', 'must be a number, boolean or string'), 'not_found', 'version_conflict'),
  },
});

const issueCommand = createRoute({
  method: 'post',
  path: '/v1/homes/{homeId}/devices/{deviceId}/commands',
  tags,
  summary: 'Run a command on the device (202; idempotent by Idempotency-Key)',
  security: securityOf('control'),
  request: { params: deviceParams, body: jsonRequest(CommandIssueSchema, commandIssueExample) },
  parameters: [IDEMPOTENCY_KEY],
  responses: {
    202: {
      ...jsonResponse(
        'Accepted: sent to the hub, or queued until it connects. Follow Location.',
        CommandAcceptedSchema,
        commandAcceptedExample,
      ),
      headers: {
        Location: {
          description: 'The command record: `/v1/homes/{homeId}/commands/{commandId}`.',
          schema: { type: 'string' },
          example: '/v1/homes/flat-1/commands/light1~tap-1',
        },
      },
    },
    ...errorResponses(
      invalidExample('name', `must be a string of 1-${VALUE_LIMITS.nameLength} characters`),
      'not_found',
      'idempotency_conflict',
      'failed_precondition',
      'resource_exhausted',
    ),
  },
});

const getCommand = createRoute({
  method: 'get',
  path: '/v1/homes/{homeId}/commands/{commandId}',
  tags,
  summary: "A command's record and status",
  security: securityOf('read'),
  request: {
    params: z.object({
      homeId: homeIdParam,
      commandId: z
        .string()
        .min(1)
        .openapi({ param: { name: 'commandId', in: 'path' }, example: 'light1~tap-1', description: 'As answered by POST …/commands.' }),
    }),
  },
  responses: {
    200: jsonResponse('The record.', CommandRecordSchema, commandRecordExample),
    ...errorResponses('not_found'),
  },
});

export function registerDeviceRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { ask, guard } = ctx;

  declareRoute(app, { ...listDevices, middleware: [guard('read')] as const }, async (c) => {
    const { homeId } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const page = await ask(homeActorId(homeId), { type: 'home.devices', limit, ...(cursor === undefined ? {} : { cursor }) });
    return c.json({ items: page.items, nextCursor: page.nextCursor ?? null }, 200);
  });

  declareRoute(app, { ...getShadow, middleware: [guard('read')] as const }, async (c) => {
    const { homeId, deviceId } = c.req.valid('param');
    const shadow = await ask(deviceActorId(homeId, deviceId), { type: 'shadow.get' });
    c.header('ETag', etagOf(shadow.version));
    if (noneMatchHits(requestHeader(c, 'if-none-match'), shadow.version)) return c.body(null, 304);
    return c.json(shadow, 200);
  });

  declareRoute(app, { ...patchShadow, middleware: [guard('control')] as const }, async (c) => {
    const { homeId, deviceId } = c.req.valid('param');
    const ifVersion = ifMatchVersion(requestHeader(c, 'if-match'));
    // The device checks the values; its errors name the fields of `desired`.
    const msg: SetDesired = {
      type: 'shadow.setDesired',
      desired: c.req.valid('json').desired,
      ...(ifVersion === undefined ? {} : { ifVersion }),
    };
    const shadow = await ask(deviceActorId(homeId, deviceId), msg);
    c.header('ETag', etagOf(shadow.version));
    return c.json(shadow, 200);
  });

  // The device actor records the command and, once that is durable, emits it for its hub
  // (`actors/device-commands.ts`, then `edge-api/hub-ingress/hub-command-delivery.ts`).
  declareRoute(app, { ...issueCommand, middleware: [guard('control'), appCommandId] as const }, async (c) => {
    const { homeId, deviceId } = c.req.valid('param');
    const body = c.req.valid('json');
    // Types and ranges are the device's to check; its errors name these same fields.
    const msg = {
      type: 'command.issue',
      commandId: c.get('appCommandId'),
      name: body.name,
      params: body.params ?? {},
      ttlMs: body.ttlMs ?? DEFAULT_COMMAND_TTL_MS,
      depth: 0,
      source: { kind: 'app' },
    } as IssueCommand;
    const command = await ask(deviceActorId(homeId, deviceId), msg);
    c.header('Location', `/v1/homes/${homeId}/commands/${encodeURIComponent(command.commandId)}`);
    return c.json({ commandId: command.commandId, status: command.status }, 202);
  });

  declareRoute(app, { ...getCommand, middleware: [guard('read')] as const }, async (c) => {
    const { homeId, commandId } = c.req.valid('param');
    const deviceId = deviceOfCommand(commandId);
    if (deviceId === undefined || deviceId.length > PATH_ID_MAX) throw notFound(`no command ${commandId}`);
    const command = await ask(deviceActorId(homeId, deviceId), { type: 'command.get', commandId });
    return c.json(command, 200);
  });
}
