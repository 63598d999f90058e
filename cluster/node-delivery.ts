/** Generic node-to-node delivery: a JSON payload on a named channel to one node, carried on the peer stream. */
import type { Logger } from '../runtime/logger.ts';
import { runtimeError, type Result } from '../runtime/result.ts';
import { LogThrottle } from '../runtime/log-throttle.ts';

/** What became of a delivery on the receiving node: taken, refused by its handler, or no handler for the channel. */
export type DeliveryOutcome = 'ok' | 'refused' | 'no_handler';

/** Handles the payloads of one channel; returns false when it could not take one (e.g. nothing here to give it to). from: the sending node's id. */
export type DeliveryHandler = (payload: unknown, from: string) => boolean;

/** Sends a payload to a peer node (the peer client's `deliver`); ok = queued for the stream. */
export type DeliveryTransport = (nodeId: string, channel: string, payload: unknown) => Result<void> | Promise<Result<void>>;

/**
 * The cluster's one-way side channel for components above it (the hub ingress sends hub commands
 * to the node holding a hub's stream on it). The cluster knows channels only by name: it never
 * reads a payload. At most once, no reply; a payload for this node itself is handled in place.
 */
export class NodeDelivery {
  private readonly handlers = new Map<string, DeliveryHandler>();
  private readonly log: Logger;
  /** A peer may send any number of items on unknown channels: the log says so sparingly. */
  private readonly unknownChannelLog: LogThrottle;

  constructor(
    readonly nodeId: string,
    private readonly transport: DeliveryTransport,
    logger: Logger,
    throttle: LogThrottle = new LogThrottle(),
  ) {
    this.unknownChannelLog = throttle;
    this.log = logger.child({ component: 'node-delivery' });
  }

  /** Sends `payload` (JSON-serializable) to `nodeId`'s handler of `channel`. ok = on its way (or handled here), not: taken. */
  async deliverTo(nodeId: string, channel: string, payload: unknown): Promise<Result<void>> {
    if (nodeId === this.nodeId) {
      const outcome = this.receive(channel, payload, nodeId);
      return outcome === 'no_handler'
        ? runtimeError('unavailable', `no handler for channel ${channel} on this node`)
        : { ok: true, value: undefined };
    }
    return this.transport(nodeId, channel, payload);
  }

  /** Registers the one handler of `channel` on this node; returns the unregister function. */
  onDelivery(channel: string, handler: DeliveryHandler): () => void {
    if (this.handlers.has(channel)) throw new Error(`channel ${channel} already has a handler`);
    this.handlers.set(channel, handler);
    return () => {
      if (this.handlers.get(channel) === handler) this.handlers.delete(channel);
    };
  }

  /** A payload that arrived for this node (the peer server calls this). */
  receive(channel: string, payload: unknown, from: string): DeliveryOutcome {
    const handler = this.handlers.get(channel);
    if (!handler) {
      // The channel name comes from a peer: its length is not ours to choose.
      const suppressed = this.unknownChannelLog.admit();
      if (suppressed !== undefined)
        this.log.warn(
          { channel: channel.slice(0, 100), from: from.slice(0, 100), suppressed },
          'delivery on a channel without a handler: dropped',
        );
      return 'no_handler';
    }
    return handler(payload, from) ? 'ok' : 'refused';
  }
}
