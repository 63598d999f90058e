/** App token routes (admin): mint with an optional lifetime, list without secrets, revoke by id or by the token itself. */
import { createRoute } from '@hono/zod-openapi';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { hashSecret, newSecret, tokenIdOf } from '../auth/secrets.ts';
import { errorResponses, invalidExample, jsonRequest, jsonResponse, noContent, securityOf, z, type EdgeApp } from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
import { notFound, storeDown } from './http-error.ts';
import type { RouteContext } from './route-context.ts';
import {
  TOKEN_PAGE,
  TokenMintedSchema,
  TokenPageQuery,
  TokenPageSchema,
  TokenRequestSchema,
  TokenRevocationSchema,
  tokenIdParam,
  tokenMintedExample,
  tokenPageExample,
  tokenRequestExample,
} from './schemas/token-schemas.ts';

const tags = ['App tokens'];
const security = securityOf('admin');

/**
 * Revocation takes effect on this node at once (the token cache drops it and tells open event
 * streams), on other nodes within their token cache's TTL (500 ms by default; their open streams
 * within 1 s, see `TokenGrantCacheConfig.ttlMs`). Times are epoch ms.
 */
export function registerTokenRoutes(app: EdgeApp, ctx: RouteContext): void {
  const admin = ctx.guard('admin');

  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/tokens',
      tags,
      summary: 'Mint an app token for homes and scopes, optionally with a lifetime',
      security,
      middleware: [admin] as const,
      request: { body: jsonRequest(TokenRequestSchema, tokenRequestExample) },
      responses: {
        201: jsonResponse('Minted; the token is never shown again.', TokenMintedSchema, tokenMintedExample),
        ...errorResponses(invalidExample('scopes[1]', 'must be one of read, control, rules')),
      },
    }),
    async (c) => {
      const request = c.req.valid('json');
      // Duplicates dropped, order kept.
      const homes = [...new Set(request.homes)];
      const scopes = [...new Set(request.scopes)];
      const token = newSecret('app');
      const digest = hashSecret(token);
      const createdAt = ctx.clock();
      const expiresAt = request.ttlSeconds === undefined ? null : createdAt + request.ttlSeconds * 1000;
      const tokenId = tokenIdOf(digest);
      addAuditTarget(c, { tokenId, homes, scopes });
      await ctx.credentials.putToken(digest, { homes, scopes, createdAt, expiresAt }).catch(storeDown);
      return c.json({ token, tokenId, homes, scopes, expiresAt }, 201);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/tokens',
      tags,
      summary: 'List app tokens page by page (never their secrets)',
      security,
      middleware: [admin] as const,
      request: { query: TokenPageQuery },
      responses: {
        200: jsonResponse('A page of tokens in token id order.', TokenPageSchema, tokenPageExample),
        ...errorResponses(invalidExample('limit', `must be an integer from 1 to ${TOKEN_PAGE.max}`)),
      },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid('query');
      return c.json(await ctx.credentials.listTokens(limit, cursor).catch(storeDown), 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/tokens/{tokenId}',
      tags,
      summary: 'Revoke an app token by its id',
      security,
      middleware: [admin] as const,
      request: { params: z.object({ tokenId: tokenIdParam }) },
      responses: {
        204: noContent,
        ...errorResponses(invalidExample('tokenId', 'must be a token id: tok_ and 24 hex digits'), 'not_found'),
      },
    }),
    async (c) => {
      const { tokenId } = c.req.valid('param');
      const digest = await ctx.credentials.tokenDigest(tokenId).catch(storeDown);
      if (digest === undefined || !(await ctx.tokens.revoke(digest).catch(storeDown))) throw notFound(`no app token ${tokenId}`);
      return c.body(null, 204);
    },
  );

  // Kept for clients written before token ids: the operator names the token itself.
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/tokens/revoke',
      tags,
      summary: 'Revoke an app token by the token itself (before token ids)',
      security,
      middleware: [admin] as const,
      request: { body: jsonRequest(TokenRevocationSchema, { token: tokenMintedExample.token }) },
      responses: { 204: noContent, ...errorResponses(invalidExample('token', 'must be the app token to revoke'), 'not_found') },
    }),
    async (c) => {
      const digest = hashSecret(c.req.valid('json').token);
      // The token's public id (a digest prefix), never the token: which token the operator revoked.
      addAuditTarget(c, { tokenId: tokenIdOf(digest) });
      const revoked = await ctx.tokens.revoke(digest).catch(storeDown);
      if (!revoked) throw notFound('no such app token');
      return c.body(null, 204);
    },
  );
}
