/** The guard in front of every /v1 route: authentication, path ids, home and scope access, rate limits. */
import type { MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { bearerToken, safeEqual } from '../auth/secrets.ts';
import type { TokenGrantCache } from '../auth/token-grant-cache.ts';
import { HttpError } from './http-error.ts';
import type { Admission, RequestLimiter } from './rate-limiter.ts';
import { checkPathIds, requestHeader } from './request-input.ts';
import type { Policy, Principal } from './route-context.ts';

export interface GuardDeps {
  /** App token grants, cached briefly (see its TTL for how soon a revocation elsewhere is seen). */
  readonly tokens: TokenGrantCache;
  readonly adminToken: string;
  readonly limiter: RequestLimiter;
  /** Epoch ms. */
  readonly clock: () => number;
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

  /** `now`: epoch ms of the request. */
  async function authenticate(header: string | undefined, now: number): Promise<Principal> {
    const token = bearerToken(header);
    if (token === undefined) throw unauthenticated('missing bearer token: send Authorization: Bearer <token>');
    if (safeEqual(token, deps.adminToken)) return { kind: 'admin' };
    // A store that cannot answer (Redis down) is the server's trouble, not the caller's: 503, not 500.
    const resolved = await deps.tokens.resolve(token, now).catch(() => {
      throw new HttpError('unavailable', 'credentials cannot be checked right now');
    });
    if (resolved === undefined) throw unauthenticated('unknown bearer token');
    return { kind: 'app', digest: resolved.digest, grant: resolved.grant };
  }

  return (policy) =>
    createMiddleware(async (c, next) => {
      // One clock read per request, shared by the token cache and the buckets.
      const now = deps.clock();
      const principal = await authenticate(requestHeader(c, 'authorization'), now);
      refuse(deps.limiter.takeToken(principal.kind === 'admin' ? 'admin' : principal.digest, now), 'token');
      const params = c.req.param() as Record<string, string>;
      checkPathIds(params);
      const homeId = params.homeId;
      if (principal.kind === 'app') {
        if (policy === 'admin') throw new HttpError('forbidden', 'this call needs the admin token');
        if (homeId !== undefined && !principal.grant.homes.includes(homeId)) {
          throw new HttpError('forbidden', `the token is not granted home ${homeId}`);
        }
        if (!principal.grant.scopes.includes(policy)) throw new HttpError('forbidden', `the token lacks the ${policy} scope`);
      }
      if (homeId !== undefined) refuse(deps.limiter.takeHome(homeId, now), 'home');
      await next();
    });
}
