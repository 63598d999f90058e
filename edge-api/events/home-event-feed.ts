/** What the event stream (SSE) reads a home's events from: one interface for the memory feed and the Redis-backed one. */

/**
 * One event as apps see it. `id` is opaque to apps: a Redis stream id `<ms>-<n>` (the memory feed
 * uses the same shape), growing per home; it is what `Last-Event-ID` resumes after, on any node.
 */
export interface HomeEvent {
  readonly id: string;
  readonly topic: string;
  readonly data: unknown;
  /** Epoch ms of the step that produced it. */
  readonly at: number;
}

/**
 * Events for one subscriber, in id order, never one twice. `replay`: read from the log (the
 * resumption after Last-Event-ID, or a catch-up after the feed lost its live connection) rather
 * than live. `gap`: events after `gapAfter` may be gone (trimmed, expired, or an id this home's
 * log never had): the app should re-read the state; `events` follow on from what is retained.
 */
export interface FeedBatch {
  readonly events: readonly HomeEvent[];
  readonly replay: boolean;
  readonly gap: boolean;
  /** With `gap`: the id the subscriber was after (as it was given), or null when it had none. */
  readonly gapAfter?: string | null;
}

export type FeedListener = (batch: FeedBatch) => void;

export interface FeedSubscription {
  /**
   * Resolves once the subscriber follows the home: every event written from then on reaches it
   * (and the replay, if asked for, is delivered). Never rejects; may take long while the store is down.
   */
  readonly following: Promise<void>;
  /** Stops delivery; later calls do nothing. */
  unsubscribe(): void;
  /**
   * The subscriber has written out every replayed event it was given. A feed that reads a long
   * replay in pages (the Redis feed) reads the next page only then, so a resumption never holds
   * more than a page of the log in memory; the subscriber calls it whenever its queue runs empty.
   */
  drained(): void;
}

/**
 * A home's events for local subscribers. `subscribe` starts live delivery and, with `afterId`,
 * replays the retained events after it first (a `gap` batch when some are gone or the id is not
 * one of this home's). Listeners run inside the feed's own call: they must only queue.
 */
export interface HomeEventFeed {
  subscribe(homeId: string, listener: FeedListener, afterId?: string): FeedSubscription;
}

/** What a home's event log entry holds (the store adds the id and the step's time): written by the node's `logOf`, read by the Redis feed. */
export interface HomeEventEntry {
  readonly topic: string;
  readonly data: unknown;
}
