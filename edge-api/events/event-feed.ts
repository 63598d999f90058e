/** Live events per home in process memory (the node without Redis): a bounded replay buffer plus subscribers. */
import { compareEventIds, isEventId } from './event-id.ts';
import type { FeedListener, FeedSubscription, HomeEvent, HomeEventFeed } from './home-event-feed.ts';

export type { HomeEvent } from './home-event-feed.ts';

export interface EventFeedConfig {
  /** Events kept per home for resumption (EVENT_LOG_LENGTH). */
  readonly bufferPerHome: number;
  /** Homes whose buffers are kept; the least recently published are dropped first. */
  readonly maxHomes: number;
}

export const defaultEventFeedConfig: EventFeedConfig = { bufferPerHome: 200, maxHomes: 100_000 };

interface HomeChannel {
  /** The last id's parts: the next id is `<max(now, lastMs)>-<n>`, as Redis numbers stream entries. */
  lastMs: number;
  lastN: number;
  buffer: HomeEvent[];
  listeners: Set<FeedListener>;
}

/**
 * Process-local, fed by the node's effect dispatcher with the events of durable steps (one node:
 * every home lives here). Ids have the Redis stream id shape `<ms>-<n>`, so an app sees one kind
 * of id whichever store the node runs on. A resume whose id is not in the buffer (dropped from
 * it, from before this process started, or not an id at all) gets `gap: true`.
 */
export class EventFeed implements HomeEventFeed {
  private readonly homes = new Map<string, HomeChannel>();
  private readonly config: EventFeedConfig;

  constructor(
    config: Partial<EventFeedConfig> = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.config = { ...defaultEventFeedConfig, ...config };
  }

  publish(homeId: string, topic: string, data: unknown): HomeEvent {
    const channel = this.channel(homeId);
    const at = this.clock();
    if (at > channel.lastMs) {
      channel.lastMs = at;
      channel.lastN = 0;
    } else channel.lastN++;
    const event: HomeEvent = { id: `${channel.lastMs}-${channel.lastN}`, topic, data, at };
    channel.buffer.push(event);
    if (channel.buffer.length > this.config.bufferPerHome) channel.buffer.shift();
    const batch = { events: [event], replay: false, gap: false };
    for (const listener of channel.listeners) listener(batch);
    return event;
  }

  /**
   * Subscribes to a home's events. With `afterId`, the buffered events after it are delivered
   * first (at once, inside this call), as one replay batch; it is a `gap` batch when `afterId` is
   * not in the buffer (then the buffered events after it follow, none when it is not an id).
   */
  subscribe(homeId: string, listener: FeedListener, afterId?: string): FeedSubscription {
    const channel = this.channel(homeId);
    channel.listeners.add(listener);
    if (afterId !== undefined) {
      const wellFormed = isEventId(afterId);
      const at = wellFormed ? channel.buffer.findIndex((e) => e.id === afterId) : -1;
      const events =
        at >= 0 ? channel.buffer.slice(at + 1) : wellFormed ? channel.buffer.filter((e) => compareEventIds(e.id, afterId) > 0) : [];
      const gap = at < 0;
      if (gap || events.length > 0) listener(gap ? { events, replay: true, gap, gapAfter: afterId } : { events, replay: true, gap });
    }
    // The replay is the buffer (bounded): delivered at once, nothing waits for `drained`.
    return { following: Promise.resolve(), unsubscribe: () => channel.listeners.delete(listener), drained: () => {} };
  }

  private channel(homeId: string): HomeChannel {
    let channel = this.homes.get(homeId);
    if (channel) {
      // Map order is insertion order: re-insert to mark it recently used.
      this.homes.delete(homeId);
    } else {
      channel = { lastMs: 0, lastN: 0, buffer: [], listeners: new Set() };
      if (this.homes.size >= this.config.maxHomes) this.evictOne();
    }
    this.homes.set(homeId, channel);
    return channel;
  }

  private evictOne(): void {
    for (const [homeId, channel] of this.homes) {
      if (channel.listeners.size === 0) {
        this.homes.delete(homeId);
        return;
      }
    }
  }
}
