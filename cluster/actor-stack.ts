/** The actor side of a node: host with every behaviour, effect dispatch and the router the edges use. */
import type { Registry } from 'prom-client';
import { deviceBehavior } from '../actors/device.ts';
import { homeBehavior } from '../actors/home.ts';
import { hubBehavior } from '../actors/hub.ts';
import type { CommandDelivery } from '../actors/types.ts';
import { ActorHost, type ActorHostConfig } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import type { PersistencePort } from '../runtime/persistence-port.ts';
import { LocalActorRouter, type ActorRouter } from './actor-router.ts';
import { createEffectDispatcher } from './effect-dispatcher.ts';

export interface ActorStackDeps {
  readonly store: PersistencePort;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Where commands for hubs go (the hub ingress); returns false when the hub has no stream here. */
  readonly sendToHub: (homeId: string, hubId: string, command: CommandDelivery) => boolean;
  /** Where app events go (the event feed). */
  readonly publish: (homeId: string, topic: string, data: unknown) => void;
  readonly clock?: () => number;
  /** The router over the host (default: every actor local); the cluster passes its own. */
  readonly routerFor?: (host: ActorHost) => ActorRouter;
}

export interface ActorStack {
  readonly host: ActorHost;
  readonly router: ActorRouter;
}

/**
 * Builds the host and router. `sendToHub` and `publish` are called late (through closures), so
 * the edges that provide them may be built after the stack.
 */
export function createActorStack(deps: ActorStackDeps, config: Partial<ActorHostConfig> = {}): ActorStack {
  let router: ActorRouter | undefined;
  const onEffects = createEffectDispatcher(
    {
      // Through the router: during a handoff the target may already live elsewhere.
      deliver: (id, msg) => router!.deliver(id, msg),
      sendToHub: (homeId, hubId, command) => {
        deps.sendToHub(homeId, hubId, command);
      },
      publish: (homeId, topic, data) => deps.publish(homeId, topic, data),
    },
    deps.logger,
  );
  const host = new ActorHost(
    {
      behaviors: [deviceBehavior, homeBehavior, hubBehavior],
      store: deps.store,
      logger: deps.logger,
      registry: deps.registry,
      onEffects,
      ...(deps.clock ? { clock: deps.clock } : {}),
    },
    config,
  );
  router = deps.routerFor?.(host) ?? new LocalActorRouter(host);
  return { host, router };
}
