/** The guard in front of every /v1 route: authentication, path ids, home and scope access, rate limits; and its re-check for long requests. */
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { bearerToken, hashSecret, safeEqual } from '../auth/secrets.ts';
import { grantExpired } from '../auth/credential-store.ts';
import type { ResolvedToken, TokenGrantCache } from '../auth/token-grant-cache.ts';
import { HttpError } from './http-error.ts';
import type { Admission, RateLimits } from './rate-limiter.ts';
import { checkPathIds, requestHeader } from './request-input.ts';
import type { Policy, Principal } from './route-context.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who passed the guard; set by it before the route's handler runs. */
    principal: Principal;
    /**
     * Who the guard authenticated, set before it checks rate, path ids and access: also on a
     * request it then refuses (the audit log names the token behind a 403).
     */
    caller: Principal;
  }
}

export interface GuardDeps {
  /** App token grants, cached briefly (see its TTL for how soon a revocation elsewhere is seen). */
  readonly tokens: TokenGrantCache;
  readonly adminToken: string;
  /** This node's buckets, or the cluster's (shared-rate-limiter.ts): may answer later when it asks Redis for tokens. */
  readonly limiter: RateLimits;
  /** Epoch ms (rate limits, token expiry). */
  readonly clock: () => number;
}

/** Why an app token does not authenticate: the 401 code and message it gets. */
export interface TokenRefusal {
  readonly code: 'unauthenticated' | 'token_expired' | 'token_revoked';
  readonly message: string;
}

const EXPIRED: TokenRefusal = { code: 'token_expired', message: 'the bearer token has expired' };
/** A token revoked: what the guard answers and what ends its open streams. */
export const TOKEN_REVOKED: TokenRefusal = { code: 'token_revoked', message: 'the bearer token was revoked' };
const UNKNOWN: TokenRefusal = { code: 'unauthenticated', message: 'unknown bearer token' };

/**
 * An app token's standing at `now` (epoch ms): its grant, or why it has none. An expired grant is
 * refused on every request (the cache may still hold it; expiry needs no store read). Only a
 * token the store does not know costs a second read, for its revocation tombstone; the cache
 * remembers both answers for `missTtlMs`, so a flood of unknown tokens (refused before any rate
 * limit: a bucket needs a known token) does not become a flood of store reads.
 */
async function standing(tokens: TokenGrantCache, token: string, now: number): Promise<ResolvedToken | TokenRefusal> {
  const resolved = await tokens.resolve(token);
  if (resolved !== undefined) return grantExpired(resolved.grant, now) ? EXPIRED : resolved;
  return (await tokens.revocation(hashSecret(token))) === undefined ? UNKNOWN : TOKEN_REVOKED;
}

/**
 * Why the app token `resolved` may not use `policy` on `homeId` (a 403 message), or undefined when
 * it may. A home deleted since the token was granted is no longer covered by it (the deletion
 * mark, read through the token cache: no store read per request). Rejects when the store cannot
 * answer.
 */
async function refusalOf(
  tokens: TokenGrantCache,
  resolved: ResolvedToken,
  homeId: string | undefined,
  policy: Policy,
): Promise<string | undefined> {
  const { grant } = resolved;
  if (policy === 'admin') return 'this call needs the admin token';
  if (homeId !== undefined && !grant.homes.includes(homeId)) return `the token is not granted home ${homeId}`;
  if (!grant.scopes.includes(policy)) return `the token lacks the ${policy} scope`;
  if (homeId !== undefined && !(await tokens.coversHome(resolved, homeId))) {
    return `home ${homeId} was deleted after the token was granted: mint a new token for it`;
  }
  return undefined;
}

const storeUnavailable = (): never => {
  throw new HttpError('unavailable', 'credentials cannot be checked right now');
};

function refuse(admission: Admission, what: string): void {
  if (admission.ok) return;
  const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
  throw new HttpError(
    'rate_limited',
    `too many requests for this ${what}: retry in ${seconds} s`,
    { retryAfterSeconds: seconds },
    {
      'Retry-After': String(seconds),
    },
  );
}

const unauthenticated = (message: string, code: TokenRefusal['code'] = 'unauthenticated'): HttpError =>
  new HttpError(code, message, undefined, { 'WWW-Authenticate': 'Bearer realm="iot"' });

/**
 * Builds `guard(policy)`. Everything it checks is local (the credential store, buckets) or in
 * Redis (a shared bucket's next grant of tokens), so it runs before any actor is touched; a
 * limiter's answer that is ready (most are) is used without an await. Order: 401 (no or unknown token: `unauthenticated`; expired:
 * `token_expired`; revoked: `token_revoked`) → 429 (token's bucket) →
 * 400 (malformed path id) → 403 (home or scope not granted, or the home deleted since the token
 * was granted) → 429 (home's bucket).
 */
export function createGuard(deps: GuardDeps): (policy: Policy) => MiddlewareHandler {
  if (deps.adminToken.length === 0) throw new Error('the admin token must not be empty');

  /** Who sent the request, and for an app token what the cache resolved it to (for its home checks). */
  async function authenticate(header: string | undefined, now: number): Promise<{ principal: Principal; resolved?: ResolvedToken }> {
    const token = bearerToken(header);
    if (token === undefined) throw unauthenticated('missing bearer token: send Authorization: Bearer <token>');
    if (safeEqual(token, deps.adminToken)) return { principal: { kind: 'admin' } };
    // A store that cannot answer (Redis down) is the server's trouble, not the caller's: 503, not 500.
    const found = await standing(deps.tokens, token, now).catch(storeUnavailable);
    if ('code' in found) throw unauthenticated(found.message, found.code);
    return { principal: { kind: 'app', digest: found.digest, grant: found.grant }, resolved: found };
  }

  return (policy) => {
    const guard = createMiddleware(async (c, next) => {
      // One clock read per request, shared by token expiry and the buckets.
      const now = deps.clock();
      const { principal, resolved } = await authenticate(requestHeader(c, 'authorization'), now);
      c.set('caller', principal);
      // The admin token's bucket is this node's own (see RateLimits.takeAdmin); an app token's may be the cluster's.
      const byToken = principal.kind === 'admin' ? deps.limiter.takeAdmin(now) : deps.limiter.takeToken(principal.digest, now);
      refuse(byToken instanceof Promise ? await byToken : byToken, 'token');
      const params = c.req.param() as Record<string, string>;
      checkPathIds(params);
      const homeId = params.homeId;
      if (resolved !== undefined) {
        const refusal = await refusalOf(deps.tokens, resolved, homeId, policy).catch(storeUnavailable);
        if (refusal !== undefined) throw new HttpError('forbidden', refusal);
      }
      if (homeId !== undefined) {
        const byHome = deps.limiter.takeHome(homeId, now);
        refuse(byHome instanceof Promise ? await byHome : byHome, 'home');
      }
      c.set('principal', principal);
      await next();
    });
    GUARDS.set(guard, policy);
    return guard;
  };
}

/** Every middleware createGuard built: a /v1 route must put one first (declare-route.ts checks it at registration). */
const GUARDS = new WeakMap<MiddlewareHandler, Policy>();

/** Whether `handler` is a guard built by createGuard. */
export const isGuard = (handler: unknown): boolean => policyOfGuard(handler) !== undefined;

/** The policy a guard built by createGuard enforces, or undefined for any other handler. */
export const policyOfGuard = (handler: unknown): Policy | undefined =>
  typeof handler === 'function' ? GUARDS.get(handler as MiddlewareHandler) : undefined;

/** Why a re-check refused a caller that had passed the guard: the HTTP code and message it would get now. */
export interface AccessLost {
  readonly code: TokenRefusal['code'] | 'forbidden';
  readonly message: string;
}

/**
 * The guard's access check again, for a request that outlives it (an SSE stream): undefined
 * while the caller that passed `guard(policy)` on `c` still may, else why not. Goes through the
 * same token cache, so it sees a revocation as soon as a new request would, and an expiry at
 * `now` (epoch ms) with the code a new request would get. The admin token is not revocable: it
 * always still may. Rejects when the store cannot answer.
 */
export async function recheckAccess(c: Context, tokens: TokenGrantCache, policy: Policy, now: number): Promise<AccessLost | undefined> {
  const principal = c.get('principal') as Principal | undefined;
  if (principal === undefined) throw new Error('recheckAccess needs a request that passed the guard');
  if (principal.kind === 'admin') return undefined;
  const token = bearerToken(requestHeader(c, 'authorization'));
  if (token === undefined) return UNKNOWN;
  const found = await standing(tokens, token, now);
  if ('code' in found) return found;
  const refusal = await refusalOf(tokens, found, c.req.param('homeId'), policy);
  return refusal === undefined ? undefined : { code: 'forbidden', message: refusal };
}
