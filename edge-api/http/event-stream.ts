/** Live events of a home over SSE: replay after Last-Event-ID, a reset on a gap, heartbeats, cleanup on abort. */
import type { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { EventFeed, HomeEvent } from '../events/event-feed.ts';
import { lastEventId } from './request-input.ts';
import type { RouteContext } from './route-context.ts';

/** Events queued for one slow client; past it the stream is closed and the client resumes from its last id. */
export const MAX_PENDING_EVENTS = 1_000;
/** Milliseconds an EventSource waits before it reconnects (sent as `retry:` when the stream opens). */
export const SSE_RETRY_MS = 2_000;

interface StreamOptions {
  readonly homeId: string;
  readonly afterId: number | undefined;
  readonly heartbeatMs: number;
}

const send = (stream: SSEStreamingApi, e: HomeEvent): Promise<void> =>
  stream.writeSSE({ id: String(e.id), event: e.topic, data: JSON.stringify(e.data) });

/**
 * Runs one stream until the client goes away. Feed listeners run inside the publisher's call, so
 * they only queue and wake the writer loop; writes are sequential and wait for the client
 * (backpressure), which is why a client that cannot keep up is cut off rather than buffered
 * without bound.
 */
async function pump(stream: SSEStreamingApi, feed: EventFeed, opts: StreamOptions): Promise<void> {
  const pending: HomeEvent[] = [];
  let overflowed = false;
  let ping = false;
  let wake: (() => void) | undefined;
  const signal = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
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
    for (const e of sub.replay) await send(stream, e);
    while (!stream.aborted && !overflowed) {
      const e = pending.shift();
      if (e !== undefined) await send(stream, e);
      else if (ping) {
        ping = false;
        await stream.write(': ping\n\n');
      } else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    clearInterval(heartbeat);
    sub.unsubscribe();
  }
}

export function registerEventStream(app: Hono, ctx: RouteContext): void {
  const log = ctx.logger.child({ component: 'sse' });
  app.get('/v1/homes/:homeId/events', ctx.guard('read'), (c) => {
    const homeId = c.req.param('homeId');
    const afterId = lastEventId(c);
    return streamSSE(c, async (stream) => {
      try {
        await pump(stream, ctx.feed, { homeId, afterId, heartbeatMs: ctx.sseHeartbeatMs });
      } catch (err) {
        // Logged here and the stream ends: Hono's own handler would write the message to the client.
        log.error({ err, homeId }, 'event stream failed');
      }
    });
  });
}
