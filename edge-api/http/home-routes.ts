/** Provisioning routes: create, read and delete homes; register, rotate and delete hubs (each secret shown once). */
import { createRoute } from '@hono/zod-openapi';
import { homeActorId } from '../../actors/actor-id.ts';
import { HUB_LIMITS, hubCredentialIdOf } from '../../actors/hub.ts';
import type { HubView } from '../../actors/home-messages.ts';
import { validateId } from '../../actors/rules/rule-validation.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { hashSecret, newSecret } from '../auth/secrets.ts';
import {
  errorResponses,
  invalidExample,
  homeIdParam,
  jsonRequest,
  jsonResponse,
  noContent,
  pathId,
  securityOf,
  z,
  type EdgeApp,
} from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
import { HttpError, storeDown } from './http-error.ts';
import type { RouteContext } from './route-context.ts';
import {
  HomeSchema,
  HomeUpsertSchema,
  HubRegistrationSchema,
  HubSecretRotatedSchema,
  HubSecretRotationSchema,
  HubSecretSchema,
  homeExample,
  homeUpsertExample,
  hubSecretExample,
} from './schemas/home-schemas.ts';

/** A runtime failure of an ask (timeout, unavailable, ...) leaves it unknown whether the actor took the message. */
const outcomeUnknown = (err: unknown): boolean => err instanceof HttpError && err.status >= 500;

const tags = ['Homes and hubs'];
const homeParams = z.object({ homeId: homeIdParam });
const hubParams = z.object({ homeId: homeIdParam, hubId: pathId('hubId', 'hub1', 'The hub.') });

/**
 * The credential store decides who may connect, the home actor what the home holds. Every route
 * that touches both orders its writes so that a failure half way leaves a state the same call can
 * repair when retried, and never a hub that is recorded but has no secret that works:
 * - register: secret stored first, then the hub recorded; a refusal by the home takes the secret
 *   back. Registering a hub that exists answers 409: rotate its secret instead.
 * - rotate: the new secret stored, then recorded by the home; only then do the old ones get their
 *   end (at once, or after `graceSeconds`).
 * - delete hub: its secrets removed, then the hub, then its secrets again (those of a rotation the
 *   home accepted meanwhile); a retry removes what is left, even once the home has forgotten it.
 * - delete home: secrets removed first, then the home, then the secrets of the hubs it answers; a
 *   retry finds the home still there and finishes.
 */
export function registerHomeRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { ask, guard } = ctx;
  const admin = guard('admin');

  /**
   * Runs `record` (the home's half of a new hub secret already stored). When the home refuses
   * (404, 409, 400) the secret must not outlive the call. When the outcome is unknown (a timeout)
   * the home may hold the secret: it stays, and is usable or retired by the next rotation.
   */
  async function withSecretTakenBack<T>(homeId: string, hubId: string, secretHash: string, record: () => Promise<T>): Promise<T> {
    try {
      return await record();
    } catch (err) {
      if (!outcomeUnknown(err)) await ctx.credentials.deleteHubSecret(homeId, hubId, secretHash).catch(() => undefined);
      throw err;
    }
  }

  declareRoute(
    app,
    createRoute({
      method: 'put',
      path: '/v1/homes/{homeId}',
      tags,
      summary: 'Create a home (201) or update it (200)',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: { params: homeParams, body: jsonRequest(HomeUpsertSchema, homeUpsertExample) },
      responses: {
        200: jsonResponse('Updated.', HomeSchema, homeExample),
        201: jsonResponse('Created.', HomeSchema, homeExample),
        ...errorResponses(invalidExample('name', 'must be a non-empty string'), 'overloaded', 'timeout'),
      },
    }),
    async (c) => {
      const { homeId } = c.req.valid('param');
      const body = c.req.valid('json');
      // location: {latitude, longitude} for sun triggers; kept when omitted, removed by null (the home checks it).
      const reply = await ask(homeActorId(homeId), {
        type: 'home.upsert',
        name: body.name,
        timezone: body.timezone,
        location: body.location,
      });
      return reply.created ? c.json(reply.home, 201) : c.json(reply.home, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}',
      tags,
      summary: 'A home with its devices and hubs in brief',
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: homeParams },
      responses: {
        200: jsonResponse('The home.', HomeSchema, homeExample),
        ...errorResponses('not_found', 'overloaded', 'timeout'),
      },
    }),
    async (c) => c.json(await ask(homeActorId(c.req.valid('param').homeId), { type: 'home.get' }), 200),
  );

  // Hub secrets go first, so no hub of the home can connect while (or after) the home is deleted;
  // a hub registered meanwhile is in the delete's answer and loses its secrets after it. Then the
  // home's deletion mark, so the app tokens granted it so far never reach a home created anew
  // under its id (nor keep an event stream of it). Both precede the home's own deletion: a failure
  // leaves the home in place, and a retry (which finds it) finishes. A home that does not exist
  // answers 404 before anything is written.
  declareRoute(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/homes/{homeId}',
      tags,
      summary: 'Delete a home: its hubs lose their secrets, the tokens granted it lose it',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: { params: homeParams },
      responses: { 204: noContent, ...errorResponses('not_found', 'overloaded', 'timeout') },
    }),
    async (c) => {
      const { homeId } = c.req.valid('param');
      const removeSecrets = (hubs: readonly HubView[]): Promise<unknown> =>
        Promise.all(hubs.map((h) => ctx.credentials.removeHub(homeId, h.hubId, h.secretHash === undefined ? [] : [h.secretHash]))).catch(
          storeDown,
        );
      await removeSecrets(await ask(homeActorId(homeId), { type: 'home.hubs' }));
      await ctx.tokens.markHomeDeleted(homeId, ctx.clock()).catch(storeDown);
      const deleted = await ask(homeActorId(homeId), { type: 'home.delete' });
      await removeSecrets(deleted.hubs);
      return c.body(null, 204);
    },
  );

  // The secret is returned once; only its digest is kept (in the home and the credential store).
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/hubs',
      tags,
      summary: 'Register a hub: its secret is in the answer, once',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: { params: homeParams, body: jsonRequest(HubRegistrationSchema, { hubId: 'hub1' }) },
      responses: {
        201: jsonResponse('Registered; the secret is never shown again.', HubSecretSchema, hubSecretExample),
        ...errorResponses(
          invalidExample('hubId', 'must be 1 to 64 letters, digits, _ or -'),
          'not_found',
          'already_exists',
          'overloaded',
          'timeout',
        ),
      },
    }),
    async (c) => {
      const { homeId } = c.req.valid('param');
      // Checked by the schema before the store is written (the home checks it again).
      const { hubId } = c.req.valid('json');
      addAuditTarget(c, { hubId });
      const secret = newSecret('hub');
      const secretHash = hashSecret(secret);
      await ctx.credentials.putHub(secretHash, { homeId, hubId }).catch(storeDown);
      const hub = await withSecretTakenBack(homeId, hubId, secretHash, () =>
        ask(homeActorId(homeId), { type: 'home.registerHub', hubId, secretHash }),
      );
      return c.json({ hubId: hub.hubId, secret }, 201);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/hubs/{hubId}/secret',
      tags,
      summary: "Rotate a hub's secret: the new one works at once, the old ones for graceSeconds",
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: {
        params: hubParams,
        body: {
          required: false,
          description: 'Optional: an empty body is `{}` (the old secrets stop at once).',
          content: { 'application/json': { schema: HubSecretRotationSchema, example: { graceSeconds: 600 } } },
        },
      },
      responses: {
        200: jsonResponse('Rotated; the new secret is never shown again.', HubSecretRotatedSchema, {
          ...hubSecretExample,
          previousValidUntil: 1_769_861_400_000,
        }),
        ...errorResponses(invalidExample('graceSeconds', 'must be an integer from 0 to 2592000'), 'not_found', 'overloaded', 'timeout'),
      },
    }),
    async (c) => {
      const { homeId, hubId } = c.req.valid('param');
      const graceSeconds = c.req.valid('json').graceSeconds ?? 0;
      const secret = newSecret('hub');
      const secretHash = hashSecret(secret);
      // Only the secrets the hub has before this rotation stores its own are retired, so a rotation
      // racing this one keeps its new secret too (both work until a later rotation), and the hub is
      // never left without a working one. If a step fails, the old secrets still work and a retry
      // completes the rotation (a new secret stored by a failed try is indexed under the hub, so the
      // retry retires it too).
      // The home's secret is read first: every secret the home records was stored (and indexed)
      // before, so one not among the digests read after it predates the store's index (legacy) and
      // is retired too, while a racing rotation's new secret, recorded later, is not.
      const recorded = (await ask(homeActorId(homeId), { type: 'home.hubs' })).find((h) => h.hubId === hubId)?.secretHash;
      const previous = await ctx.credentials.hubSecretDigests(homeId, hubId).catch(storeDown);
      const legacy = recorded === undefined || previous.includes(recorded) ? [] : [recorded];
      await ctx.credentials.putHub(secretHash, { homeId, hubId }).catch(storeDown);
      // Fixed before the home is told: the hub actor ends a stream on an old secret at this time.
      const previousValidUntil = ctx.clock() + graceSeconds * 1000;
      // The hub actor refuses exactly the secrets the store retires below: the new one may connect
      // before the hub actor hears of the rotation, and a racing rotation's new one at any time.
      // Past the limit (a hub rotated very often with a long grace period) the rest are stopped by
      // the store alone: refused at hello, but a stream open on one of them is not ended early.
      const retire = [...legacy, ...previous].slice(0, HUB_LIMITS.retiredPerRotation).map(hubCredentialIdOf);
      const rotated = await withSecretTakenBack(homeId, hubId, secretHash, () =>
        ask(homeActorId(homeId), { type: 'home.rotateHubSecret', hubId, secretHash, previousValidUntil, retire }),
      );
      // The home's previous secret too, should it have changed since it was read (the store leaves
      // it alone when it is indexed: a racing rotation's new secret).
      const also = [...new Set([...legacy, ...(rotated.previousSecretHash === undefined ? [] : [rotated.previousSecretHash])])];
      await ctx.credentials.retireHubSecrets(homeId, hubId, previous, previousValidUntil, also).catch(storeDown);
      return c.json({ hubId, secret, previousValidUntil }, 200);
    },
  );

  // The home actor is where a deletion and a racing rotation meet: once it has forgotten the hub it
  // refuses `home.rotateHubSecret`, and a refused rotation takes its new secret back. A rotation
  // it accepted before had stored and indexed its secret first, so the removal that follows the
  // home's finds it. The secrets known before are removed first (an unindexed one, older than the
  // store's index, is known only to the home), so the hub cannot connect while it is removed.
  // Retry-safe: a hub the home no longer has still loses the secrets indexed under it (a failure
  // after the home forgot it, or a rotation whose outcome was unknown), and 404 means neither.
  // A registration of the same id racing the delete may lose its secret to the last removal: the
  // hub is then recorded without a working one until its secret is rotated (never the reverse, a
  // secret that works for a hub no longer recorded).
  declareRoute(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/homes/{homeId}/hubs/{hubId}',
      tags,
      summary: 'Delete a hub: its secrets stop working and its open stream ends',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: { params: hubParams },
      responses: { 204: noContent, ...errorResponses('not_found', 'overloaded', 'timeout') },
    }),
    async (c) => {
      const { homeId, hubId } = c.req.valid('param');
      const notFound = (): HttpError => new HttpError('not_found', `hub ${hubId} not found in home ${homeId}`);
      const hub = (await ask(homeActorId(homeId), { type: 'home.hubs' }).catch(unlessNotFound(() => [] as HubView[]))).find(
        (h) => h.hubId === hubId,
      );
      if (hub === undefined) {
        if (!validateId(hubId, 'hubId').ok) throw notFound();
        const orphans = await ctx.credentials.hubSecretDigests(homeId, hubId).catch(storeDown);
        if (orphans.length === 0) throw notFound();
        await ctx.credentials.removeHub(homeId, hubId).catch(storeDown);
        return c.body(null, 204);
      }
      await ctx.credentials.removeHub(homeId, hubId, hub.secretHash === undefined ? [] : [hub.secretHash]).catch(storeDown);
      // The home tells the hub actor, which ends the hub's open stream with UNAUTHENTICATED. A
      // racing delete may have removed the hub first: the secrets below go all the same.
      const removed = await ask(homeActorId(homeId), { type: 'home.removeHub', hubId }).catch(unlessNotFound(() => undefined));
      const last = removed?.secretHash;
      await ctx.credentials.removeHub(homeId, hubId, last === undefined ? [] : [last]).catch(storeDown);
      return c.body(null, 204);
    },
  );
}

/** A catch handler: `fallback()` for a 404 (the home or hub is not there), the error otherwise. */
function unlessNotFound<T>(fallback: () => T): (err: unknown) => T {
  return (err) => {
    if (err instanceof HttpError && err.code === 'not_found') return fallback();
    throw err;
  };
}
