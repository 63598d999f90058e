/** Event streams whose body is never read, or no longer read, give their slot back: HEAD, a client gone before reading, a client that stops reading. */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SSE_MIN_WRITE_TIMEOUT_MS } from '../../../edge-api/http/event-stream.ts';
import { closeEdges, openSse, startEdge, type Edge } from './harness.ts';

const servers: ServerType[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          (s as ServerType & { closeAllConnections(): void }).closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
  await closeEdges();
});

async function openStreams(edge: Edge): Promise<number> {
  const metric = edge.registry.getSingleMetric('iot_http_sse_open_streams');
  if (metric === undefined) throw new Error('no iot_http_sse_open_streams gauge');
  return (await metric.get()).values[0]?.value ?? 0;
}

/** The edge on a real @hono/node-server (the server decides what happens to a HEAD's body). */
async function listen(edge: Edge): Promise<string> {
  const server = serve({ fetch: edge.app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('HTTP edge: event streams that are not read give their slots back', () => {
  it('answers HEAD with the stream headers and no body, taking no slot: HEADs past the cap leave GET open', async () => {
    const edge = startEdge({ sseLimit: { perToken: 2, perHome: 2 } });
    const token = await edge.mintToken(['h1'], ['read']);
    const base = await listen(edge);
    const headers = { authorization: `Bearer ${token}` };
    // Before the fix each HEAD held a slot forever (its body was dropped, its first write never returned): the third got 429.
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${base}/v1/homes/h1/events`, { method: 'HEAD', headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(await res.text()).toBe('');
    }
    expect(await openStreams(edge)).toBe(0);
    // The guard still runs first: a HEAD without a token is refused as a GET would be.
    expect((await fetch(`${base}/v1/homes/h1/events`, { method: 'HEAD' })).status).toBe(401);

    const sse = await openSse(await fetch(`${base}/v1/homes/h1/events`, { headers }));
    await vi.waitFor(() => {
      edge.feed.publish('h1', 'hello', {});
      expect(sse.events().some((e) => e.event === 'hello')).toBe(true);
    });
    expect(await openStreams(edge)).toBe(1);
    await sse.close();
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(0));
  });

  it('ends a stream whose client left before its body was ever read, on the request signal', async () => {
    // The default heartbeat: its write deadline (45 s) cannot be what ends this stream.
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 1 } });
    const token = await edge.mintToken(['h1'], ['read']);
    const gone = new AbortController();
    const res = await edge.app.request('/v1/homes/h1/events', { headers: { authorization: `Bearer ${token}` }, signal: gone.signal });
    expect(res.status).toBe(200);
    expect(await openStreams(edge)).toBe(1);
    gone.abort();
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(0), { timeout: 5_000 });
    const next = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token }));
    await next.close();
  });

  it('ends a stream whose client stops reading once a write misses its deadline, and keeps a reading one', async () => {
    // Heartbeats every 20 ms: the deadline is its floor, SSE_MIN_WRITE_TIMEOUT_MS.
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 10 }, sseHeartbeatMs: 20 });
    const stalled = await edge.mintToken(['h1'], ['read']);
    const reading = await edge.mintToken(['h1'], ['read']);
    const live = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token: reading }));
    // Reads the first chunk (the retry hint), then never again: its next write waits for a reader that never comes.
    const res = await edge.call('GET', '/v1/homes/h1/events', { token: stalled });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('retry:');
    edge.feed.publish('h1', 'unread', { big: 'x'.repeat(1_000) });
    expect(await openStreams(edge)).toBe(2);

    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(1), { timeout: SSE_MIN_WRITE_TIMEOUT_MS + 5_000, interval: 50 });
    // The token's slot is free again; the stream that kept reading was not cut and still gets events.
    const again = await openSse(await edge.call('GET', '/v1/homes/h1/events', { token: stalled }));
    expect(live.ended()).toBe(false);
    edge.feed.publish('h1', 'after', {});
    await vi.waitFor(() => expect(live.events().map((e) => e.event)).toContain('after'));
    await Promise.all([again.close(), live.close(), reader.cancel()]);
  });
});
