/** Turns the domain effects of durable steps into I/O: actor messages, hub commands, app events. */
import type { DomainEffect } from '../actors/types.ts';
import type { HomeEventEntry } from '../edge-api/events/home-event-feed.ts';
import type { HubCommandDelivery } from '../edge-api/hub-ingress/hub-command-delivery.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Result } from '../runtime/result.ts';
import type { AutomationMetrics } from './automation-metrics.ts';

/** Where effects go. The node wires these to the actor host, hub sessions and the event feed. */
export interface EffectPorts {
  /** Delivers a message that a durable step produced (not subject to mailbox bounds). */
  deliver(actorId: string, msg: unknown): Result<void>;
  /**
   * Sends a command down the hub's stream, wherever it is held (or leaves it queued in the device);
   * `endSession` ends one stream session wherever it is held, `sendDesired` sends a device's
   * desired delta down it (each absent on a stack without hub streams, e.g. a test's: then there
   * is no stream to end or write to; a delta is sent again when the hub connects).
   */
  readonly hubCommands: Pick<HubCommandDelivery, 'send'> & Partial<Pick<HubCommandDelivery, 'endSession' | 'sendDesired'>>;
  /**
   * Publishes a change apps may follow live; `notify` effects arrive with topic `notify`. With a
   * store that keeps the home event logs (Redis), the events reach apps from the log (written with
   * the step) and this port delivers nothing more.
   */
  publish(homeId: string, topic: string, data: unknown): void;
}

/**
 * The host's `onEffects` callback: runs each effect in order; one failing effect does not stop the
 * rest. `automation` counts rule decisions and finished commands from the `publish` effects (the
 * host runs a step's effects once, after it is durable, and never for a replayed step).
 */
export function createEffectDispatcher(
  ports: EffectPorts,
  logger: Logger,
  automation?: AutomationMetrics,
): (fromId: string, effects: readonly unknown[]) => void {
  const log = logger.child({ component: 'effects' });
  return (fromId, effects) => {
    for (const effect of effects as readonly DomainEffect[]) {
      try {
        switch (effect.type) {
          case 'tell': {
            const sent = ports.deliver(effect.to, effect.msg);
            if (!sent.ok) log.warn({ from: fromId, to: effect.to, code: sent.error.code }, 'effect not delivered');
            break;
          }
          case 'hub.command':
            ports.hubCommands.send(effect.homeId, effect.hubId, effect.command);
            break;
          case 'hub.desired':
            ports.hubCommands.sendDesired?.(effect.homeId, effect.hubId, {
              deviceId: effect.deviceId,
              version: effect.version,
              delta: effect.delta,
            });
            break;
          case 'hub.session.end':
            ports.hubCommands.endSession?.(effect);
            break;
          case 'notify':
            ports.publish(effect.homeId, 'notify', { message: effect.message, ruleId: effect.ruleId });
            break;
          case 'publish':
            automation?.observe(effect);
            ports.publish(effect.homeId, effect.topic, effect.data);
            break;
          default:
            log.error({ from: fromId, effect }, 'unknown effect');
        }
      } catch (err) {
        log.error({ err, from: fromId, type: effect.type }, 'effect failed');
      }
    }
  };
}

/**
 * The actor a `tell` effect goes to, for the host: it handles those of the sender's shard in the
 * same turn and window and writes the rest into the sender's outbox (so the dispatcher's `tell`
 * case serves only a host built without `tellOf`).
 */
export function tellOfEffect(effect: unknown): { to: string; msg: unknown } | undefined {
  const e = effect as DomainEffect;
  return e.type === 'tell' ? { to: e.to, msg: e.msg } : undefined;
}

/**
 * The home event log entry of an effect apps follow (`publish`, `notify`), for a host whose store
 * keeps the logs (Redis): the entry is written with the step's window, and every node's event
 * stream reads it from there. The log is the home id; the entry is what the stream sends.
 */
export function eventLogOf(effect: unknown): { log: string; entry: HomeEventEntry } | undefined {
  const e = effect as DomainEffect;
  if (e.type === 'publish') return { log: e.homeId, entry: { topic: e.topic, data: e.data } };
  // As the dispatcher publishes it (an absent ruleId is left out of the JSON).
  if (e.type === 'notify') return { log: e.homeId, entry: { topic: 'notify', data: { message: e.message, ruleId: e.ruleId } } };
  return undefined;
}
