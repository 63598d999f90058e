/** Device routes: the device list, shadows with ETag/If-Match, commands and their status. */
import { randomBytes } from 'node:crypto';
import { deviceActorId, homeActorId } from '../../actors/actor-id.ts';
import type { SetDesired } from '../../actors/device-state.ts';
import { DEVICE_PAGE } from '../../actors/home.ts';
import { DEFAULT_COMMAND_TTL_MS } from '../../actors/rules/rule-types.ts';
import { commandIdFor, deviceOfCommand } from '../../actors/types.ts';
import type { IssueCommand } from '../../actors/types.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { invalidArgument, notFound } from './http-error.ts';
import {
  etagOf,
  idempotencyKey,
  ifMatchVersion,
  noneMatchHits,
  onlyFields,
  PATH_ID_MAX,
  queryInt,
  readJsonObject,
  requestHeader,
} from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import type { EdgeApp } from './api-schemas.ts';

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

export function registerDeviceRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { ask, guard } = ctx;

  app.get('/v1/homes/:homeId/devices', guard('read'), async (c) => {
    const limit = queryInt(c, 'limit', 1, DEVICE_PAGE.max, DEVICE_PAGE.default);
    const cursor = c.req.query('cursor');
    const page = await ask(homeActorId(c.req.param('homeId')), {
      type: 'home.devices',
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return c.json({ items: page.items, nextCursor: page.nextCursor ?? null });
  });

  app.get('/v1/homes/:homeId/devices/:deviceId', guard('read'), async (c) => {
    const shadow = await ask(deviceActorId(c.req.param('homeId'), c.req.param('deviceId')), { type: 'shadow.get' });
    c.header('ETag', etagOf(shadow.version));
    if (noneMatchHits(requestHeader(c, 'if-none-match'), shadow.version)) return c.body(null, 304);
    return c.json(shadow);
  });

  app.patch('/v1/homes/:homeId/devices/:deviceId', guard('control'), async (c) => {
    const actorId = deviceActorId(c.req.param('homeId'), c.req.param('deviceId'));
    const ifVersion = ifMatchVersion(requestHeader(c, 'if-match'));
    const body = await readJsonObject(c);
    onlyFields(body, ['desired']);
    // The device checks the values; its errors name the fields of `desired`.
    const msg: SetDesired = {
      type: 'shadow.setDesired',
      desired: body.desired as SetDesired['desired'],
      ...(ifVersion === undefined ? {} : { ifVersion }),
    };
    const shadow = await ask(actorId, msg);
    c.header('ETag', etagOf(shadow.version));
    return c.json(shadow);
  });

  // The device actor records the command and, once that is durable, emits it for its hub
  // (`actors/device-commands.ts`, then `edge-api/hub-ingress/hub-command-delivery.ts`).
  app.post('/v1/homes/:homeId/devices/:deviceId/commands', guard('control'), async (c) => {
    const homeId = c.req.param('homeId');
    const deviceId = c.req.param('deviceId');
    const commandId = newCommandId(deviceId, idempotencyKey(c));
    addAuditTarget(c, { commandId });
    const body = await readJsonObject(c);
    onlyFields(body, ['name', 'params', 'ttlMs']);
    // Types and ranges are the device's to check; its errors name these same fields.
    const msg = {
      type: 'command.issue',
      commandId,
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

  app.get('/v1/homes/:homeId/commands/:commandId', guard('read'), async (c) => {
    const commandId = c.req.param('commandId');
    const deviceId = deviceOfCommand(commandId);
    if (deviceId === undefined || deviceId.length > PATH_ID_MAX) throw notFound(`no command ${commandId}`);
    const command = await ask(deviceActorId(c.req.param('homeId'), deviceId), { type: 'command.get', commandId });
    return c.json(command);
  });
}
