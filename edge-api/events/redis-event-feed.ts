/** A home's events from its log in Redis, on any node: paged replay with XRANGE, live over pub/sub (chained announcements), catch-up after a lost announcement or connection. */
import type { Cluster } from 'ioredis';
import type { Logger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { compareEventIds, compareEventIdTo, eventIdAfter, eventIdBefore, isEventId, parseEventId } from './event-id.ts';
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
  /**
   * Milliseconds between two checks of each followed home's newest id (one XREVRANGE per home, not
   * per stream): the safety net for an announcement lost with none after it; default 10,000.
   */
  readonly checkEveryMs?: number;
  /**
   * EVENT_LOG_LENGTH (default 200). On Redis 6.2, which does not say which ids it trimmed, a log at
   * least this long whose first entry is after a position is taken as trimmed past it (a gap).
   */
  readonly logLength?: number;
}

/** Live events one subscriber may have waiting behind a read of the log; past it they are dropped and read from the log. */
export const MAX_BUFFERED_LIVE = 10_000;
/** Entries one read of a log returns at most: a replay goes page by page, the next once the subscriber has drained the last. */
export const REPLAY_PAGE = 256;
/** Reads of the logs (replays, catch-ups, checks) the feed runs at once; the others wait their turn. */
export const MAX_CONCURRENT_READS = 8;

/** One message of a home's channel: the log's newest id before its window (`p`, '' for none; undefined from an old writer) and the window's entries. */
interface Announcement {
  readonly p: string | undefined;
  readonly events: readonly HomeEvent[];
}

/** What one read of a log gave a follower. */
interface Page {
  readonly events: HomeEvent[];
  readonly gap: boolean;
  readonly gapAfter?: string | null;
  /** The last id the read returned (decoded or not): the position once delivered. */
  readonly through?: string;
  /** The page was full: more may follow, read once the subscriber has drained this one. */
  readonly more: boolean;
}

/** One local subscriber of a home. */
interface Follower {
  readonly listener: FeedListener;
  /** The newest id delivered or known to be behind it (undefined: nothing known yet). */
  lastId: string | undefined;
  /** `lastId` parsed, kept with it (every live event is compared with it). */
  lastParsed: readonly [number, number] | undefined;
  /** True when `lastId` is an entry of the log (a catch-up then tells a gap by not finding it). */
  lastInLog: boolean;
  /** The first read is the resumption after this id (undefined: none asked for); cleared once done. */
  resumeAfter: string | undefined;
  first: boolean;
  /** A read of the log is due: at start, after a lost announcement or connection, a failed read, or the next page. */
  needsRead: boolean;
  reading: boolean;
  /** A page of a replay was delivered and more follow: the next is read once the subscriber has drained. */
  paused: boolean;
  /** Announcements that arrived while a read is due or running (delivered after it, deduplicated). */
  live: Announcement[] | undefined;
  /** Events in `live`. */
  liveCount: number;
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
  /** A check of the log's newest id is running. */
  checking: boolean;
  /** The newest id announced on the channel so far (parsed). */
  seen: readonly [number, number] | undefined;
}

const isCluster = (client: RedisClient): client is Cluster => (client as Cluster).isCluster === true;

/**
 * The node's view of every home's event log (written by the fence script with the steps, see
 * runtime/redis/fenced-write.ts). One subscriber connection per node: a home's channel is
 * subscribed while at least one local stream follows it. A subscriber is subscribed first and
 * read second (resumption after its id with XRANGE, a page at a time), so nothing falls between;
 * live messages that arrive meanwhile wait and are deduplicated by id (ids only grow per log).
 *
 * Pub/sub is lossy (a connection that drops, Redis Cluster swapping its subscriber connection
 * without a word, an ACL that refuses the PUBLISH), so nothing relies on every announcement
 * arriving: each names the log's newest id before its window, and a follower that is not there
 * catches up from the log; after the subscriber connection comes back, one check per home finds
 * who must catch up; every `checkEveryMs` the same check catches an announcement lost with none
 * after it. A read that fails is tried again every `retryMs` while the streams stay open. A
 * resume id that is no longer in the log (trimmed, expired), was never one of its ids, or is
 * beyond its newest (a tail a failover lost) is a gap, and so is a position any entry after
 * which was trimmed before it was read.
 */
export class RedisEventFeed implements HomeEventFeed {
  private readonly homes = new Map<string, Follow>();
  private readonly byChannel = new Map<string, Follow>();
  private sub: RedisClient | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly retryMs: number;
  private readonly logLength: number;
  private readonly log: Logger;
  private closed = false;
  private failing = false;
  /** Bumped whenever the subscriber connection is lost: a check that started before says nothing after. */
  private epoch = 0;
  private activeReads = 0;
  private readonly waitingReads: (() => void)[] = [];

  constructor(private readonly deps: RedisEventFeedDeps) {
    this.retryMs = deps.retryMs ?? 1_000;
    this.logLength = deps.logLength ?? 200;
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
        checking: false,
        seen: undefined,
      };
      this.homes.set(homeId, follow);
      this.byChannel.set(follow.channel, follow);
    }
    let followed = (): void => {};
    const following = new Promise<void>((resolve) => (followed = resolve));
    const follower: Follower = {
      listener,
      lastId: undefined,
      lastParsed: undefined,
      lastInLog: false,
      resumeAfter: afterId,
      first: true,
      needsRead: true,
      reading: false,
      paused: false,
      live: [],
      liveCount: 0,
      closed: false,
      followed: () => followed(),
    };
    follow.followers.add(follower);
    const f = follow;
    if (f.subscribed) this.read(f, follower);
    else this.ensureSubscribed(f);
    return { following, unsubscribe: () => this.unfollow(f, follower), drained: () => this.drained(f, follower) };
  }

  /** Stops following every home and closes the subscriber connection. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.checkTimer);
    for (const follow of this.homes.values()) for (const f of follow.followers) f.closed = true;
    this.homes.clear();
    this.byChannel.clear();
    this.sub?.disconnect();
  }

  private subscriber(): RedisClient {
    if (this.sub) return this.sub;
    const client = this.deps.client;
    // A subscribed connection cannot run XRANGE. The feed resubscribes its own set when the
    // connection is back (ioredis would also resubscribe channels unfollowed while it was down),
    // and a SUBSCRIBE that was in flight fails rather than being sent again behind its back.
    // Redis Cluster's subscriber resubscribes on its own (what it holds is what the feed holds).
    const sub = isCluster(client) ? client.duplicate() : client.duplicate({ autoResubscribe: false, autoResendUnfulfilledCommands: false });
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
    const every = this.deps.checkEveryMs ?? 10_000;
    this.checkTimer = setInterval(() => {
      for (const follow of this.homes.values()) if (follow.subscribed) this.check(follow);
    }, every);
    this.checkTimer.unref();
    return sub;
  }

  /** The subscriber connection dropped: live messages were lost, so every follower catches up once resubscribed. */
  private connectionLost(): void {
    this.epoch++;
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
        // New followers read their resumption; the others (after a lost connection) need one
        // check of the home's newest id, and a read only when they are behind it.
        let behind = false;
        for (const f of follow.followers) {
          if (f.first) this.read(follow, f);
          else if (f.needsRead) behind = true;
        }
        if (behind) this.check(follow);
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
    // Ordered on the connection before any later SUBSCRIBE of the same home. A connection that
    // is down holds nothing (the feed resubscribes only what it follows once it is back); Redis
    // Cluster's resubscribes what it held, so it is told in any case.
    const sub = this.sub;
    if (was && sub && (sub.status === 'ready' || isCluster(sub))) sub.unsubscribe(follow.channel).catch(() => {});
  }

  private onMessage(channel: string, message: string): void {
    const follow = this.byChannel.get(channel);
    if (!follow) return;
    let announced: Announcement;
    try {
      const parsed = JSON.parse(message) as { p?: unknown; e: [string, number, HomeEventEntry][] } | [string, number, HomeEventEntry][];
      const entries = Array.isArray(parsed) ? parsed : parsed.e;
      const p = Array.isArray(parsed) || typeof parsed.p !== 'string' ? undefined : parsed.p;
      announced = { p, events: entries.map(([id, at, e]) => ({ id, at, topic: e.topic, data: e.data })) };
    } catch (err) {
      this.log.error({ err, channel }, 'an event announcement that does not parse; followers catch up from the log');
      for (const f of follow.followers) this.mustRead(follow, f);
      return;
    }
    const n = announced.events.length;
    if (n === 0) return;
    const newest = parseEventId(announced.events[n - 1]!.id);
    if (newest && (follow.seen === undefined || newest[0] > follow.seen[0] || (newest[0] === follow.seen[0] && newest[1] > follow.seen[1])))
      follow.seen = newest;
    for (const f of follow.followers) {
      if (f.live !== undefined) {
        if (f.liveCount + n > MAX_BUFFERED_LIVE) this.mustRead(follow, f);
        else {
          f.live.push(announced);
          f.liveCount += n;
        }
      } else this.onLive(follow, f, announced);
    }
  }

  /**
   * Delivers an announcement to a follower that is up to date, unless it shows one was missed (its
   * `p`, the log's newest id before it, is past the follower's position): then the follower reads
   * the log instead. @returns false when it must read (its waiting announcements were dropped).
   */
  private onLive(follow: Follow, f: Follower, a: Announcement): boolean {
    if (f.closed || a.events.length === 0) return true;
    const last = f.lastParsed;
    if (last !== undefined && compareEventIdTo(a.events[a.events.length - 1]!.id, last) <= 0) return true;
    if (a.p !== undefined && a.p !== '' && (last === undefined || compareEventIdTo(a.p, last) > 0)) {
      this.mustRead(follow, f);
      return false;
    }
    this.deliver(f, a.events, { replay: false, gap: false });
    return true;
  }

  /** The follower's live events are dropped: it reads them from the log (again) once its current read is done. */
  private mustRead(follow: Follow, f: Follower): void {
    f.live = [];
    f.liveCount = 0;
    f.needsRead = true;
    if (!f.reading) this.read(follow, f);
  }

  /** The subscriber wrote out what it was given: the next page of its replay, if one is due. */
  private drained(follow: Follow, f: Follower): void {
    if (!f.paused || f.closed) return;
    f.paused = false;
    this.read(follow, f);
  }

  private setPosition(f: Follower, id: string | undefined, inLog: boolean): void {
    f.lastId = id;
    f.lastParsed = id === undefined ? undefined : parseEventId(id);
    f.lastInLog = inLog;
  }

  /** Delivers the events newer than the follower's last id, in id order. */
  private deliver(f: Follower, events: readonly HomeEvent[], how: Omit<FeedBatch, 'events'>): void {
    if (f.closed) return;
    const last = f.lastParsed;
    const fresh = last === undefined ? events : events.filter((e) => compareEventIdTo(e.id, last) > 0);
    if (fresh.length > 0) this.setPosition(f, fresh[fresh.length - 1]!.id, true);
    if (fresh.length === 0 && !how.gap) return;
    try {
      f.listener({ ...how, events: fresh });
    } catch (err) {
      this.log.error({ err }, 'event listener threw');
    }
  }

  /** Reads a page of the follower's log after its position (resumption or catch-up), then lets its waiting live events through. */
  private read(follow: Follow, f: Follower): void {
    if (f.reading || f.closed || f.paused || !follow.subscribed) return;
    f.reading = true;
    f.needsRead = false;
    f.live ??= [];
    this.limited(() => this.readLog(follow.key, f)).then(
      (page) => {
        f.reading = false;
        if (f.closed) return;
        f.first = false;
        f.resumeAfter = undefined;
        const { events, gap, gapAfter } = page;
        this.deliver(f, events, gap ? { replay: true, gap, gapAfter } : { replay: true, gap });
        // Entries that did not decode are behind it too (else a page of them would be read forever).
        if (page.through !== undefined && (f.lastParsed === undefined || compareEventIdTo(page.through, f.lastParsed) > 0))
          this.setPosition(f, page.through, true);
        f.followed();
        if (this.failing) this.log.info('event logs readable again');
        this.failing = false;
        if (page.more) {
          // The next page once this one is written out; live events wait (bounded) meanwhile.
          f.paused = true;
          f.needsRead = true;
          return;
        }
        if (f.needsRead) {
          // The connection dropped (or an announcement was missed) during the read: read again.
          this.read(follow, f);
          return;
        }
        this.flushLive(follow, f);
      },
      (err: unknown) => {
        f.reading = false;
        f.needsRead = true;
        this.failed(err, follow.homeId, 'read');
      },
    );
  }

  /** Delivers what waited behind a read, in order, until one shows a missed announcement. */
  private flushLive(follow: Follow, f: Follower): void {
    const live = f.live ?? [];
    f.live = undefined;
    f.liveCount = 0;
    for (const a of live) if (!this.onLive(follow, f, a)) return;
  }

  /**
   * One read of the home's newest id for all its followers: those behind it (that were not told,
   * or lost their connection) read the log, those that lost their connection but are not behind
   * go on with what waited. Run after a lost connection, and every `checkEveryMs`.
   */
  private check(follow: Follow): void {
    if (follow.checking || !follow.subscribed) return;
    follow.checking = true;
    const epoch = this.epoch;
    this.limited(() => this.deps.client.xrevrange(follow.key, '+', '-', 'COUNT', 1)).then(
      (reply) => {
        follow.checking = false;
        if (this.homes.get(follow.homeId) !== follow) return;
        if (epoch !== this.epoch || !follow.subscribed) {
          // The connection dropped meanwhile: a check after its resubscription decides.
          if (follow.subscribed) this.check(follow);
          return;
        }
        const newest = reply[0]?.[0];
        const parsed = newest === undefined ? undefined : parseEventId(newest);
        const seen = follow.seen;
        for (const f of [...follow.followers]) {
          if (f.first || f.reading || f.paused || f.closed) continue;
          const behind = parsed !== undefined && (f.lastParsed === undefined || compareEventIdTo(newest!, f.lastParsed) > 0);
          if (f.needsRead) {
            if (behind) this.read(follow, f);
            else {
              f.needsRead = false;
              this.flushLive(follow, f);
            }
          } else if (behind && (seen === undefined || compareEventIdTo(newest!, seen) > 0)) {
            // Written, and never announced here: the announcement was lost with none after it.
            this.mustRead(follow, f);
          }
        }
      },
      (err: unknown) => {
        // Followers that wait for it (needsRead) read their logs once the retry comes.
        follow.checking = false;
        this.failed(err, follow.homeId, 'read');
      },
    );
  }

  /** What the log holds after the follower's position (a page of it), and whether its position is still in the log. */
  private async readLog(key: string, f: Follower): Promise<Page> {
    const client = this.deps.client;
    if (f.first) {
      const after = f.resumeAfter;
      if (after === undefined || !isEventId(after)) {
        // No resumption (or one from an id that is not an event id): follow on from the newest
        // entry. Live events that came meanwhile are newer, or were written before the read
        // but after the subscription: those are delivered too.
        const newest = (await client.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
        const firstLive = f.live?.[0]?.events[0]?.id;
        if (firstLive !== undefined && (newest === undefined || compareEventIds(firstLive, newest) <= 0))
          this.setPosition(f, eventIdBefore(firstLive), false);
        else if (newest !== undefined) this.setPosition(f, newest, true);
        return after === undefined ? { events: [], gap: false, more: false } : { events: [], gap: true, gapAfter: after, more: false };
      }
      this.setPosition(f, after, true);
    }
    const from = f.lastId;
    if (from === undefined) {
      // The log was empty when it was followed: what was trimmed since was never delivered.
      const raw = await client.xrange(key, '-', '+', 'COUNT', REPLAY_PAGE);
      const gap = raw.length > 0 && (await this.trimmedAfter(key, '0-0'));
      return this.page(raw, key, gap, null, raw.length === REPLAY_PAGE);
    }
    if (!f.lastInLog) {
      // A position that is no entry: a gap only if an entry after it was trimmed.
      const raw = await client.xrange(key, `(${from}`, '+', 'COUNT', REPLAY_PAGE);
      if (raw.length === 0) return this.beyondLog(key, f, from);
      const gap = await this.trimmedAfter(key, from);
      return this.page(raw, key, gap, from, raw.length === REPLAY_PAGE);
    }
    // From the position itself (inclusive): when it is still the first entry read, nothing is missing.
    const raw = await client.xrange(key, from, '+', 'COUNT', REPLAY_PAGE + 1);
    if (raw[0]?.[0] === from) return this.page(raw.slice(1), key, false, from, raw.length === REPLAY_PAGE + 1);
    if (raw.length === 0) return this.beyondLog(key, f, from);
    // Gone: what is kept follows the reset; the position is no entry any more.
    this.setPosition(f, from, false);
    return this.page(raw, key, true, from, raw.length === REPLAY_PAGE + 1);
  }

  private page(raw: readonly [string, string[]][], key: string, gap: boolean, gapAfter: string | null, more: boolean): Page {
    const events = this.decode(raw, key);
    const through = raw[raw.length - 1]?.[0];
    const base = gap ? { events, gap, gapAfter, more } : { events, gap, more };
    return through === undefined ? base : { ...base, through };
  }

  /**
   * Nothing at or after `from` is in the log. If `from` is an entry that is gone, or is beyond the
   * newest (a Last-Event-ID of another log, a tail a failover lost), that is a gap, and the
   * position moves into the log (its newest entry; nothing when it is empty) so that every new
   * entry follows: new ids are only known to grow past the log's newest, not past `from`.
   */
  private async beyondLog(key: string, f: Follower, from: string): Promise<Page> {
    const newest = (await this.deps.client.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
    if (newest === undefined) {
      // An empty log: a gap for a position that was an entry (it is gone); none for one that was not.
      if (!f.lastInLog) return { events: [], gap: false, more: false };
      this.setPosition(f, undefined, false);
      return { events: [], gap: true, gapAfter: from, more: false };
    }
    this.setPosition(f, newest, true);
    return { events: [], gap: true, gapAfter: from, more: false };
  }

  /**
   * True when an entry after `position` was trimmed (or deleted). Trimming takes the oldest, so it
   * did when the log lost entries (Redis 7: `entries-added` past its length; 6.2, which does not
   * count: the log is at its length) and its first entry is after the position, unless that entry
   * directly follows the position (a position just before an entry it was given live). Redis 7
   * also names the newest deleted id. A log that is not there tells nothing.
   */
  private async trimmedAfter(key: string, position: string): Promise<boolean> {
    let info: unknown[];
    try {
      info = (await this.deps.client.xinfo('STREAM', key)) as unknown[];
    } catch (err) {
      if (err instanceof Error && /no such key/i.test(err.message)) return false;
      throw err;
    }
    const field = (name: string): unknown => {
      for (let i = 0; i + 1 < info.length; i += 2) if (info[i] === name) return info[i + 1];
      return undefined;
    };
    const maxDeleted = field('max-deleted-entry-id');
    if (typeof maxDeleted === 'string' && compareEventIds(maxDeleted, position) > 0) return true;
    const first = (field('first-entry') as [string, unknown] | null | undefined)?.[0];
    if (first === undefined || compareEventIds(first, position) <= 0 || first === eventIdAfter(position)) return false;
    const length = Number(field('length'));
    const added = field('entries-added');
    return added === undefined || added === null ? length >= this.logLength : Number(added) > length;
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

  /** Runs a read of the logs when one of `MAX_CONCURRENT_READS` is free (a reconnect with many streams does not read all at once). */
  private async limited<T>(read: () => Promise<T>): Promise<T> {
    if (this.activeReads < MAX_CONCURRENT_READS) this.activeReads++;
    else await new Promise<void>((resolve) => this.waitingReads.push(resolve));
    try {
      return await read();
    } finally {
      // The slot goes straight to the next waiting read, if any.
      const next = this.waitingReads.shift();
      if (next) next();
      else this.activeReads--;
    }
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
