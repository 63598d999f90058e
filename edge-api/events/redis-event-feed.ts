/** A home's events from its log in Redis, on any node: replay with XRANGE, live over pub/sub, catch-up after a lost connection. */
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { compareEventIds, eventIdBefore, isEventId } from './event-id.ts';
import type { FeedBatch, FeedListener, FeedSubscription, HomeEvent, HomeEventEntry, HomeEventFeed } from './home-event-feed.ts';

export interface RedisEventFeedDeps {
  /** Reads the logs (XRANGE); a duplicate of it is the feed's one subscriber connection. */
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  /** The shard of a home: its log and channel live under that shard's hash tag. */
  readonly shardOfHome: (homeId: string) => number;
  readonly logger: Logger;
  /** Milliseconds before a failed subscribe or read is tried again; default 1,000. */
  readonly retryMs?: number;
}

/** Live events one subscriber may have waiting behind a read of the log; past it they are dropped and read from the log. */
export const MAX_BUFFERED_LIVE = 10_000;

/** One local subscriber of a home. */
interface Follower {
  readonly listener: FeedListener;
  /** The newest id delivered or known to be behind it (undefined: nothing known yet). */
  lastId: string | undefined;
  /** True when `lastId` is an entry of the log (a catch-up then tells a gap by not finding it). */
  lastInLog: boolean;
  /** The first read is the resumption after this id (undefined: none asked for); cleared once done. */
  resumeAfter: string | undefined;
  first: boolean;
  /** A read of the log is due: at start, after a lost connection or a failed read. */
  needsRead: boolean;
  reading: boolean;
  /** Live events that arrived while a read is due or running (delivered after it, deduplicated). */
  live: HomeEvent[] | undefined;
  closed: boolean;
  /** Resolves `following` once the first read is done. */
  readonly followed: () => void;
}

/** The home's channel on the subscriber connection, and who follows it on this node. */
interface Follow {
  readonly homeId: string;
  readonly key: string;
  readonly channel: string;
  readonly followers: Set<Follower>;
  /** SUBSCRIBE confirmed on the current connection. */
  subscribed: boolean;
  subscribing: boolean;
}

const byId = (a: HomeEvent, b: HomeEvent): number => compareEventIds(a.id, b.id);

/**
 * The node's view of every home's event log (written by the fence script with the steps, see
 * runtime/redis/fenced-write.ts). One subscriber connection per node: a home's channel is
 * subscribed while at least one local stream follows it. A subscriber is subscribed first and
 * read second (resumption after its id with XRANGE), so nothing falls between; live messages that
 * arrive meanwhile wait and are deduplicated by id (ids only grow per log). Pub/sub is lossy, so
 * after the subscriber connection comes back every follower catches up from its last id; a read
 * that fails is tried again every `retryMs` while the streams stay open. A resume id that is no
 * longer in the log (trimmed, expired) or was never one of its ids is a gap.
 */
export class RedisEventFeed implements HomeEventFeed {
  private readonly homes = new Map<string, Follow>();
  private readonly byChannel = new Map<string, Follow>();
  private sub: RedisClient | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retryMs: number;
  private readonly log: Logger;
  private closed = false;
  private failing = false;

  constructor(private readonly deps: RedisEventFeedDeps) {
    this.retryMs = deps.retryMs ?? 1_000;
    this.log = deps.logger.child({ component: 'event-feed' });
  }

  /** Homes followed on this node right now (tests, introspection). */
  get followed(): number {
    return this.homes.size;
  }

  subscribe(homeId: string, listener: FeedListener, afterId?: string): FeedSubscription {
    if (this.closed) throw new Error('the event feed is closed');
    let follow = this.homes.get(homeId);
    if (!follow) {
      const shard = this.deps.shardOfHome(homeId);
      follow = {
        homeId,
        key: this.deps.keys.events(shard, homeId),
        channel: this.deps.keys.eventsChannel(shard, homeId),
        followers: new Set(),
        subscribed: false,
        subscribing: false,
      };
      this.homes.set(homeId, follow);
      this.byChannel.set(follow.channel, follow);
    }
    let followed = (): void => {};
    const following = new Promise<void>((resolve) => (followed = resolve));
    const follower: Follower = {
      listener,
      lastId: undefined,
      lastInLog: false,
      resumeAfter: afterId,
      first: true,
      needsRead: true,
      reading: false,
      live: [],
      closed: false,
      followed: () => followed(),
    };
    follow.followers.add(follower);
    const f = follow;
    if (f.subscribed) this.read(f, follower);
    else this.ensureSubscribed(f);
    return { following, unsubscribe: () => this.unfollow(f, follower) };
  }

  /** Stops following every home and closes the subscriber connection. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const follow of this.homes.values()) for (const f of follow.followers) f.closed = true;
    this.homes.clear();
    this.byChannel.clear();
    this.sub?.disconnect();
  }

  private subscriber(): RedisClient {
    if (this.sub) return this.sub;
    const sub = this.deps.client.duplicate(); // a subscribed connection cannot run XRANGE
    this.sub = sub;
    let down = false;
    sub.on('error', (err: unknown) => {
      if (!down) this.log.warn({ err }, 'event subscription connection failed; open streams catch up once it is back');
      down = true;
    });
    sub.on('close', () => this.connectionLost());
    sub.on('ready', () => {
      if (down) this.log.info('event subscription connection back: open streams catch up');
      down = false;
      this.connectionLost(); // whatever was published meanwhile is read from the logs
      for (const follow of this.homes.values()) this.ensureSubscribed(follow);
    });
    // The duplicate copies lazyConnect; a failed first connect is retried by ioredis' retryStrategy.
    if (sub.status === 'wait') sub.connect().catch(() => {});
    sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    return sub;
  }

  /** The subscriber connection dropped: live messages were lost, so every follower reads its log again once resubscribed. */
  private connectionLost(): void {
    for (const follow of this.homes.values()) {
      follow.subscribed = false;
      follow.subscribing = false;
      for (const f of follow.followers) {
        f.needsRead = true;
        f.live ??= [];
      }
    }
  }

  private ensureSubscribed(follow: Follow): void {
    const sub = this.subscriber();
    if (follow.subscribed || follow.subscribing || sub.status !== 'ready') return;
    follow.subscribing = true;
    sub.subscribe(follow.channel).then(
      () => {
        if (this.homes.get(follow.homeId) !== follow || !follow.subscribing) return;
        follow.subscribing = false;
        follow.subscribed = true;
        for (const f of follow.followers) if (f.needsRead) this.read(follow, f);
      },
      (err: unknown) => {
        follow.subscribing = false;
        this.failed(err, follow.homeId, 'subscribe');
      },
    );
  }

  private unfollow(follow: Follow, follower: Follower): void {
    if (follower.closed) return;
    follower.closed = true;
    follow.followers.delete(follower);
    if (follow.followers.size > 0 || this.homes.get(follow.homeId) !== follow) return;
    this.homes.delete(follow.homeId);
    this.byChannel.delete(follow.channel);
    const was = follow.subscribed || follow.subscribing;
    follow.subscribed = false;
    follow.subscribing = false;
    // Ordered on the connection before any later SUBSCRIBE of the same home.
    if (was && this.sub?.status === 'ready') this.sub.unsubscribe(follow.channel).catch(() => {});
  }

  private onMessage(channel: string, message: string): void {
    const follow = this.byChannel.get(channel);
    if (!follow) return;
    let events: HomeEvent[];
    try {
      events = (JSON.parse(message) as [string, number, HomeEventEntry][]).map(([id, at, e]) => ({ id, at, topic: e.topic, data: e.data }));
    } catch (err) {
      this.log.error({ err, channel }, 'an event announcement that does not parse; followers catch up from the log');
      for (const f of follow.followers) this.mustRead(follow, f);
      return;
    }
    for (const f of follow.followers) {
      if (f.live !== undefined) {
        if (f.live.length + events.length > MAX_BUFFERED_LIVE) this.mustRead(follow, f);
        else f.live.push(...events);
      } else this.deliver(f, events, { replay: false, gap: false });
    }
  }

  /** The follower's live events are dropped: it reads them from the log (again) once its current read is done. */
  private mustRead(follow: Follow, f: Follower): void {
    f.live = [];
    f.needsRead = true;
    if (!f.reading) this.read(follow, f);
  }

  /** Delivers the events newer than the follower's last id, in id order. */
  private deliver(f: Follower, events: readonly HomeEvent[], how: Omit<FeedBatch, 'events'>): void {
    if (f.closed) return;
    const last = f.lastId;
    const fresh = last === undefined ? events : events.filter((e) => compareEventIds(e.id, last) > 0);
    if (fresh.length > 0) {
      f.lastId = fresh[fresh.length - 1]!.id;
      f.lastInLog = true;
    }
    if (fresh.length === 0 && !how.gap) return;
    try {
      f.listener({ ...how, events: fresh });
    } catch (err) {
      this.log.error({ err }, 'event listener threw');
    }
  }

  /** Reads the follower's log after its position (resumption or catch-up), then lets its waiting live events through. */
  private read(follow: Follow, f: Follower): void {
    if (f.reading || f.closed || !follow.subscribed) return;
    f.reading = true;
    f.needsRead = false;
    f.live ??= [];
    this.readLog(follow.key, f).then(
      ({ events, gap, gapAfter }) => {
        f.reading = false;
        if (f.closed) return;
        f.first = false;
        f.resumeAfter = undefined;
        this.deliver(f, events, gap ? { replay: true, gap, gapAfter } : { replay: true, gap });
        f.followed();
        if (this.failing) this.log.info('event logs readable again');
        this.failing = false;
        if (f.needsRead) {
          // The connection dropped during the read: live events may be missing before the ones waiting.
          this.read(follow, f);
          return;
        }
        const live = f.live ?? [];
        f.live = undefined;
        if (live.length > 0) this.deliver(f, live.sort(byId), { replay: false, gap: false });
      },
      (err: unknown) => {
        f.reading = false;
        f.needsRead = true;
        this.failed(err, follow.homeId, 'read');
      },
    );
  }

  /** What the log holds after the follower's position, and whether its position is still in the log. */
  private async readLog(key: string, f: Follower): Promise<{ events: HomeEvent[]; gap: boolean; gapAfter?: string | null }> {
    const client = this.deps.client;
    if (f.first) {
      const after = f.resumeAfter;
      if (after === undefined || !isEventId(after)) {
        // No resumption (or one from an id that is not an event id): follow on from the newest
        // entry. Live events that came meanwhile are all newer (the channel was subscribed first).
        const newest = (await client.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
        const firstLive = f.live?.[0]?.id;
        if (firstLive !== undefined && (newest === undefined || compareEventIds(firstLive, newest) <= 0)) {
          f.lastId = eventIdBefore(firstLive);
          f.lastInLog = false;
        } else if (newest !== undefined) {
          f.lastId = newest;
          f.lastInLog = true;
        }
        return after === undefined ? { events: [], gap: false } : { events: [], gap: true, gapAfter: after };
      }
      f.lastId = after;
      f.lastInLog = true;
    }
    const from = f.lastId;
    if (from === undefined) return { events: this.decode(await client.xrange(key, '-', '+'), key), gap: false };
    // A position that is no entry (after a gap): everything after it, nothing to check.
    if (!f.lastInLog) return { events: this.decode(await client.xrange(key, `(${from}`, '+'), key), gap: false };
    // From the position itself (inclusive): when it is still the first entry read, nothing is missing.
    const entries = this.decode(await client.xrange(key, from, '+'), key);
    if (entries[0]?.id === from) return { events: entries.slice(1), gap: false };
    // Gone: what is kept follows the reset; the position is no entry any more.
    f.lastInLog = false;
    return { events: entries, gap: true, gapAfter: from };
  }

  private decode(entries: readonly [string, string[]][], key: string): HomeEvent[] {
    const out: HomeEvent[] = [];
    for (const [id, fields] of entries) {
      let at = 0;
      let raw: string | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === 'at') at = Number(fields[i + 1]);
        else if (fields[i] === 'e') raw = fields[i + 1];
      }
      try {
        const e = JSON.parse(raw ?? '') as HomeEventEntry;
        out.push({ id, at, topic: e.topic, data: e.data });
      } catch (err) {
        this.log.error({ err, key, id }, 'an event log entry that does not parse; skipped');
      }
    }
    return out;
  }

  /** A subscribe or read failed: logged once per outage, tried again in `retryMs`. */
  private failed(err: unknown, homeId: string, what: 'subscribe' | 'read'): void {
    if (!this.failing)
      this.log.warn({ err, homeId }, `cannot ${what} the event log; open streams stay open and catch up when it works again`);
    this.failing = true;
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const follow of this.homes.values()) {
        if (!follow.subscribed) this.ensureSubscribed(follow);
        else for (const f of follow.followers) if (f.needsRead) this.read(follow, f);
      }
    }, this.retryMs);
    this.retryTimer.unref();
  }
}
