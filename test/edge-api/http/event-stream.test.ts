import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventFeed } from '../../../edge-api/events/event-feed.ts';
import { compareEventIds } from '../../../edge-api/events/event-id.ts';
import { MAX_PENDING_EVENTS, SSE_FOLLOW_WAIT_MS } from '../../../edge-api/http/event-stream.ts';
import { closeEdges, openSse, startEdge } from './harness.ts';

afterEach(closeEdges);

/** Counts live subscriptions of `feed` by wrapping subscribe/unsubscribe. */
function countSubscriptions(feed: EventFeed) {
  const counter = { open: 0 };
  const original = feed.subscribe.bind(feed);
  vi.spyOn(feed, 'subscribe').mockImplementation((homeId, listener, afterId) => {
    const sub = original(homeId, listener, afterId);
    counter.open++;
    let done = false;
    return {
      ...sub,
      unsubscribe: () => {
        if (!done) counter.open--;
        done = true;
        return sub.unsubscribe();
      },
    };
  });
  return counter;
}

describe('HTTP edge: live events (SSE)', () => {
  it('streams shadow and command events as they happen, and unsubscribes when the client leaves', async () => {
    const edge = startEdge();
    const subs = countSubscriptions(edge.feed);
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const token = await edge.mintToken(['h1'], ['read', 'control']);
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token }));
    await vi.waitFor(() => expect(subs.open).toBe(1));

    await edge.json('PATCH', '/v1/homes/h1/devices/d1', { token, body: { desired: { on: true } } });
    await edge.json('POST', '/v1/homes/h1/devices/d1/commands', {
      token,
      body: { name: 'set', params: { on: true } },
      headers: { 'idempotency-key': 'k1' },
    });
    await vi.waitFor(() => {
      const events = sse.events();
      expect(events.map((e) => e.event)).toEqual(['device.shadow', 'command.status']);
      expect(events[0]!.data).toMatchObject({ deviceId: 'd1', desired: { on: true } });
      expect(events[1]!.data).toMatchObject({ commandId: 'd1~k1', status: 'sent' });
      expect(events[0]!.id).toMatch(/^\d+-\d+$/);
      expect(compareEventIds(events[1]!.id!, events[0]!.id!)).toBeGreaterThan(0);
    });
    expect(sse.blocks[0]).toEqual({ retry: expect.stringMatching(/^\d+$/) });

    await sse.close();
    await vi.waitFor(() => expect(subs.open).toBe(0));
    edge.feed.publish('h1', 'after.close', {}); // nobody listens; nothing throws
  });

  it('resumes after Last-Event-ID with the buffered events', async () => {
    const edge = startEdge();
    const ids = [1, 2, 3, 4, 5].map((i) => edge.feed.publish('h1', 'tick', { i }).id);
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { headers: { 'last-event-id': ids[2]! } }));
    await vi.waitFor(() => expect(sse.events().map((e) => e.id)).toEqual([ids[3], ids[4]]));
    edge.feed.publish('h1', 'tick', { i: 6 });
    edge.feed.publish('h2', 'tick', { i: 99 }); // another home: not on this stream
    await vi.waitFor(() => expect(sse.events().map((e) => e.data)).toEqual([{ i: 4 }, { i: 5 }, { i: 6 }]));
    expect(sse.events().some((e) => e.event === 'reset')).toBe(false);
    await sse.close();
  });

  it('sends a reset first when events after Last-Event-ID are gone', async () => {
    const edge = startEdge({ feed: { bufferPerHome: 3 } });
    const ids = Array.from({ length: 10 }, (_, i) => edge.feed.publish('h1', 'tick', { i: i + 1 }).id);
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events', { headers: { 'last-event-id': ids[1]! } }));
    await vi.waitFor(() => expect(sse.events().map((e) => e.event ?? '')).toEqual(['reset', 'tick', 'tick', 'tick']));
    expect(sse.events()[0]!.data).toEqual({ reason: 'gap', lastEventId: ids[1] });
    expect(
      sse
        .events()
        .slice(1)
        .map((e) => e.id),
    ).toEqual(ids.slice(7));
    await sse.close();

    // An id from before a restart (newer than any this process issued) is a gap too; so is an old
    // numeric id or one that is no event id at all: a reset, then live events (never a 400 or 500).
    for (const stale of [`${Date.now() + 60_000}-0`, '5000', 'abc']) {
      const restarted = await openSse(await edge.call('GET', '/v1/homes/h1/events', { headers: { 'last-event-id': stale } }));
      await vi.waitFor(() =>
        expect(restarted.events()[0]).toEqual({ id: undefined, event: 'reset', data: { reason: 'gap', lastEventId: stale } }),
      );
      const next = edge.feed.publish('h1', 'tick', { i: 'live' }).id;
      await vi.waitFor(() => expect(restarted.events().map((e) => e.id)).toEqual([undefined, next]));
      await restarted.close();
    }
  });

  it('cuts off a client that does not read instead of queueing without bound', async () => {
    const edge = startEdge();
    const subs = countSubscriptions(edge.feed);
    const res = await edge.call('GET', '/v1/homes/h1/events');
    await vi.waitFor(() => expect(subs.open).toBe(1));
    for (let i = 0; i < MAX_PENDING_EVENTS + 100; i++) edge.feed.publish('h1', 'tick', { i });
    await vi.waitFor(() => expect(subs.open).toBe(0));
    const text = await res.text(); // the stream ended: the client would reconnect with Last-Event-ID
    expect(text.split('event: tick').length - 1).toBeLessThan(MAX_PENDING_EVENTS + 100);
  });

  it('sends heartbeats while idle', async () => {
    const edge = startEdge({ sseHeartbeatMs: 10 });
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events'));
    await vi.waitFor(() => expect(sse.blocks.filter((b) => b.comment === 'ping').length).toBeGreaterThanOrEqual(2));
    await sse.close();
  });

  it('sends a reset first when the feed cannot follow the home in time (without Last-Event-ID): nothing is skipped unseen', async () => {
    const edge = startEdge();
    const original = edge.feed.subscribe.bind(edge.feed);
    // A feed that cannot read the log yet (the store is down): it never says it follows.
    vi.spyOn(edge.feed, 'subscribe').mockImplementation((homeId, listener, afterId) => ({
      ...original(homeId, listener, afterId),
      following: new Promise<void>(() => {}),
    }));
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events'));
    await vi.waitFor(() => expect(sse.events()).toHaveLength(1), { timeout: SSE_FOLLOW_WAIT_MS + 3_000 });
    expect(sse.blocks[0]).toEqual({ retry: expect.stringMatching(/^\d+$/) });
    expect(sse.events()[0]).toMatchObject({ event: 'reset', data: { reason: 'gap', lastEventId: null } });
    await sse.close();
    // With Last-Event-ID the replay starts from it whenever it can: no reset for that.
    const edge2 = startEdge();
    const first = edge2.feed.publish('h1', 'x', {});
    const original2 = edge2.feed.subscribe.bind(edge2.feed);
    vi.spyOn(edge2.feed, 'subscribe').mockImplementation((homeId, listener, afterId) => ({
      ...original2(homeId, listener, afterId),
      following: new Promise<void>(() => {}),
    }));
    const resumed = await openSse(await edge2.call('GET', '/v1/homes/h1/events', { headers: { 'last-event-id': first.id } }));
    await vi.waitFor(() => expect(resumed.blocks.length).toBeGreaterThanOrEqual(1), { timeout: SSE_FOLLOW_WAIT_MS + 3_000 });
    edge2.feed.publish('h1', 'y', {});
    await vi.waitFor(() => expect(resumed.events().map((e) => e.event)).toEqual(['y']));
    await resumed.close();
  }, 15_000);

  it('tells the feed when it has written out everything it was given (the next replay page may come)', async () => {
    const edge = startEdge();
    const drained = vi.fn();
    const original = edge.feed.subscribe.bind(edge.feed);
    vi.spyOn(edge.feed, 'subscribe').mockImplementation((homeId, listener, afterId) => {
      const sub = original(homeId, listener, afterId);
      return { ...sub, drained: () => (drained(), sub.drained()) };
    });
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events'));
    await vi.waitFor(() => expect(drained).toHaveBeenCalled());
    const calls = drained.mock.calls.length;
    edge.feed.publish('h1', 'x', {});
    await vi.waitFor(() => expect(sse.events()).toHaveLength(1));
    await vi.waitFor(() => expect(drained.mock.calls.length).toBeGreaterThan(calls));
    await sse.close();
  });

  it('checks access before streaming', async () => {
    const edge = startEdge();
    const other = await edge.mintToken(['h2'], ['read']);
    const control = await edge.mintToken(['h1'], ['control']);
    expect((await edge.call('GET', '/v1/homes/h1/events', { token: null })).status).toBe(401);
    expect((await edge.call('GET', '/v1/homes/h1/events', { token: other })).status).toBe(403);
    expect((await edge.call('GET', '/v1/homes/h1/events', { token: control })).status).toBe(403);
  });
});

describe('HTTP edge: the event stream in the API document', () => {
  it('documents a text/event-stream with every event name, and the Last-Event-ID header', async () => {
    const doc = (await startEdge().json('GET', '/openapi.json', { token: null })).body;
    const op = doc.paths['/v1/homes/{homeId}/events'].get;
    expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['Last-Event-ID', 'homeId']);
    expect(op.responses['200'].content['text/event-stream'].example).toMatchObject({ event: 'device.shadow' });
    const events = doc.components.schemas.HomeEvent.oneOf.map(
      (e: { properties: { event: { enum: string[] } } }) => e.properties.event.enum[0],
    );
    expect(events).toEqual(['device.shadow', 'command.status', 'decision', 'notify', 'reset', 'access.revoked']);
    expect(op.responses['429'].content['application/json'].examples.resource_exhausted).toBeDefined();
  });
});
