/** The router of a node without a cluster: every actor lives in this process's host. */
import type { ActorRouter } from '../cluster/actor-router.ts';
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Result } from '../runtime/result.ts';

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
