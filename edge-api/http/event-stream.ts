/** Live events of a home over SSE: caps per token and home, replay after Last-Event-ID (on any node), a reset on a gap, heartbeats, access re-checks, a write deadline, cleanup on abort. */
import { createRoute } from '@hono/zod-openapi';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { Logger } from '../../runtime/logger.ts';
import type { HomeEvent, HomeEventFeed } from '../events/home-event-feed.ts';
import { recheckAccess, TOKEN_REVOKED, type AccessLost } from './access-guard.ts';
import type { EventStreamSlots } from './event-stream-slots.ts';
import { declareRoute } from './declare-route.ts';
import { HttpError } from './http-error.ts';
import { lastEventId } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import { errorResponses, homeIdParam, securityOf, z, type EdgeApp } from './api-schemas.ts';
import { HomeEventSchema, homeEventExample, LAST_EVENT_ID } from './schemas/event-schemas.ts';

/**
 * Live events queued for one slow client; past it the stream is closed and the client resumes from
 * its last id. A replay does not count: the feed hands it over a page at a time, the next page
 * once the queue has drained (so at most a page of it waits here).
 */
export const MAX_PENDING_EVENTS = 1_000;
/** Milliseconds an EventSource waits before it reconnects (sent as `retry:` when the stream opens). */
export const SSE_RETRY_MS = 2_000;
/**
 * Milliseconds between two re-checks of an app token's grant on an open stream at most (less
 * when heartbeats are more frequent). The re-check goes through the guard's token cache, so a
 * revocation on another node ends the stream within the cache's TTL plus this (900 ms by
 * default: the "effective on every node within 1 s"); one on this node ends it at once.
 */
export const ACCESS_RECHECK_MS = 400;
/** The last event of a stream whose caller lost access; data `{error: {code, message}}`. */
export const ACCESS_REVOKED_EVENT = 'access.revoked';
/**
 * A write the client has not taken after this many heartbeat intervals ends the stream (so 45 s
 * with the default 15 s heartbeat): a client that keeps its connection open but stops reading
 * would otherwise hold its slot, subscription and timers forever, since every write waits for it.
 */
export const SSE_WRITE_TIMEOUT_HEARTBEATS = 3;
/**
 * Milliseconds the stream waits for the feed to follow the home before it writes its first line
 * (`retry:`): a client that got that line gets every event written after it. Past this (the store
 * is down) the stream opens anyway and catches up once the feed can read the log.
 */
export const SSE_FOLLOW_WAIT_MS = 2_000;
/** The shortest write deadline, whatever the heartbeat: a brief stall of a healthy client is not a stop. */
export const SSE_MIN_WRITE_TIMEOUT_MS = 1_000;
/** What a HEAD of the events route answers (Hono routes HEAD to the GET handler and drops the body). */
const SSE_HEADERS = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' } as const;

/** How an app token's stream keeps checking that its caller still may read the home. */
interface StreamAccess {
  /** Resolves undefined while access holds, else why it was lost; rejects when the store cannot answer. */
  readonly recheck: () => Promise<AccessLost | undefined>;
  /** Calls `onRevoked` when the caller's token is revoked on this node; returns the unsubscribe. */
  readonly watchRevocation: (onRevoked: () => void) => () => void;
  /** Milliseconds between re-checks. */
  readonly everyMs: number;
}

interface StreamOptions {
  readonly homeId: string;
  /** The Last-Event-ID the client sent, as sent (the feed tells a gap when it is not an id of the home's log). */
  readonly afterId: string | undefined;
  readonly heartbeatMs: number;
  /** Absent for the admin token, which cannot be revoked. */
  readonly access: StreamAccess | undefined;
  readonly log: Logger;
}

const send = (stream: SSEStreamingApi, e: HomeEvent): Promise<void> =>
  stream.writeSSE({ id: e.id, event: e.topic, data: JSON.stringify(e.data) });

/** What waits for the writer: an event (from a replay or live) or a reset (events after `after` may be gone). */
type Queued = { readonly event: HomeEvent; readonly replay: boolean } | { readonly reset: string | null };

/**
 * Runs one stream until the client goes away or loses access. Feed listeners run inside the
 * publisher's call, so they only queue and wake the writer loop; writes are sequential and wait
 * for the client (backpressure), which is why a client that cannot keep up is cut off rather than
 * buffered without bound, and one that stops reading is cut off when a write misses its deadline.
 *
 * Access: the guard ran once, when the stream opened. A revocation on this node ends the stream
 * before the next event is written; on other nodes a periodic re-check finds it. Re-checks run
 * beside delivery (one at a time), so a slow store delays no event. A re-check the store cannot
 * answer keeps the stream serving and is tried again at the next tick: a store outage must not
 * cut every healthy stream (whose clients would reconnect into 503s), and while the store is down
 * no token can be revoked through it either.
 */
async function pump(stream: SSEStreamingApi, feed: HomeEventFeed, opts: StreamOptions): Promise<void> {
  const { access, log } = opts;
  const writeTimeoutMs = Math.max(SSE_MIN_WRITE_TIMEOUT_MS, SSE_WRITE_TIMEOUT_HEARTBEATS * opts.heartbeatMs);
  let tooSlow = false;
  /** Waits for one write; when the client has not taken it in time, aborts the stream (which also settles the write). */
  const timely = async (write: Promise<unknown>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        tooSlow = true;
        stream.abort();
        resolve();
      }, writeTimeoutMs);
    });
    try {
      await Promise.race([write, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const pending: Queued[] = [];
  /** Live events in `pending` (the bound applies to them only: a replay is bounded by the log's length). */
  let liveQueued = 0;
  let overflowed = false;
  let ping = false;
  let lost: AccessLost | undefined;
  let checking = false;
  let storeFailing = false;
  let wake: (() => void) | undefined;
  const signal = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const accessLost = (why: AccessLost): void => {
    lost ??= why;
    signal();
  };
  const recheck = (): void => {
    if (access === undefined || checking || lost !== undefined) return;
    checking = true;
    access.recheck().then(
      (why) => {
        checking = false;
        if (storeFailing) log.info({ homeId: opts.homeId }, 'event stream token re-check works again');
        storeFailing = false;
        if (why !== undefined) accessLost(why);
      },
      (err: unknown) => {
        checking = false;
        // Once per outage and stream, not once per tick.
        if (!storeFailing) log.warn({ err, homeId: opts.homeId }, 'cannot re-check the event stream token; serving on, retrying');
        storeFailing = true;
      },
    );
  };
  // The feed delivers the replay, a reset on a gap and live events in order, each event once.
  const sub = feed.subscribe(
    opts.homeId,
    (batch) => {
      if (batch.gap) pending.push({ reset: batch.gapAfter ?? null });
      if (!batch.replay && liveQueued + batch.events.length > MAX_PENDING_EVENTS) overflowed = true;
      else {
        for (const event of batch.events) pending.push({ event, replay: batch.replay });
        if (!batch.replay) liveQueued += batch.events.length;
      }
      signal();
    },
    opts.afterId,
  );
  const unwatch = access?.watchRevocation(() => accessLost(TOKEN_REVOKED));
  const rechecks = access === undefined ? undefined : setInterval(recheck, access.everyMs);
  const heartbeat = setInterval(() => {
    ping = true;
    signal();
  }, opts.heartbeatMs);
  stream.onAbort(signal);
  try {
    let waited: NodeJS.Timeout | undefined;
    const followed = await Promise.race([
      sub.following.then(() => true),
      new Promise<boolean>((resolve) => (waited = setTimeout(() => resolve(false), SSE_FOLLOW_WAIT_MS))),
    ]);
    clearTimeout(waited);
    // Not following yet (the store is down): a stream without Last-Event-ID will follow on from
    // the log's newest entry once it can read it, so events written after this first line and
    // before that read would be skipped unseen; the client is told first (then nothing is lost
    // silently). With Last-Event-ID the replay starts from it, whenever it can be read.
    if (!followed && opts.afterId === undefined) pending.unshift({ reset: null });
    await timely(stream.write(`retry: ${SSE_RETRY_MS}\n\n`));
    // `lost` is read before every write: once a revocation is known, no further event goes out.
    while (!stream.aborted && !overflowed && lost === undefined) {
      const next = pending.shift();
      if (next !== undefined) {
        if ('reset' in next) {
          // Events after the client's last id may be gone: it must re-read state, then follow on.
          await timely(stream.writeSSE({ event: 'reset', data: JSON.stringify({ reason: 'gap', lastEventId: next.reset }) }));
        } else {
          if (!next.replay) liveQueued--;
          await timely(send(stream, next.event));
        }
      } else if (ping) {
        ping = false;
        await timely(stream.write(': ping\n\n'));
      } else {
        // Everything given is written: the feed may hand over the next page of a replay (which
        // may come inside this call, so only then is the writer put to sleep).
        sub.drained();
        if (pending.length === 0 && !ping) await new Promise<void>((resolve) => (wake = resolve));
      }
    }
    if (lost !== undefined && !stream.aborted) {
      // Tells the app why; its EventSource reconnects into the guard's 401/403 and stops there.
      await timely(stream.writeSSE({ event: ACCESS_REVOKED_EVENT, data: JSON.stringify({ error: lost }) }));
    }
    if (tooSlow) log.info({ homeId: opts.homeId, writeTimeoutMs }, 'event stream client stopped reading: stream ended');
  } finally {
    clearInterval(heartbeat);
    clearInterval(rechecks);
    unwatch?.();
    sub.unsubscribe();
  }
}

const eventsRoute = createRoute({
  method: 'get',
  path: '/v1/homes/{homeId}/events',
  tags: ['Events'],
  summary: 'Live events of the home (server-sent events), resumable with Last-Event-ID',
  description:
    `A \`text/event-stream\`: \`retry: ${SSE_RETRY_MS}\` first, then one SSE event per change (\`id\`, \`event\`, \`data\` as ` +
    'JSON: see HomeEvent), and `: ping` comments while idle. Any node streams any home; an event id is opaque and resumes ' +
    'on any node with Last-Event-ID. A client that falls too far behind is cut off and resumes with Last-Event-ID; an app ' +
    'token that is revoked gets `access.revoked` last. HEAD answers the headers only.',
  security: securityOf('read'),
  request: { params: z.object({ homeId: homeIdParam }) },
  parameters: [LAST_EVENT_ID],
  responses: {
    200: {
      description: 'The stream; it runs until the client leaves, falls too far behind or loses access.',
      content: { 'text/event-stream': { schema: HomeEventSchema, example: homeEventExample } },
    },
    ...errorResponses('resource_exhausted'),
  },
});

/**
 * `GET /v1/homes/:homeId/events`. Each stream holds a slot of `slots` from the moment it is
 * accepted until it ends, however it ends (client gone, access lost, cut off as too slow, a
 * failure); past a cap the request is refused with 429 `resource_exhausted` before it streams.
 * A HEAD gets the stream's headers and takes no slot.
 */
export function registerEventStream(app: EdgeApp, ctx: RouteContext, slots: EventStreamSlots): void {
  const log = ctx.logger.child({ component: 'sse' });
  const everyMs = Math.min(ctx.sseHeartbeatMs, ACCESS_RECHECK_MS);
  declareRoute(app, { ...eventsRoute, middleware: [ctx.guard('read')] as const }, (c) => {
    const { homeId } = c.req.valid('param');
    const afterId = lastEventId(c);
    // Hono answers HEAD with this handler and discards the body: a stream would never be read, its
    // first write would wait forever and its slot would never come back.
    if (c.req.method === 'HEAD') return c.body(null, 200, SSE_HEADERS);
    const principal = c.get('principal');
    const slot = slots.take(principal.kind === 'admin' ? undefined : principal.digest, homeId);
    if (!slot.ok) {
      const whose = slot.scope === 'token' ? 'this token' : `home ${homeId}`;
      throw new HttpError(
        'resource_exhausted',
        `too many open event streams for ${whose} on this node (at most ${slot.limit}): close one before opening another`,
        { scope: slot.scope, limit: slot.limit },
      );
    }
    const access: StreamAccess | undefined =
      principal.kind === 'admin'
        ? undefined
        : {
            recheck: () => recheckAccess(c, ctx.tokens, 'read', ctx.clock()),
            watchRevocation: (onRevoked) =>
              ctx.tokens.onRevoke((digest) => {
                if (digest === principal.digest) onRevoked();
              }),
            everyMs,
          };
    // streamSSE runs the callback at once (not when the body is first read), so the slot is always given back.
    return streamSSE(c, async (stream) => {
      // A client that leaves without the body ever being read (so no read can fail and cancel the
      // stream): the request's signal aborts the stream, which settles a waiting write.
      const signal = c.req.raw.signal;
      const gone = (): void => stream.abort();
      signal.addEventListener('abort', gone, { once: true });
      if (signal.aborted) stream.abort();
      try {
        await pump(stream, ctx.feed, { homeId, afterId, heartbeatMs: ctx.sseHeartbeatMs, access, log });
      } catch (err) {
        // Logged here and the stream ends: Hono's own handler would write the message to the client.
        log.error({ err, homeId }, 'event stream failed');
      } finally {
        signal.removeEventListener('abort', gone);
        slot.release();
      }
    });
  });
}
