/** What route modules share: who is calling, the ports they use, and `ask`, which unwraps actor replies. */
import type { MiddlewareHandler } from 'hono';
import type { Outcome } from '../../actors/types.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Result } from '../../runtime/result.ts';
import type { AppTokenGrant, CredentialStore, Scope } from '../auth/credential-store.ts';
import { isErrorCode } from '../error-codes.ts';
import type { EventFeed } from '../events/event-feed.ts';
import { HttpError } from './http-error.ts';

/** Who is calling: the operator (admin token) or an app token with its grant. */
export type Principal =
  | { readonly kind: 'admin' }
  | { readonly kind: 'app'; readonly digest: string; readonly grant: AppTokenGrant };

/** What a route needs: the admin token, or an app token with this scope for the home in its path. */
export type Policy = 'admin' | Scope;

/** Handed to each `register…Routes`; routes reach actors only through `ask`. */
export interface RouteContext {
  readonly ask: Ask;
  /** Middleware a route must put first: authentication, path ids, access, rate limits. */
  readonly guard: (policy: Policy) => MiddlewareHandler;
  readonly credentials: CredentialStore;
  readonly feed: EventFeed;
  /** Epoch ms. */
  readonly clock: () => number;
  /** Milliseconds between SSE heartbeats. */
  readonly sseHeartbeatMs: number;
  readonly logger: Logger;
}

/** Sends `msg` to `actorId` and resolves with the domain value, or rejects with an HttpError. */
export type Ask = <T>(actorId: string, msg: unknown) => Promise<T>;

const isOutcome = (x: unknown): x is Outcome<unknown> =>
  typeof x === 'object' && x !== null && typeof (x as { ok?: unknown }).ok === 'boolean';

/**
 * The value of a reply, or an HttpError with the code of whichever layer failed: a runtime
 * failure (`overloaded` → 429, `timeout`/`unavailable` → 503, ...) or a domain one (`not_found`,
 * `version_conflict`, `invalid_argument` with `details.field`, ...). A reply that is not an
 * Outcome is a bug and is thrown as a plain Error (500, logged).
 */
export function unwrapReply<T>(result: Result<unknown>): T {
  if (!result.ok) {
    // A full mailbox drains in milliseconds: tell the client to come back soon.
    const headers = result.error.code === 'overloaded' ? { 'Retry-After': '1' } : undefined;
    throw new HttpError(result.error.code, result.error.message, undefined, headers);
  }
  const outcome = result.value;
  if (!isOutcome(outcome)) throw new Error(`actor reply is not an outcome: ${JSON.stringify(outcome)}`);
  if (outcome.ok) return outcome.value as T;
  const { code, message, field } = outcome.error;
  if (!isErrorCode(code)) throw new Error(`actor replied with an unknown error code ${String(code)}`);
  throw new HttpError(code, message, field === undefined ? undefined : { field });
}

/** An Ask over `router`; `timeoutMs` (milliseconds) is the deadline of every ask, default the host's. */
export function createAsk(router: ActorRouter, timeoutMs?: number): Ask {
  return async <T>(actorId: string, msg: unknown): Promise<T> => unwrapReply<T>(await router.ask(actorId, msg, timeoutMs));
}
