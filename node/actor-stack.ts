/** The actor side of a node: host with every behaviour, effect dispatch and the router the edges use. */
import type { Registry } from 'prom-client';
import { deviceBehavior } from '../actors/device.ts';
import { homeBehavior } from '../actors/home.ts';
import { hubBehavior } from '../actors/hub.ts';
import { ActorHost, type ActorHostConfig } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import type { PersistencePort } from '../runtime/persistence-port.ts';
import type { ActorRouter } from '../cluster/actor-router.ts';
import { shardOfActor } from '../cluster/shard-of.ts';
import { AutomationMetrics } from './automation-metrics.ts';
import { createEffectDispatcher, eventLogOf, tellOfEffect, type EffectPorts } from './effect-dispatcher.ts';
import { LocalActorRouter } from './local-actor-router.ts';

export interface ActorStackDeps {
  readonly store: PersistencePort;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Where commands for hubs go (edge-api/hub-ingress/hub-command-delivery.ts). */
  readonly hubCommands: EffectPorts['hubCommands'];
  /** Where app events go (the memory event feed; with `logEvents`, nowhere more: they are in the log). */
  readonly publish: (homeId: string, topic: string, data: unknown) => void;
  /**
   * True when the store keeps each home's event log (Redis): the `publish` and `notify` effects
   * of a step are appended to it by the same write as the step's window.
   */
  readonly logEvents?: boolean;
  readonly clock?: () => number;
  /**
   * The shard of an actor (the cluster's, with Redis). A home, its devices and its hub share a
   * shard, so a report → rule → command chain is handled in one turn and written in one window.
   * Default: the store's, else the cluster's function over `shards` shards.
   */
  readonly shardOf?: (actorId: string) => number;
  /** Shards when `shardOf` is not given (default 1,024, as SHARDS). */
  readonly shards?: number;
  /** The router over the host (default: every actor local); the cluster passes its own. */
  readonly routerFor?: (host: ActorHost) => ActorRouter;
}

export interface ActorStack {
  readonly host: ActorHost;
  readonly router: ActorRouter;
}

/**
 * Builds the host and router. `hubCommands` and `publish` are first used when an effect runs, so
 * the edges behind them may be built after the stack (the node passes a late-bound object).
 */
export function createActorStack(deps: ActorStackDeps, config: Partial<ActorHostConfig> = {}): ActorStack {
  let router: ActorRouter | undefined;
  const onEffects = createEffectDispatcher(
    {
      // Through the router: during a handoff the target may already live elsewhere.
      deliver: (id, msg) => router!.deliver(id, msg),
      hubCommands: deps.hubCommands,
      publish: (homeId, topic, data) => deps.publish(homeId, topic, data),
    },
    deps.logger,
    AutomationMetrics.of(deps.registry),
  );
  const host = new ActorHost(
    {
      behaviors: [deviceBehavior, homeBehavior, hubBehavior],
      store: deps.store,
      logger: deps.logger,
      registry: deps.registry,
      onEffects,
      shardOf: deps.shardOf ?? deps.store.shardOf ?? shardOfActor(deps.shards ?? 1_024),
      tellOf: tellOfEffect,
      ...(deps.logEvents === true ? { logOf: eventLogOf } : {}),
      // Outbox entries go wherever their target lives, and count as delivered once it applied them durably.
      sendDurably: (to, msg) => router!.ask(to, msg),
      ...(deps.clock ? { clock: deps.clock } : {}),
    },
    config,
  );
  router = deps.routerFor?.(host) ?? new LocalActorRouter(host);
  return { host, router };
}
