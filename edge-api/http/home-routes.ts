/** Provisioning routes: create, read and delete homes; register, rotate and delete hubs (each secret shown once). */
import type { Context } from 'hono';
import { homeActorId } from '../../actors/actor-id.ts';
import { HUB_LIMITS, hubCredentialIdOf } from '../../actors/hub.ts';
import type { HubView } from '../../actors/home-messages.ts';
import { validateId } from '../../actors/rules/rule-validation.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { hashSecret, newSecret } from '../auth/secrets.ts';
import { HttpError, invalidArgument, storeDown } from './http-error.ts';
import { onlyFields, readBodyText, readJsonObject, type JsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import type { EdgeApp } from './api-schemas.ts';

/** `graceSeconds` of a hub secret rotation: 0 (the old secret stops at once) to 30 days. */
export const HUB_SECRET_GRACE_SECONDS = { min: 0, max: 2_592_000 } as const;

/** The JSON object body, or `{}` when the body is empty (the fields of these routes are optional). */
async function optionalJsonObject(c: Context): Promise<JsonObject> {
  return (await readBodyText(c)).trim() === '' ? {} : readJsonObject(c);
}

function parseGraceSeconds(body: JsonObject): number {
  onlyFields(body, ['graceSeconds']);
  const grace = body.graceSeconds ?? 0;
  if (
    typeof grace !== 'number' ||
    !Number.isInteger(grace) ||
    grace < HUB_SECRET_GRACE_SECONDS.min ||
    grace > HUB_SECRET_GRACE_SECONDS.max
  ) {
    throw invalidArgument('graceSeconds', `must be an integer from ${HUB_SECRET_GRACE_SECONDS.min} to ${HUB_SECRET_GRACE_SECONDS.max}`);
  }
  return grace;
}

/** A runtime failure of an ask (timeout, unavailable, ...) leaves it unknown whether the actor took the message. */
const outcomeUnknown = (err: unknown): boolean => err instanceof HttpError && err.status >= 500;

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

  app.put('/v1/homes/:homeId', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const body = await readJsonObject(c);
    onlyFields(body, ['name', 'timezone', 'location']);
    // location: {latitude, longitude} for sun triggers; kept when omitted, removed by null (the home checks it).
    const reply = await ask(homeActorId(homeId), {
      type: 'home.upsert',
      name: body.name,
      timezone: body.timezone,
      location: body.location,
    });
    return c.json(reply.home, reply.created ? 201 : 200);
  });

  app.get('/v1/homes/:homeId', guard('read'), async (c) => {
    const home = await ask(homeActorId(c.req.param('homeId')), { type: 'home.get' });
    return c.json(home);
  });

  // Hub secrets go first, so no hub of the home can connect while (or after) the home is deleted;
  // a hub registered meanwhile is in the delete's answer and loses its secrets after it. Then the
  // home's deletion mark, so the app tokens granted it so far never reach a home created anew
  // under its id (nor keep an event stream of it). Both precede the home's own deletion: a failure
  // leaves the home in place, and a retry (which finds it) finishes. A home that does not exist
  // answers 404 before anything is written.
  app.delete('/v1/homes/:homeId', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const removeSecrets = (hubs: readonly HubView[]): Promise<unknown> =>
      Promise.all(hubs.map((h) => ctx.credentials.removeHub(homeId, h.hubId, h.secretHash === undefined ? [] : [h.secretHash]))).catch(
        storeDown,
      );
    await removeSecrets(await ask(homeActorId(homeId), { type: 'home.hubs' }));
    await ctx.tokens.markHomeDeleted(homeId, ctx.clock()).catch(storeDown);
    const deleted = await ask(homeActorId(homeId), { type: 'home.delete' });
    await removeSecrets(deleted.hubs);
    return c.body(null, 204);
  });

  // The secret is returned once; only its digest is kept (in the home and the credential store).
  app.post('/v1/homes/:homeId/hubs', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const body = await readJsonObject(c);
    onlyFields(body, ['hubId']);
    // Checked before the store is written (the home checks it again).
    const id = validateId(body.hubId, 'hubId');
    if (!id.ok) throw new HttpError('invalid_argument', id.error.message, { field: 'hubId' });
    const hubId = id.value;
    addAuditTarget(c, { hubId });
    const secret = newSecret('hub');
    const secretHash = hashSecret(secret);
    await ctx.credentials.putHub(secretHash, { homeId, hubId }).catch(storeDown);
    const hub = await withSecretTakenBack(homeId, hubId, secretHash, () =>
      ask(homeActorId(homeId), { type: 'home.registerHub', hubId, secretHash }),
    );
    return c.json({ hubId: hub.hubId, secret }, 201);
  });

  app.post('/v1/homes/:homeId/hubs/:hubId/secret', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const hubId = c.req.param('hubId');
    const graceSeconds = parseGraceSeconds(await optionalJsonObject(c));
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
    return c.json({ hubId, secret, previousValidUntil });
  });

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
  app.delete('/v1/homes/:homeId/hubs/:hubId', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const hubId = c.req.param('hubId');
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
  });
}

/** A catch handler: `fallback()` for a 404 (the home or hub is not there), the error otherwise. */
function unlessNotFound<T>(fallback: () => T): (err: unknown) => T {
  return (err) => {
    if (err instanceof HttpError && err.code === 'not_found') return fallback();
    throw err;
  };
}
