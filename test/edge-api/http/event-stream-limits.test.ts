/** Caps on open event streams per app token and per home: 429 past them, and every way a stream ends gives its slot back. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashSecret } from '../../../edge-api/auth/secrets.ts';
import { EventStreamSlots } from '../../../edge-api/http/event-stream-slots.ts';
import { closeEdges, openSse, startEdge, type Edge } from './harness.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeEdges();
});

/** The open-streams gauge of the edge's registry. */
async function openStreams(edge: Edge): Promise<number> {
  const metric = edge.registry.getSingleMetric('iot_http_sse_open_streams');
  if (metric === undefined) throw new Error('no iot_http_sse_open_streams gauge');
  return (await metric.get()).values[0]?.value ?? 0;
}

const events = (edge: Edge, homeId: string, token?: string, headers?: Record<string, string>) =>
  edge.call('GET', `/v1/homes/${homeId}/events`, { ...(token === undefined ? {} : { token }), ...(headers ? { headers } : {}) });

async function refused(edge: Edge, homeId: string, token?: string) {
  const r = await edge.json('GET', `/v1/homes/${homeId}/events`, token === undefined ? {} : { token });
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe('resource_exhausted');
  return r.body.error as { message: string; details: { scope: string; limit: number } };
}

describe('HTTP edge: caps on open event streams', () => {
  it('refuses a token its next stream past perToken, serves other tokens, and takes it again once one of its streams ends', async () => {
    const edge = startEdge({ sseLimit: { perToken: 2, perHome: 10 } });
    const a = await edge.mintToken(['h1', 'h2'], ['read']);
    const b = await edge.mintToken(['h1'], ['read']);
    const first = await openSse(await events(edge, 'h1', a));
    const second = await openSse(await events(edge, 'h2', a));

    const error = await refused(edge, 'h1', a);
    expect(error.details).toEqual({ scope: 'token', limit: 2 });
    expect(error.message).toBe('too many open event streams for this token on this node (at most 2): close one before opening another');
    const other = await openSse(await events(edge, 'h1', b));
    expect(await openStreams(edge)).toBe(3);

    await first.close();
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(2));
    const again = await openSse(await events(edge, 'h1', a));
    await Promise.all([second.close(), other.close(), again.close()]);
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(0));
  });

  it('refuses a home its next stream past perHome, whoever opens it; the admin token is capped by home only', async () => {
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 2 } });
    const token = await edge.mintToken(['h1'], ['read']);
    // Two admin streams on one home: past perToken, which does not apply to the admin token.
    const admin1 = await openSse(await events(edge, 'h1'));
    const admin2 = await openSse(await events(edge, 'h1'));

    const error = await refused(edge, 'h1', token);
    expect(error.details).toEqual({ scope: 'home', limit: 2 });
    expect(error.message).toContain('for home h1');
    expect((await refused(edge, 'h1')).details.scope).toBe('home');
    const elsewhere = await openSse(await events(edge, 'h2'));

    await admin1.close();
    const app = await openSse(await events(edge, 'h1', token));
    await Promise.all([admin2.close(), elsewhere.close(), app.close()]);
  });

  it('takes no slot for a request refused before it streams', async () => {
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 1 } });
    const token = await edge.mintToken(['h1'], ['read']);
    for (let i = 0; i < 3; i++) {
      expect((await edge.call('GET', '/v1/homes/h1/events', { token: null })).status).toBe(401);
      expect((await events(edge, 'h2', token)).status).toBe(403);
    }
    expect(await openStreams(edge)).toBe(0);
    const sse = await openSse(await events(edge, 'h1', token));
    await sse.close();
  });

  it('gives the slots back when a stream ends because its token was revoked', async () => {
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 1 }, sseHeartbeatMs: 20, tokenCache: { ttlMs: 0 } });
    const revoked = await edge.mintToken(['h1'], ['read']);
    const sse = await openSse(await events(edge, 'h1', revoked));
    await refused(edge, 'h1');
    await edge.credentials.revokeToken(hashSecret(revoked));
    await vi.waitFor(() => expect(sse.ended()).toBe(true), { timeout: 5_000, interval: 5 });
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(0));
    // The home's slot is free again.
    const next = await openSse(await events(edge, 'h1'));
    await next.close();
  });

  it('gives the slots back when a stream fails', async () => {
    const edge = startEdge({ sseLimit: { perToken: 1, perHome: 1 } });
    const token = await edge.mintToken(['h1'], ['read']);
    vi.spyOn(edge.feed, 'subscribe').mockImplementationOnce(() => {
      throw new Error('feed broken');
    });
    const failed = await openSse(await events(edge, 'h1', token));
    await vi.waitFor(() => expect(failed.ended()).toBe(true));
    await vi.waitFor(async () => expect(await openStreams(edge)).toBe(0));
    const sse = await openSse(await events(edge, 'h1', token));
    await sse.close();
  });
});

describe('EventStreamSlots', () => {
  it('counts per token and per home, releases once per slot, and forgets keys that fall to zero', () => {
    const seen: number[] = [];
    const slots = new EventStreamSlots({ perToken: 2, perHome: 3 }, (open) => seen.push(open));
    const a1 = slots.take('a', 'h1');
    const a2 = slots.take('a', 'h2');
    expect(slots.take('a', 'h3')).toEqual({ ok: false, scope: 'token', limit: 2 });
    const admin = slots.take(undefined, 'h1');
    const b = slots.take('b', 'h1');
    expect(slots.take('c', 'h1')).toEqual({ ok: false, scope: 'home', limit: 3 });
    expect([a1.ok, a2.ok, admin.ok, b.ok]).toEqual([true, true, true, true]);
    expect(slots.open).toBe(4);
    expect(slots.openForHome('h1')).toBe(3);

    if (!a1.ok) throw new Error('unreachable');
    a1.release();
    a1.release(); // a second release gives nothing back twice
    expect(slots.open).toBe(3);
    expect(slots.openForHome('h1')).toBe(2);
    expect(slots.take('a', 'h1').ok).toBe(true);
    expect(seen).toEqual([1, 2, 3, 4, 3, 4]);

    for (const s of [a2, admin, b]) if (s.ok) s.release();
    expect(slots.openForHome('h2')).toBe(0);
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => new EventStreamSlots({ perToken: 0, perHome: 1 })).toThrow('sseLimit.perToken must be a positive integer, not 0');
    expect(() => new EventStreamSlots({ perToken: 1, perHome: 1.5 })).toThrow('sseLimit.perHome');
  });
});
