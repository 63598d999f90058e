/** Live events per home for apps (SSE): a bounded replay buffer plus subscribers. */

/** One event as apps see it. `id` increases per home and is what `Last-Event-ID` resumes from. */
export interface HomeEvent {
  readonly id: number;
  readonly topic: string;
  readonly data: unknown;
  /** Epoch ms. */
  readonly at: number;
}

export type Listener = (event: HomeEvent) => void;

export interface EventFeedConfig {
  /** Events kept per home for resumption. */
  readonly bufferPerHome: number;
  /** Homes whose buffers are kept; the least recently published are dropped first. */
  readonly maxHomes: number;
}

export const defaultEventFeedConfig: EventFeedConfig = { bufferPerHome: 500, maxHomes: 100_000 };

interface HomeChannel {
  nextId: number;
  buffer: HomeEvent[];
  listeners: Set<Listener>;
}

/**
 * Process-local: events are published on the node that hosts the home. A resume that asks for
 * events older than the buffer gets `gap: true` so the app knows to re-read state.
 */
export class EventFeed {
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
    const event: HomeEvent = { id: channel.nextId++, topic, data, at: this.clock() };
    channel.buffer.push(event);
    if (channel.buffer.length > this.config.bufferPerHome) channel.buffer.shift();
    for (const listener of channel.listeners) listener(event);
    return event;
  }

  /**
   * Subscribes to a home's events. With `afterId`, the buffered events after it are returned for
   * replay first; `gap` is true when some were already dropped from the buffer.
   */
  subscribe(homeId: string, listener: Listener, afterId?: number): { replay: HomeEvent[]; gap: boolean; unsubscribe: () => void } {
    const channel = this.channel(homeId);
    channel.listeners.add(listener);
    let replay: HomeEvent[] = [];
    let gap = false;
    if (afterId !== undefined) {
      replay = channel.buffer.filter((e) => e.id > afterId);
      const oldest = channel.buffer[0]?.id ?? channel.nextId;
      // An id from before this process started (ids restart) is a gap too.
      gap = afterId + 1 < oldest || afterId >= channel.nextId;
    }
    return { replay, gap, unsubscribe: () => channel.listeners.delete(listener) };
  }

  private channel(homeId: string): HomeChannel {
    let channel = this.homes.get(homeId);
    if (channel) {
      // Map order is insertion order: re-insert to mark it recently used.
      this.homes.delete(homeId);
    } else {
      channel = { nextId: 1, buffer: [], listeners: new Set() };
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
