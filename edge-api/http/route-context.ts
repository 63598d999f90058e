/** What route modules share: who is calling, the ports they use, and `ask`, which turns a failed actor ask into an HttpError. */
import type { MiddlewareHandler } from 'hono';
import type { ActorId } from '../../actors/actor-id.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { askActor, type AskError, type MsgFor, type ReplyOf } from '../ask-actor.ts';
import type { AppTokenGrant, CredentialStore, Scope } from '../auth/credential-store.ts';
import { tokenIdOf } from '../auth/secrets.ts';
import type { TokenGrantCache } from '../auth/token-grant-cache.ts';
import { isErrorCode } from '../error-codes.ts';
import type { HomeEventFeed } from '../events/home-event-feed.ts';
import { HttpError } from './http-error.ts';

/** Who is calling: the operator (admin token) or an app token with its grant. */
export type Principal = { readonly kind: 'admin' } | { readonly kind: 'app'; readonly digest: string; readonly grant: AppTokenGrant };

/** Who did it, as the audit log and logs name them: `admin`, or the app token's public id. */
export const principalId = (p: Principal): string => (p.kind === 'admin' ? 'admin' : tokenIdOf(p.digest));

/** What a route needs: the admin token, or an app token with this scope for the home in its path. */
export type Policy = 'admin' | Scope;

/** Handed to each `register…Routes`; routes reach actors only through `ask`. */
export interface RouteContext {
  readonly ask: Ask;
  /** Middleware a route must put first: authentication, path ids, access, rate limits. */
  readonly guard: (policy: Policy) => MiddlewareHandler;
  readonly credentials: CredentialStore;
  /** The guard's token grants; revoke through it so this node stops honouring a token at once. */
  readonly tokens: TokenGrantCache;
  /** Where the event stream reads homes' events (the memory feed, or the Redis-backed one on any node). */
  readonly feed: HomeEventFeed;
  /** Epoch ms. */
  readonly clock: () => number;
  /** Milliseconds between SSE heartbeats. */
  readonly sseHeartbeatMs: number;
  readonly logger: Logger;
}

/** Asks an actor: resolves with the reply value (typed by the message), or rejects with an HttpError. */
export type Ask = <Id extends ActorId, M extends MsgFor<Id>>(actorId: Id, msg: M) => Promise<ReplyOf<Id, M>>;

/**
 * The HttpError of a failed ask, with the code of whichever layer failed: a runtime failure
 * (`overloaded` → 429, `timeout`/`unavailable` → 503, ...) or a domain one (`not_found`,
 * `version_conflict`, `invalid_argument` with `details.field`, ...). An unknown code is a bug and
 * is thrown as a plain Error (500, logged).
 */
export function httpErrorOf(error: AskError): HttpError {
  // A full mailbox drains in milliseconds: tell the client to come back soon.
  if (error.code === 'overloaded') return new HttpError(error.code, error.message, undefined, { 'Retry-After': '1' });
  if (!isErrorCode(error.code)) throw new Error(`actor replied with an unknown error code ${String(error.code)}`);
  const field = 'field' in error ? error.field : undefined;
  if (field === undefined) return new HttpError(error.code, error.message);
  // Domain messages read `<field> <reason>`: the list entry keeps the reason, as a schema's does.
  const reason = error.message.startsWith(`${field} `) ? error.message.slice(field.length + 1) : error.message;
  return new HttpError(error.code, error.message, { field, fields: [{ field, message: reason }] });
}

/** An Ask over `router`; `timeoutMs` (milliseconds) is the deadline of every ask, default the host's. */
export function createAsk(router: ActorRouter, timeoutMs?: number): Ask {
  return async (actorId, msg) => {
    const r = await askActor(router, actorId, msg, timeoutMs);
    if (!r.ok) throw httpErrorOf(r.error);
    return r.value;
  };
}
