/** Schemas of the app token routes: a token request, a minted token, a page of tokens, a revocation. */
import { HOME_ID } from '../../../actors/actor-id.ts';
import { SCOPES, TOKEN_ID } from '../../auth/credential-store.ts';
import { queryInt, z } from '../api-schemas.ts';

/** Homes one app token may be granted. */
export const MAX_TOKEN_HOMES = 1_000;
/** `ttlSeconds` of a token: 1 s to 365 days. */
export const TOKEN_TTL_SECONDS = { min: 1, max: 31_536_000 } as const;
/** Tokens per page of `GET /v1/tokens`: at most, and when the caller sets none. */
export const TOKEN_PAGE = { max: 200, default: 50 } as const;

const HOMES = `must be an array of 1 to ${MAX_TOKEN_HOMES} home ids`;
const SCOPE_LIST = `must be a non-empty array of ${SCOPES.join(', ')}`;
const TTL = `must be an integer from ${TOKEN_TTL_SECONDS.min} to ${TOKEN_TTL_SECONDS.max}`;

const ScopeSchema = z.enum(SCOPES, { error: `must be one of ${SCOPES.join(', ')}` });

/** `{homes, scopes, ttlSeconds?}`; the route drops duplicates (keeping the order). */
export const TokenRequestSchema = z
  .strictObject({
    homes: z
      .array(
        z.string({ error: 'must be a home id: 1 to 64 letters, digits, _ . or -' }).regex(HOME_ID, {
          error: 'must be a home id: 1 to 64 letters, digits, _ . or -',
        }),
        { error: HOMES },
      )
      .min(1, { error: HOMES })
      .max(MAX_TOKEN_HOMES, { error: HOMES })
      .openapi({ description: 'The homes the token may reach.', example: ['flat-1'] }),
    scopes: z
      .array(ScopeSchema, { error: SCOPE_LIST })
      .min(1, { error: SCOPE_LIST })
      .openapi({ description: 'What it may do there: read, control (devices, scenes), rules (automation, audit).' }),
    ttlSeconds: z
      .number({ error: TTL })
      .int({ error: TTL })
      .min(TOKEN_TTL_SECONDS.min, { error: TTL })
      .max(TOKEN_TTL_SECONDS.max, { error: TTL })
      .optional()
      .openapi({ description: 'Seconds it lives; omitted: until revoked.', example: 86_400 }),
  })
  .openapi('TokenRequest');

export const tokenRequestExample = { homes: ['flat-1'], scopes: ['read' as const, 'control' as const], ttlSeconds: 86_400 };

const exampleTokenId = 'tok_5f0c9a7e2b41d8c3a6e19f70';

const Scopes = z.array(z.enum(SCOPES)).readonly();
const ExpiresAt = z.number().int().nullable().openapi({ description: 'Epoch ms from which it answers token_expired; null: never.' });

/** A minted token: the secret is in this answer only. */
export const TokenMintedSchema = z
  .object({
    token: z.string().openapi({ description: 'The app token (Bearer); shown once, only its digest is stored.' }),
    tokenId: z.string().openapi({ description: 'Its public id: how it is listed, revoked and audited.' }),
    homes: z.array(z.string()).readonly(),
    scopes: Scopes,
    expiresAt: ExpiresAt,
  })
  .openapi('TokenMinted');

export const tokenMintedExample = {
  token: 'app_Qm9fX2V4YW1wbGVfdG9rZW5fbm90X2FfcmVhbF9vbmU',
  tokenId: exampleTokenId,
  homes: ['flat-1'],
  scopes: ['read' as const, 'control' as const],
  expiresAt: 1_769_947_200_000,
};

const TokenListing = z
  .object({
    tokenId: z.string(),
    homes: z.array(z.string()).readonly(),
    scopes: Scopes,
    createdAt: z.number().int().openapi({ description: 'Epoch ms.' }),
    expiresAt: ExpiresAt,
  })
  .openapi('TokenListing');

/** A page of tokens in token id order; never a secret or a digest. */
export const TokenPageSchema = z
  .object({
    items: z.array(TokenListing).readonly(),
    nextCursor: z.string().optional().openapi({ description: 'The cursor of the next page; absent on the last page.' }),
  })
  .openapi('TokenPage');

export const tokenPageExample = {
  items: [{ tokenId: exampleTokenId, homes: ['flat-1'], scopes: ['read' as const], createdAt: 1_769_860_800_000, expiresAt: null }],
};

const TokenId = z.string().regex(TOKEN_ID, { error: 'must be a token id: tok_ and 24 hex digits' });

/** The token id of a path. */
export const tokenIdParam = TokenId.openapi({
  param: { name: 'tokenId', in: 'path' },
  example: exampleTokenId,
  description: 'The token, by its public id.',
});

export const TokenPageQuery = z.object({
  limit: queryInt(1, TOKEN_PAGE.max, TOKEN_PAGE.default, 'Tokens per page.'),
  cursor: TokenId.optional().openapi({ description: 'The nextCursor of the previous page.', example: exampleTokenId }),
});

/** `POST /v1/tokens/revoke`: the token itself (for clients written before token ids). */
export const TokenRevocationSchema = z
  .strictObject({
    token: z
      .string({ error: 'must be the app token to revoke' })
      .min(1, { error: 'must be the app token to revoke' })
      .openapi({ example: 'app_Qm9fX2V4YW1wbGVfdG9rZW5fbm90X2FfcmVhbF9vbmU' }),
  })
  .openapi('TokenRevocation');
