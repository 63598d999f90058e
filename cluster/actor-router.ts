/** How the edges reach actors: by id, wherever the actor lives (one node today; the ring later). */
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Result } from '../runtime/result.ts';

/**
 * The edges (HTTP, hub ingress) talk to actors only through this seam. With the cluster it
 * forwards to the node that owns the actor's shard; today every actor is local.
 */
export interface ActorRouter {
  /** Request/response; the reply is released once the step is durable. timeoutMs: milliseconds. */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs?: number): Promise<Result<R>>;
  /** Fire and forget, subject to the mailbox bound (`overloaded`). */
  tell(actorId: string, msg: unknown): Result<void>;
  /** Fire and forget for consequences of durable steps (no mailbox bound). */
  deliver(actorId: string, msg: unknown): Result<void>;
}

/** Every actor lives in this process's host. */
export class LocalActorRouter implements ActorRouter {
  constructor(private readonly host: ActorHost) {}

  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs?: number): Promise<Result<R>> {
    return this.host.ask<R>(actorId, msg, timeoutMs);
  }

  tell(actorId: string, msg: unknown): Result<void> {
    return this.host.tell(actorId, msg);
  }

  deliver(actorId: string, msg: unknown): Result<void> {
    return this.host.deliver(actorId, msg);
  }
}
