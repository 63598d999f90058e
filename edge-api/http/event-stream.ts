/** Live events of a home over SSE: replay after Last-Event-ID, a reset on a gap, heartbeats, access re-checks, cleanup on abort. */
import type { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { Logger } from '../../runtime/logger.ts';
import type { EventFeed, HomeEvent } from '../events/event-feed.ts';
import { recheckAccess, type AccessLost } from './access-guard.ts';
import { lastEventId } from './request-input.ts';
import type { RouteContext } from './route-context.ts';

/** Events queued for one slow client; past it the stream is closed and the client resumes from its last id. */
export const MAX_PENDING_EVENTS = 1_000;
/** Milliseconds an EventSource waits before it reconnects (sent as `retry:` when the stream opens). */
export const SSE_RETRY_MS = 2_000;
/**
 * Milliseconds between two re-checks of an app token's grant on an open stream at most (less
 * when heartbeats are more frequent). The re-check goes through the guard's token cache, so a
 * revocation on another node ends the stream within the cache's TTL plus this (1.5 s by
 * default); one on this node ends it at once.
 */
export const ACCESS_RECHECK_MS = 500;
/** The last event of a stream whose caller lost access; data `{error: {code, message}}`. */
export const ACCESS_REVOKED_EVENT = 'access.revoked';

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
  readonly afterId: number | undefined;
  readonly heartbeatMs: number;
  /** Absent for the admin token, which cannot be revoked. */
  readonly access: StreamAccess | undefined;
  readonly log: Logger;
}

const send = (stream: SSEStreamingApi, e: HomeEvent): Promise<void> =>
  stream.writeSSE({ id: String(e.id), event: e.topic, data: JSON.stringify(e.data) });

const REVOKED_HERE: AccessLost = { code: 'unauthenticated', message: 'the bearer token was revoked' };

/**
 * Runs one stream until the client goes away or loses access. Feed listeners run inside the
 * publisher's call, so they only queue and wake the writer loop; writes are sequential and wait
 * for the client (backpressure), which is why a client that cannot keep up is cut off rather than
 * buffered without bound.
 *
 * Access: the guard ran once, when the stream opened. A revocation on this node ends the stream
 * before the next event is written; on other nodes a periodic re-check finds it. Re-checks run
 * beside delivery (one at a time), so a slow store delays no event. A re-check the store cannot
 * answer keeps the stream serving and is tried again at the next tick: a store outage must not
 * cut every healthy stream (whose clients would reconnect into 503s), and while the store is down
 * no token can be revoked through it either.
 */
async function pump(stream: SSEStreamingApi, feed: EventFeed, opts: StreamOptions): Promise<void> {
  const { access, log } = opts;
  const pending: HomeEvent[] = [];
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
  // Subscribing returns the replay and starts live delivery in one step: nothing falls between.
  const sub = feed.subscribe(
    opts.homeId,
    (event) => {
      if (pending.length >= MAX_PENDING_EVENTS) overflowed = true;
      else pending.push(event);
      signal();
    },
    opts.afterId,
  );
  const unwatch = access?.watchRevocation(() => accessLost(REVOKED_HERE));
  const rechecks = access === undefined ? undefined : setInterval(recheck, access.everyMs);
  const heartbeat = setInterval(() => {
    ping = true;
    signal();
  }, opts.heartbeatMs);
  stream.onAbort(signal);
  try {
    await stream.write(`retry: ${SSE_RETRY_MS}\n\n`);
    if (sub.gap) {
      // Events after the client's last id are gone: it must re-read state, then follow on.
      await stream.writeSSE({ event: 'reset', data: JSON.stringify({ reason: 'gap', lastEventId: opts.afterId ?? null }) });
    }
    let replayed = 0;
    // `lost` is read before every write: once a revocation is known, no further event goes out.
    while (!stream.aborted && !overflowed && lost === undefined) {
      const e = replayed < sub.replay.length ? sub.replay[replayed++] : pending.shift();
      if (e !== undefined) await send(stream, e);
      else if (ping) {
        ping = false;
        await stream.write(': ping\n\n');
      } else await new Promise<void>((resolve) => (wake = resolve));
    }
    if (lost !== undefined && !stream.aborted) {
      // Tells the app why; its EventSource reconnects into the guard's 401/403 and stops there.
      await stream.writeSSE({ event: ACCESS_REVOKED_EVENT, data: JSON.stringify({ error: lost }) });
    }
  } finally {
    clearInterval(heartbeat);
    clearInterval(rechecks);
    unwatch?.();
    sub.unsubscribe();
  }
}

export function registerEventStream(app: Hono, ctx: RouteContext): void {
  const log = ctx.logger.child({ component: 'sse' });
  const everyMs = Math.min(ctx.sseHeartbeatMs, ACCESS_RECHECK_MS);
  app.get('/v1/homes/:homeId/events', ctx.guard('read'), (c) => {
    const homeId = c.req.param('homeId');
    const afterId = lastEventId(c);
    const principal = c.get('principal');
    const access: StreamAccess | undefined =
      principal.kind === 'admin'
        ? undefined
        : {
            recheck: () => recheckAccess(c, ctx.tokens, 'read'),
            watchRevocation: (onRevoked) =>
              ctx.tokens.onRevoke((digest) => {
                if (digest === principal.digest) onRevoked();
              }),
            everyMs,
          };
    return streamSSE(c, async (stream) => {
      try {
        await pump(stream, ctx.feed, { homeId, afterId, heartbeatMs: ctx.sseHeartbeatMs, access, log });
      } catch (err) {
        // Logged here and the stream ends: Hono's own handler would write the message to the client.
        log.error({ err, homeId }, 'event stream failed');
      }
    });
  });
}
