/** How the edges reach actors: by id, wherever the actor lives (this node's host, or its shard's owner). */
import type { Result } from '../runtime/result.ts';

/**
 * The edges (HTTP, hub ingress) talk to actors only through this seam. Without a cluster every
 * actor is local (node/local-actor-router.ts); with one, cluster-router.ts forwards to the node
 * that owns the actor's shard.
 */
export interface ActorRouter {
  /** Request/response; the reply is released once the step is durable. timeoutMs: milliseconds. */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs?: number): Promise<Result<R>>;
  /** Fire and forget, subject to the mailbox bound (`overloaded`). */
  tell(actorId: string, msg: unknown): Result<void>;
  /** Fire and forget for consequences of durable steps (no mailbox bound). */
  deliver(actorId: string, msg: unknown): Result<void>;
}
