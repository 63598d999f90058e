/** Tells the hub actor how far a hub's reports are durable (`hub.durable`), at most about once per interval per stream. */
import type { HubActorId } from '../../actors/actor-id.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { askActor, isRuntimeError } from '../ask-actor.ts';

export interface DurableCursorOptions {
  /** Milliseconds between two `hub.durable` steps of this stream at least; 0 = after every ack. */
  readonly intervalMs: number;
  /**
   * Monotonic milliseconds for the interval (default `performance.now`; tests inject one). Not
   * the wall clock: one stepped back would hold the next write for as long as the step.
   */
  readonly clock?: () => number;
  /**
   * The hub actor refused the cursor because this stream no longer holds the hub's session
   * (`failed_precondition`: superseded elsewhere, disconnected, the hub removed): an end of the
   * session that never arrived. Called once; the cursor writes nothing more.
   */
  readonly refused?: (message: string) => void;
}

const monotonic = (): number => performance.now();

/**
 * The hub actor's `lastDurableSeq` is where a reconnecting hub resumes (the welcome's
 * last_durable_seq). It may lag the acks: every report up to an ack is already durable in its
 * device actor, which acks a re-sent one without applying it again, so a lag costs re-sends,
 * never correctness. Writing it on every ack was a journaled hub step per report batch; now the
 * first ack after a quiet interval is written at once, later ones together when the interval has
 * passed (one ask in flight, the latest value wins), and the last one when the stream ends in
 * order. A stream that breaks (or a node that dies) leaves at most one interval of acks to re-send.
 */
export class DurableCursor {
  /** Highest value the hub actor confirmed. */
  private confirmed = 0;
  /** Highest value sent (in flight or confirmed); falls back to `confirmed` when an ask fails. */
  private sent = 0;
  /** Highest value acked to the hub. */
  private wanted = 0;
  private inFlight = false;
  /** The hub actor said this stream is not its session: nothing more is written. */
  private stale = false;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  /** undefined while the stream runs; then whether the latest value is to be written. */
  private endFlush: boolean | undefined;
  /** Made once: a timer allocates no closure per interval. */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.send();
  };
  private readonly clock: () => number;

  constructor(
    private readonly router: ActorRouter,
    private readonly hubActorId: HubActorId,
    /** This node: the hub actor takes the cursor only from the node holding the hub's current session. */
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly options: DurableCursorOptions,
  ) {
    this.clock = options.clock ?? monotonic;
  }

  /** Reports up to `upToSeq` are acked. */
  advance(upToSeq: number): void {
    if (this.endFlush !== undefined || this.stale || upToSeq <= this.wanted) return;
    this.wanted = upToSeq;
    this.schedule();
  }

  /**
   * The stream is ending. `flush`: it ends in order (the hub half-closed, or this node ended it),
   * so the latest value is written now — as a plain message, no reply awaited — or when the ask in
   * flight returns. Otherwise (the stream broke) it is dropped, as a crash would drop it.
   */
  finish(flush: boolean): void {
    if (this.endFlush !== undefined) return;
    this.endFlush = flush;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.inFlight) this.flushAtEnd();
  }

  private schedule(): void {
    if (this.inFlight || this.timer !== undefined || this.wanted <= this.sent) return;
    // At most one interval: a clock that went back (an injected one) must not stall the writes.
    const wait = Math.min(this.options.intervalMs, this.lastSentAt + this.options.intervalMs - this.clock());
    if (wait <= 0) this.send();
    else this.timer = setTimeout(this.onTimer, wait);
  }

  private send(): void {
    const upToSeq = this.wanted;
    this.sent = upToSeq;
    this.inFlight = true;
    this.lastSentAt = this.clock();
    this.ask(upToSeq).catch((err: unknown) => this.log.error({ err, upToSeq }, 'hub.durable answered with no outcome (a bug)'));
  }

  private async ask(upToSeq: number): Promise<void> {
    let ok = false;
    let refusal: string | undefined;
    try {
      const r = await askActor(this.router, this.hubActorId, { type: 'hub.durable', upToSeq, nodeId: this.nodeId });
      if (r.ok) {
        this.confirmed = Math.max(this.confirmed, upToSeq);
        ok = true;
      } else if (r.error.code === 'failed_precondition' && !isRuntimeError(r.error)) {
        // Retrying cannot help: the hub actor takes the cursor only from its current session.
        this.stale = true;
        refusal = r.error.message;
        this.log.warn({ code: r.error.code, upToSeq, message: r.error.message }, 'hub.durable refused: this stream is not the hub session');
      } else this.log.warn({ code: r.error.code, upToSeq }, 'hub.durable failed; will retry with the next ack');
    } finally {
      this.inFlight = false;
      this.sent = this.confirmed;
      if (refusal !== undefined) this.options.refused?.(refusal);
      else if (this.endFlush !== undefined) this.flushAtEnd();
      // After a failure, the value waits for the next ack (or the stream end): no spinning on a failing actor.
      else if (ok) this.schedule();
    }
  }

  private flushAtEnd(): void {
    if (!this.endFlush || this.stale || this.wanted <= this.confirmed) return;
    const upToSeq = this.wanted;
    this.confirmed = upToSeq; // told once: a later call has nothing left to write
    const sent = this.router.tell(this.hubActorId, { type: 'hub.durable', upToSeq, nodeId: this.nodeId });
    if (!sent.ok) this.log.warn({ code: sent.error.code, upToSeq }, 'hub.durable not delivered at stream end');
  }
}
