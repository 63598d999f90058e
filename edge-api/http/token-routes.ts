/** App token routes (admin): mint with an optional lifetime, list without secrets, revoke by id or by the token itself. */
import { HOME_ID } from '../../actors/actor-id.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { SCOPES, TOKEN_ID, type Scope } from '../auth/credential-store.ts';
import { hashSecret, newSecret, tokenIdOf } from '../auth/secrets.ts';
import { invalidArgument, notFound, storeDown } from './http-error.ts';
import { onlyFields, queryInt, readJsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import type { EdgeApp } from './api-schemas.ts';

/** Homes one app token may be granted. */
export const MAX_TOKEN_HOMES = 1_000;
/** `ttlSeconds` of a token: 1 s to 365 days. */
export const TOKEN_TTL_SECONDS = { min: 1, max: 31_536_000 } as const;
/** Tokens per page of `GET /v1/tokens`: at most, and when the caller sets none. */
export const TOKEN_PAGE = { max: 200, default: 50 } as const;

export interface TokenRequest {
  readonly homes: string[];
  readonly scopes: Scope[];
  /** Seconds the token lives; undefined: until revoked. */
  readonly ttlSeconds: number | undefined;
}

/** Checks `{homes, scopes, ttlSeconds?}` of a token request; duplicates are dropped, order is kept. */
export function parseTokenRequest(body: Record<string, unknown>): TokenRequest {
  onlyFields(body, ['homes', 'scopes', 'ttlSeconds']);
  const { homes, scopes, ttlSeconds } = body;
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
  if (
    ttlSeconds !== undefined &&
    (typeof ttlSeconds !== 'number' ||
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds < TOKEN_TTL_SECONDS.min ||
      ttlSeconds > TOKEN_TTL_SECONDS.max)
  ) {
    throw invalidArgument('ttlSeconds', `must be an integer from ${TOKEN_TTL_SECONDS.min} to ${TOKEN_TTL_SECONDS.max}`);
  }
  return { homes: [...new Set(homes as string[])], scopes: [...new Set(scopes as Scope[])], ttlSeconds };
}

/** A path or query token id, or a 400 naming `field`. */
function tokenIdParam(value: string | undefined, field: string): string {
  if (value === undefined || !TOKEN_ID.test(value)) throw invalidArgument(field, 'must be a token id: tok_ and 24 hex digits');
  return value;
}

/**
 * Revocation takes effect on this node at once (the token cache drops it and tells open event
 * streams), on other nodes within their token cache's TTL (500 ms by default; their open streams
 * within 1 s, see `TokenGrantCacheConfig.ttlMs`). Times are epoch ms.
 */
export function registerTokenRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { guard } = ctx;

  app.post('/v1/tokens', guard('admin'), async (c) => {
    const { homes, scopes, ttlSeconds } = parseTokenRequest(await readJsonObject(c));
    const token = newSecret('app');
    const digest = hashSecret(token);
    const createdAt = ctx.clock();
    const expiresAt = ttlSeconds === undefined ? null : createdAt + ttlSeconds * 1000;
    const tokenId = tokenIdOf(digest);
    addAuditTarget(c, { tokenId, homes, scopes });
    await ctx.credentials.putToken(digest, { homes, scopes, createdAt, expiresAt }).catch(storeDown);
    return c.json({ token, tokenId, homes, scopes, expiresAt }, 201);
  });

  app.get('/v1/tokens', guard('admin'), async (c) => {
    const limit = queryInt(c, 'limit', 1, TOKEN_PAGE.max, TOKEN_PAGE.default);
    const cursor = c.req.query('cursor');
    const after = cursor === undefined ? undefined : tokenIdParam(cursor, 'cursor');
    return c.json(await ctx.credentials.listTokens(limit, after).catch(storeDown));
  });

  app.delete('/v1/tokens/:tokenId', guard('admin'), async (c) => {
    const tokenId = tokenIdParam(c.req.param('tokenId'), 'tokenId');
    const digest = await ctx.credentials.tokenDigest(tokenId).catch(storeDown);
    if (digest === undefined || !(await ctx.tokens.revoke(digest).catch(storeDown))) throw notFound(`no app token ${tokenId}`);
    return c.body(null, 204);
  });

  // Kept for clients written before token ids: the operator names the token itself.
  app.post('/v1/tokens/revoke', guard('admin'), async (c) => {
    const body = await readJsonObject(c);
    onlyFields(body, ['token']);
    if (typeof body.token !== 'string' || body.token === '') throw invalidArgument('token', 'must be the app token to revoke');
    const digest = hashSecret(body.token);
    // The token's public id (a digest prefix), never the token: which token the operator revoked.
    addAuditTarget(c, { tokenId: tokenIdOf(digest) });
    const revoked = await ctx.tokens.revoke(digest).catch(storeDown);
    if (!revoked) throw notFound('no such app token');
    return c.body(null, 204);
  });
}
