/** What an authenticated peer may send this node: item kinds, and messages its actors accept; refusals counted and logged sparingly. */
import type { Logger } from '../runtime/logger.ts';
import { LogThrottle } from '../runtime/log-throttle.ts';
import type { PeerMetrics } from './peer-metrics.ts';

/**
 * undefined when `msg` may be handed to `actorId`; else a short, fixed reason (it is a metric
 * label: never built from the input). The node builds it from its actor kinds' message types; the
 * cluster knows no actor.
 */
export type AcceptsMessage = (actorId: string, msg: unknown) => string | undefined;

/** Item kinds of the refusal metric. */
export type PeerItemKind = 'ask' | 'tell' | 'reply' | 'unknown';

/**
 * The receiving side's checks of one peer server: only requests, tells and deliveries travel to
 * a server (a reply is refused), and a request's or tell's message must be one its actor's kind
 * accepts (`accepts`: a constant-time lookup on the hot path, not a schema validation: the reducer
 * still validates fields). Refusals count in `iot_peer_items_refused_total{kind, reason}` and log
 * at warn, throttled.
 *
 * A sanity filter against a broken or outdated peer, NOT a trust boundary: it checks that a message
 * type exists for the actor kind, so node-internal messages (timers such as `command.expire`, hub
 * cursor updates, ...) are accepted from any peer all the same. The trust boundary is the stream's
 * authentication (peer-auth.ts): a peer that passed it is a member and may send what members send.
 * Beyond it, the actors check only their own invariants, whoever sends: the hub actor, for one,
 * takes a cursor update (`hub.durable`) only when it names the node holding the hub's current
 * session, and never moves the cursor back; it cannot compare the value with the seqs the hub
 * sent (it never sees them), so a member naming that node is trusted with it (see `HubDurable`).
 */
export class PeerMessageGuard {
  private readonly throttle = new LogThrottle();

  constructor(
    private readonly accepts: AcceptsMessage,
    private readonly metrics: PeerMetrics,
    private readonly log: Logger,
  ) {}

  /** undefined = hand it to the handler; else the reason it was refused (already counted and logged). */
  check(kind: 'ask' | 'tell', peer: string, actorId: string, msg: unknown): string | undefined {
    const reason = this.accepts(actorId, msg);
    if (reason !== undefined) this.refused(kind, reason, peer, actorId);
    return reason;
  }

  /** Counts and logs an item refused for `reason` (a fixed string). */
  refused(kind: PeerItemKind, reason: string, peer: string, actorId?: string): void {
    this.metrics.itemsRefused.labels(kind, reason).inc();
    const suppressed = this.throttle.admit();
    if (suppressed !== undefined) this.log.warn({ peer, kind, reason, actorId: actorId?.slice(0, 200), suppressed }, 'peer item refused');
  }
}
