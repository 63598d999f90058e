/** Test wiring of the HTTP edge over a real in-process actor stack, plus request and SSE helpers. */
import { Registry } from 'prom-client';
import { expect, vi } from 'vitest';
import { deviceActorId, hubActorId } from '../../../actors/actor-id.ts';
import { createActorStack, type ActorStack } from '../../../node/actor-stack.ts';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import { MemoryCredentialStore, type Scope } from '../../../edge-api/auth/credential-store.ts';
import { EventFeed, type EventFeedConfig } from '../../../edge-api/events/event-feed.ts';
import { createHttpApp, type HttpDeps } from '../../../edge-api/http/create-http-app.ts';
import type { ActorHostConfig } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';

export const ADMIN = 'admin-token-for-tests';

export interface EdgeOptions extends Partial<
  Omit<HttpDeps, 'router' | 'credentials' | 'feed' | 'registry' | 'logger' | 'readiness' | 'adminToken'>
> {
  readonly host?: Partial<ActorHostConfig>;
  readonly feed?: Partial<EventFeedConfig>;
  /** Replaces the real router (tests of runtime failures). */
  readonly router?: ActorRouter;
}

export interface CallOptions {
  /** Bearer token; default the admin token, null for none. */
  readonly token?: string | null;
  /** A JSON value, or a raw string sent as is. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

const stacks: ActorStack[] = [];

/** Closes every stack started by `startEdge` (call in afterEach). */
export async function closeEdges(): Promise<void> {
  await Promise.all(stacks.splice(0).map((s) => s.host.close()));
}

export function startEdge(opts: EdgeOptions = {}) {
  const registry = new Registry();
  const feed = new EventFeed(opts.feed);
  const store = new MemoryStore();
  const stack = createActorStack(
    { store, logger: silentLogger, registry, hubCommands: { send: () => {} }, publish: (h, t, d) => feed.publish(h, t, d) },
    opts.host,
  );
  stacks.push(stack);
  const credentials = new MemoryCredentialStore();
  const readiness = { ready: true };
  const router = opts.router ?? stack.router;
  const app = createHttpApp({
    router,
    credentials,
    feed,
    adminToken: ADMIN,
    registry,
    logger: silentLogger,
    readiness: () => ({ ready: readiness.ready, checks: { store: true, started: readiness.ready } }),
    maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
    rateLimit: opts.rateLimit ?? { perTokenPerSec: 100_000, perHomePerSec: 100_000, burst: 100_000 },
    ...(opts.askTimeoutMs === undefined ? {} : { askTimeoutMs: opts.askTimeoutMs }),
    ...(opts.sseHeartbeatMs === undefined ? {} : { sseHeartbeatMs: opts.sseHeartbeatMs }),
    ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    ...(opts.tokenCache === undefined ? {} : { tokenCache: opts.tokenCache }),
    ...(opts.sseLimit === undefined ? {} : { sseLimit: opts.sseLimit }),
    ...(opts.serveMetrics === undefined ? {} : { serveMetrics: opts.serveMetrics }),
  });

  async function call(method: string, path: string, o: CallOptions = {}): Promise<Response> {
    const token = o.token === undefined ? ADMIN : o.token;
    const headers: Record<string, string> = { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...o.headers };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    return app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
  }

  /** Calls and returns status and parsed JSON body (null when empty). */
  async function json<T = any>(method: string, path: string, o: CallOptions = {}): Promise<{ status: number; body: T; res: Response }> {
    const res = await call(method, path, o);
    const text = await res.text();
    return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T, res };
  }

  async function createHome(homeId: string, name = `Home ${homeId}`): Promise<void> {
    const r = await json('PUT', `/v1/homes/${homeId}`, { body: { name, timezone: 'Europe/Berlin' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }

  async function mintToken(homes: string[], scopes: Scope[]): Promise<string> {
    const r = await json('POST', '/v1/tokens', { body: { homes, scopes } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.token as string;
  }

  /** Has hub `hubId` say hello with `devices` (type light unless given), then waits until the edge serves them. */
  async function attachDevices(homeId: string, hubId: string, devices: { deviceId: string; type?: string }[]): Promise<void> {
    const hello = await stack.router.ask(hubActorId(homeId, hubId), {
      type: 'hub.hello',
      nodeId: 'n1',
      devices: devices.map((d) => ({ deviceId: d.deviceId, type: d.type ?? 'light', capabilities: ['on', 'brightness'] })),
    });
    expect(hello).toMatchObject({ ok: true, value: { ok: true } });
    for (const d of devices) {
      await vi.waitFor(async () => expect((await call('GET', `/v1/homes/${homeId}/devices/${d.deviceId}`)).status).toBe(200));
    }
  }

  /** A hub report for one device, straight to its actor. */
  async function report(
    homeId: string,
    deviceId: string,
    seq: number,
    attributes: Record<string, number | boolean | string>,
    event?: string,
  ) {
    const r = await stack.router.ask(deviceActorId(homeId, deviceId), {
      type: 'report',
      seq,
      tsMs: Date.now(),
      attributes,
      ...(event === undefined ? {} : { event }),
    });
    expect(r).toMatchObject({ ok: true, value: { ok: true } });
  }

  return { app, stack, router, registry, feed, store, credentials, readiness, call, json, createHome, mintToken, attachDevices, report };
}

export type Edge = ReturnType<typeof startEdge>;

/** One server-sent event block; `comment` holds `: …` lines (heartbeats). */
export interface SseBlock {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comment?: string;
}

function parseBlock(block: string): SseBlock {
  const out: SseBlock = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) out.comment = line.slice(1).trim();
    else {
      const i = line.indexOf(':');
      const field = line.slice(0, i) as keyof SseBlock;
      const value = line.slice(i + 1).replace(/^ /, '');
      out[field] = field === 'data' && out.data !== undefined ? `${out.data}\n${value}` : value;
    }
  }
  return out;
}

/** Opens an SSE response and reads it in the background; `events` fills as blocks arrive. */
export async function openSse(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const blocks: SseBlock[] = [];
  let buffer = '';
  let ended = false;
  const reading = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
        blocks.push(parseBlock(buffer.slice(0, i)));
        buffer = buffer.slice(i + 2);
      }
    }
  })().catch(() => undefined);
  return {
    blocks,
    /** True once the server ended the stream. */
    ended: () => ended,
    /** Events only (no heartbeats or retry hints), as {id, event, data (parsed)}. */
    events: () =>
      blocks
        .filter((b) => b.event !== undefined)
        .map((b) => ({ id: b.id, event: b.event, data: b.data === undefined ? undefined : JSON.parse(b.data) })),
    close: async () => {
      await reader.cancel();
      await reading;
    },
  };
}
