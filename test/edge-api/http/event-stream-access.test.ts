/** SSE streams re-check their token: a revoked or narrowed grant ends an open stream; a store outage does not. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashSecret } from '../../../edge-api/auth/secrets.ts';
import { defaultTokenGrantCache } from '../../../edge-api/auth/token-grant-cache.ts';
import { ACCESS_RECHECK_MS, ACCESS_REVOKED_EVENT } from '../../../edge-api/http/event-stream.ts';
import { closeEdges, openSse, startEdge, type Edge } from './harness.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeEdges();
});

/** Waits long enough for a cache TTL plus a re-check interval (both small in these tests) on a loaded machine. */
const ENDS = { timeout: 5_000, interval: 5 };

/** Opens `homeId`'s stream with `token` and waits until it is live (an event published now reaches it). */
async function liveStream(edge: Edge, homeId: string, token: string) {
  const sse = await openSse(await edge.call('GET', `/v1/homes/${homeId}/events`, { token }));
  await vi.waitFor(() => {
    edge.feed.publish(homeId, 'warmup', {});
    expect(sse.events().some((e) => e.event === 'warmup')).toBe(true);
  });
  return sse;
}

const topics = (sse: Awaited<ReturnType<typeof liveStream>>): string[] => sse.events().map((e) => e.event ?? '');

describe('HTTP edge: live events (SSE) after the guard', () => {
  it('keeps the promise of revocation on every node within 1 s: token cache TTL + stream re-check', () => {
    expect(defaultTokenGrantCache.ttlMs + ACCESS_RECHECK_MS).toBeLessThanOrEqual(1_000);
  });

  it('ends a stream as soon as its token is revoked on this node, and writes no event published after that', async () => {
    // Heartbeats (and so periodic re-checks) far apart: only the revocation itself can end the stream.
    const edge = startEdge({ sseHeartbeatMs: 60_000 });
    const token = await edge.mintToken(['h1'], ['read']);
    const sse = await liveStream(edge, 'h1', token);
    edge.feed.publish('h1', 'before', {});
    await vi.waitFor(() => expect(topics(sse)).toContain('before'));

    expect((await edge.call('POST', '/v1/tokens/revoke', { body: { token } })).status).toBe(204);
    edge.feed.publish('h1', 'after', {});
    await vi.waitFor(() => expect(sse.ended()).toBe(true));
    expect(topics(sse)).not.toContain('after');
    expect(topics(sse).at(-1)).toBe(ACCESS_REVOKED_EVENT);
    expect(sse.events().at(-1)!.data).toEqual({ error: { code: 'token_revoked', message: expect.any(String) } });
    // The EventSource reconnects into the guard, which refuses it.
    expect((await edge.call('GET', '/v1/homes/h1/events', { token })).status).toBe(401);
  });

  it('ends a stream whose token was revoked on another node, within the cache TTL and a re-check', async () => {
    const edge = startEdge({ sseHeartbeatMs: 20, tokenCache: { ttlMs: 50 } });
    const token = await edge.mintToken(['h1'], ['read']);
    const sse = await liveStream(edge, 'h1', token);
    // Another node revoked it: the store no longer has it, this node's cache was not told.
    await edge.credentials.revokeToken(hashSecret(token));
    await vi.waitFor(() => {
      edge.feed.publish('h1', 'tick', {});
      expect(sse.ended()).toBe(true);
    }, ENDS);
    expect(topics(sse).at(-1)).toBe(ACCESS_REVOKED_EVENT);
    expect(sse.events().at(-1)!.data).toMatchObject({ error: { code: 'token_revoked' } });
  });

  it('ends a stream whose token no longer grants the home', async () => {
    const edge = startEdge({ sseHeartbeatMs: 20, tokenCache: { ttlMs: 0 } });
    const token = await edge.mintToken(['h1', 'h2'], ['read']);
    const sse = await liveStream(edge, 'h1', token);
    const other = await liveStream(edge, 'h2', token);
    await edge.credentials.putToken(hashSecret(token), { homes: ['h2'], scopes: ['read'], createdAt: 1 });
    await vi.waitFor(() => expect(sse.ended()).toBe(true), ENDS);
    expect(sse.events().at(-1)).toMatchObject({ event: ACCESS_REVOKED_EVENT, data: { error: { code: 'forbidden' } } });
    // The home still granted keeps streaming.
    edge.feed.publish('h2', 'still', {});
    await vi.waitFor(() => expect(topics(other)).toContain('still'));
    expect(other.ended()).toBe(false);
    await other.close();
  });

  it('keeps serving while the store cannot answer a re-check, and checks again until it can', async () => {
    const edge = startEdge({ sseHeartbeatMs: 10, tokenCache: { ttlMs: 0 } });
    const token = await edge.mintToken(['h1'], ['read']);
    const sse = await liveStream(edge, 'h1', token);
    const find = vi.spyOn(edge.credentials, 'findToken').mockRejectedValue(new Error('redis down'));
    await vi.waitFor(() => expect(find.mock.calls.length).toBeGreaterThanOrEqual(3));
    edge.feed.publish('h1', 'during.outage', {});
    await vi.waitFor(() => expect(topics(sse)).toContain('during.outage'));
    expect(sse.ended()).toBe(false);

    find.mockRestore();
    await edge.credentials.revokeToken(hashSecret(token));
    await vi.waitFor(() => expect(sse.ended()).toBe(true), ENDS);
  });

  it('does not re-check the admin token, which cannot be revoked', async () => {
    const edge = startEdge({ sseHeartbeatMs: 10, tokenCache: { ttlMs: 0 } });
    const find = vi.spyOn(edge.credentials, 'findToken');
    const sse = await openSse(await edge.call('GET', '/v1/homes/h1/events'));
    await vi.waitFor(() => expect(sse.blocks.filter((b) => b.comment === 'ping').length).toBeGreaterThanOrEqual(3));
    expect(find).not.toHaveBeenCalled();
    expect(sse.ended()).toBe(false);
    await sse.close();
  });
});
