/** The guard in front of every /v1 route: authentication, path ids, home and scope access, rate limits; and its re-check for long requests. */
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { bearerToken, safeEqual } from '../auth/secrets.ts';
import type { AppTokenGrant } from '../auth/credential-store.ts';
import type { TokenGrantCache } from '../auth/token-grant-cache.ts';
import { HttpError } from './http-error.ts';
import type { Admission, RequestLimiter } from './rate-limiter.ts';
import { checkPathIds, requestHeader } from './request-input.ts';
import type { Policy, Principal } from './route-context.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who passed the guard; set by it before the route's handler runs. */
    principal: Principal;
  }
}

export interface GuardDeps {
  /** App token grants, cached briefly (see its TTL for how soon a revocation elsewhere is seen). */
  readonly tokens: TokenGrantCache;
  readonly adminToken: string;
  readonly limiter: RequestLimiter;
  /** Epoch ms (rate limits). */
  readonly clock: () => number;
}

/** Why `grant` does not let an app token use `policy` on `homeId` (a 403 message), or undefined when it does. */
function refusalOf(grant: AppTokenGrant, homeId: string | undefined, policy: Policy): string | undefined {
  if (policy === 'admin') return 'this call needs the admin token';
  if (homeId !== undefined && !grant.homes.includes(homeId)) return `the token is not granted home ${homeId}`;
  if (!grant.scopes.includes(policy)) return `the token lacks the ${policy} scope`;
  return undefined;
}

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

const unauthenticated = (message: string): HttpError =>
  new HttpError('unauthenticated', message, undefined, { 'WWW-Authenticate': 'Bearer realm="iot"' });

/**
 * Builds `guard(policy)`. Everything it checks is local (the credential store, buckets), so it
 * runs before any actor is touched. Order: 401 (no or unknown token) → 429 (token's bucket) →
 * 400 (malformed path id) → 403 (home or scope not granted) → 429 (home's bucket).
 */
export function createGuard(deps: GuardDeps): (policy: Policy) => MiddlewareHandler {
  if (deps.adminToken.length === 0) throw new Error('the admin token must not be empty');

  async function authenticate(header: string | undefined): Promise<Principal> {
    const token = bearerToken(header);
    if (token === undefined) throw unauthenticated('missing bearer token: send Authorization: Bearer <token>');
    if (safeEqual(token, deps.adminToken)) return { kind: 'admin' };
    // A store that cannot answer (Redis down) is the server's trouble, not the caller's: 503, not 500.
    const resolved = await deps.tokens.resolve(token).catch(() => {
      throw new HttpError('unavailable', 'credentials cannot be checked right now');
    });
    if (resolved === undefined) throw unauthenticated('unknown bearer token');
    return { kind: 'app', digest: resolved.digest, grant: resolved.grant };
  }

  return (policy) =>
    createMiddleware(async (c, next) => {
      const principal = await authenticate(requestHeader(c, 'authorization'));
      // One clock read per request, shared by the buckets.
      const now = deps.clock();
      refuse(deps.limiter.takeToken(principal.kind === 'admin' ? 'admin' : principal.digest, now), 'token');
      const params = c.req.param() as Record<string, string>;
      checkPathIds(params);
      const homeId = params.homeId;
      if (principal.kind === 'app') {
        const refusal = refusalOf(principal.grant, homeId, policy);
        if (refusal !== undefined) throw new HttpError('forbidden', refusal);
      }
      if (homeId !== undefined) refuse(deps.limiter.takeHome(homeId, now), 'home');
      c.set('principal', principal);
      await next();
    });
}

/** Why a re-check refused a caller that had passed the guard: the HTTP code and message it would get now. */
export interface AccessLost {
  readonly code: 'unauthenticated' | 'forbidden';
  readonly message: string;
}

/**
 * The guard's access check again, for a request that outlives it (an SSE stream): undefined
 * while the caller that passed `guard(policy)` on `c` still may, else why not. Goes through the
 * same token cache, so it sees a revocation as soon as a new request would. The admin token is
 * not revocable: it always still may. Rejects when the store cannot answer.
 */
export async function recheckAccess(c: Context, tokens: TokenGrantCache, policy: Policy): Promise<AccessLost | undefined> {
  const principal = c.get('principal') as Principal | undefined;
  if (principal === undefined) throw new Error('recheckAccess needs a request that passed the guard');
  if (principal.kind === 'admin') return undefined;
  const token = bearerToken(requestHeader(c, 'authorization'));
  const resolved = token === undefined ? undefined : await tokens.resolve(token);
  if (resolved === undefined) return { code: 'unauthenticated', message: 'the bearer token was revoked' };
  const refusal = refusalOf(resolved.grant, c.req.param('homeId'), policy);
  return refusal === undefined ? undefined : { code: 'forbidden', message: refusal };
}
