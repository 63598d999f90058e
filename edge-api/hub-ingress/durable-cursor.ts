/** Tells the hub actor how far a hub's reports are durable (`hub.durable`), coalesced: one ask in flight, latest value wins. */
import type { HubActorId } from '../../actors/actor-id.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { askActor } from '../ask-actor.ts';

/**
 * The hub actor's `lastDurableSeq` is where a reconnecting hub resumes (the welcome's
 * last_durable_seq). It may lag the acks a little: every report up to an ack is already durable in
 * its device actor, which ignores a re-sent one, so a lag costs re-sends, never correctness.
 */
export class DurableCursor {
  /** Highest value the hub actor confirmed. */
  private confirmed = 0;
  /** Highest value not yet confirmed, waiting for the ask in flight (or for a retry after a failure). */
  private pending: number | undefined;
  private inFlight = false;
  private finished = false;

  constructor(
    private readonly router: ActorRouter,
    private readonly hubActorId: HubActorId,
    private readonly log: Logger,
  ) {}

  /** Reports up to `upToSeq` are acked; send it unless a newer value is already on its way. */
  advance(upToSeq: number): void {
    if (upToSeq <= Math.max(this.confirmed, this.pending ?? 0)) return;
    this.pending = upToSeq;
    if (!this.inFlight)
      this.send().catch((err: unknown) => this.log.error({ err, upToSeq }, 'hub.durable answered with no outcome (a bug)'));
  }

  /**
   * The stream is ending: a value still waiting goes out as a plain message (no reply awaited);
   * one that waits behind an ask in flight goes out when that ask returns.
   */
  finish(): void {
    this.finished = true;
    if (this.inFlight || this.pending === undefined) return;
    const upToSeq = this.pending;
    this.pending = undefined;
    const sent = this.router.tell(this.hubActorId, { type: 'hub.durable', upToSeq });
    if (!sent.ok) this.log.warn({ code: sent.error.code, upToSeq }, 'hub.durable not delivered at stream end');
  }

  private async send(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.pending !== undefined) {
        const upToSeq = this.pending;
        this.pending = undefined;
        const r = await askActor(this.router, this.hubActorId, { type: 'hub.durable', upToSeq });
        if (r.ok) {
          this.confirmed = Math.max(this.confirmed, upToSeq);
          continue;
        }
        // Keep the value for the next ack (or the stream end) rather than spin on a failing actor.
        this.log.warn({ code: r.error.code, upToSeq }, 'hub.durable failed; will retry with the next ack');
        this.pending = Math.max(this.pending ?? 0, upToSeq);
        break;
      }
    } finally {
      this.inFlight = false;
      if (this.finished) this.finish();
    }
  }
}
