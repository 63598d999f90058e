/** Provisioning routes: create and read homes, register hubs (secret shown once), mint and revoke app tokens. */
import type { Hono } from 'hono';
import { HOME_ID, homeActorId } from '../../actors/actor-id.ts';
import { SCOPES, type Scope } from '../auth/credential-store.ts';
import { hashSecret, newSecret } from '../auth/secrets.ts';
import { HttpError, invalidArgument, notFound } from './http-error.ts';
import { onlyFields, readJsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';

/** Homes one app token may be granted. */
export const MAX_TOKEN_HOMES = 1_000;

/** Checks `{homes, scopes}` of a token request; duplicates are dropped, order is kept. */
export function parseTokenRequest(body: Record<string, unknown>): { homes: string[]; scopes: Scope[] } {
  onlyFields(body, ['homes', 'scopes']);
  const { homes, scopes } = body;
  if (!Array.isArray(homes) || homes.length === 0 || homes.length > MAX_TOKEN_HOMES) {
    throw invalidArgument('homes', `must be an array of 1 to ${MAX_TOKEN_HOMES} home ids`);
  }
  homes.forEach((h, i) => {
    if (typeof h !== 'string' || !HOME_ID.test(h))
      throw invalidArgument(`homes[${i}]`, 'must be a home id: 1 to 64 letters, digits, _ . or -');
  });
  if (!Array.isArray(scopes) || scopes.length === 0) throw invalidArgument('scopes', `must be a non-empty array of ${SCOPES.join(', ')}`);
  scopes.forEach((s, i) => {
    if (!SCOPES.includes(s as Scope)) throw invalidArgument(`scopes[${i}]`, `must be one of ${SCOPES.join(', ')}`);
  });
  return { homes: [...new Set(homes as string[])], scopes: [...new Set(scopes as Scope[])] };
}

/** A credential store that cannot write (Redis down) is the server's trouble: 503, not 500. */
const storeDown = (err: unknown): never => {
  throw new HttpError('unavailable', `credentials cannot be stored right now (${err instanceof Error ? err.name : 'error'})`);
};

export function registerHomeRoutes(app: Hono, ctx: RouteContext): void {
  const { ask, guard } = ctx;

  app.put('/v1/homes/:homeId', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const body = await readJsonObject(c);
    onlyFields(body, ['name', 'timezone']);
    const reply = await ask(homeActorId(homeId), { type: 'home.upsert', name: body.name, timezone: body.timezone });
    return c.json(reply.home, reply.created ? 201 : 200);
  });

  app.get('/v1/homes/:homeId', guard('read'), async (c) => {
    const home = await ask(homeActorId(c.req.param('homeId')), { type: 'home.get' });
    return c.json(home);
  });

  // The secret is returned once; only its digest is kept (in the home and the credential store).
  app.post('/v1/homes/:homeId/hubs', guard('admin'), async (c) => {
    const homeId = c.req.param('homeId');
    const body = await readJsonObject(c);
    onlyFields(body, ['hubId']);
    const secret = newSecret('hub');
    const secretHash = hashSecret(secret);
    const hub = await ask(homeActorId(homeId), { type: 'home.registerHub', hubId: body.hubId, secretHash });
    await ctx.credentials.putHub(secretHash, { homeId, hubId: hub.hubId }).catch(storeDown);
    return c.json({ hubId: hub.hubId, secret }, 201);
  });

  app.post('/v1/tokens', guard('admin'), async (c) => {
    const { homes, scopes } = parseTokenRequest(await readJsonObject(c));
    const token = newSecret('app');
    await ctx.credentials.putToken(hashSecret(token), { homes, scopes, createdAt: ctx.clock() }).catch(storeDown);
    return c.json({ token, homes, scopes }, 201);
  });

  // Tokens have no ids yet, so the operator names the token itself. Effective on this node at
  // once, on other nodes within their token cache's TTL (1 s by default).
  app.post('/v1/tokens/revoke', guard('admin'), async (c) => {
    const body = await readJsonObject(c);
    onlyFields(body, ['token']);
    if (typeof body.token !== 'string' || body.token === '') throw invalidArgument('token', 'must be the app token to revoke');
    const revoked = await ctx.tokens.revoke(hashSecret(body.token)).catch(storeDown);
    if (!revoked) throw notFound('no such app token');
    return c.body(null, 204);
  });
}
