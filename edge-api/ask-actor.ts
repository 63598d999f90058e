/** The one way the edges ask an actor: the reply type follows from the message, and the result is flat. */
import type { ActorId, DeviceActorId, HomeActorId, HubActorId } from '../actors/actor-id.ts';
import type { DeviceMsg, DeviceReplies } from '../actors/device-state.ts';
import type { HomeMsg, HomeReplies } from '../actors/home-messages.ts';
import type { HubMsg, HubReplies } from '../actors/hub.ts';
import type { DomainError, Outcome } from '../actors/types.ts';
import type { ActorRouter } from '../cluster/actor-router.ts';
import type { Result, RuntimeError, RuntimeErrorCode } from '../runtime/result.ts';

/** Why an ask failed: the runtime could not get a reply (`timeout`, `overloaded`, ...) or the actor refused (`not_found`, ...). */
export type AskError = RuntimeError | DomainError;

/** The messages and reply map of the actor an id names. */
type Protocol<Id extends ActorId> = Id extends HomeActorId
  ? { readonly msg: HomeMsg; readonly replies: HomeReplies }
  : Id extends DeviceActorId
    ? { readonly msg: DeviceMsg; readonly replies: DeviceReplies }
    : Id extends HubActorId
      ? { readonly msg: HubMsg; readonly replies: HubReplies }
      : never;

/** A message the actor `Id` takes. */
export type MsgFor<Id extends ActorId> = Protocol<Id>['msg'];

/** The reply value of message `M` to actor `Id`. */
export type ReplyOf<Id extends ActorId, M extends MsgFor<Id>> = Protocol<Id>['replies'][M['type'] & keyof Protocol<Id>['replies']];

const RUNTIME_CODES: Readonly<Record<RuntimeErrorCode, true>> = {
  overloaded: true,
  timeout: true,
  unavailable: true,
  actor_crashed: true,
  payload_too_large: true,
  stopping: true,
};

/** True when the runtime failed (no reply came), false when the actor replied with a domain error. */
export const isRuntimeError = (error: AskError): error is RuntimeError => Object.hasOwn(RUNTIME_CODES, error.code);

const isOutcome = (x: unknown): x is Outcome<unknown> =>
  typeof x === 'object' && x !== null && typeof (x as { ok?: unknown }).ok === 'boolean';

/**
 * Asks `actorId` and resolves with the reply value or the error of whichever layer failed: the
 * runtime's (no reply) or the domain's (the actor said no); `isRuntimeError` tells which. Every
 * expected failure is a value (the router resolves them as values too): it rejects only on a bug,
 * a reply that is not an Outcome.
 * timeoutMs: milliseconds until `timeout`; default the actor host's.
 */
export async function askActor<Id extends ActorId, M extends MsgFor<Id>>(
  router: Pick<ActorRouter, 'ask'>,
  actorId: Id,
  msg: M,
  timeoutMs?: number,
): Promise<Result<ReplyOf<Id, M>, AskError>> {
  const r = await router.ask(actorId, msg, timeoutMs);
  if (!r.ok) return r;
  if (!isOutcome(r.value)) throw new Error(`the reply of ${actorId} to ${msg.type} is not an outcome: ${JSON.stringify(r.value)}`);
  return r.value as Outcome<ReplyOf<Id, M>>;
}
