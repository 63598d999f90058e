/** Trace context on the peer wire: a traced ask, tell or delivery continues its trace on the receiving node; untraced ones carry nothing. */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { context, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PeerAuthConfig } from '../../cluster/peer-auth.ts';
import { PeerClient } from '../../cluster/peer-client.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok } from '../../runtime/result.ts';
import { activeCarrier, carrierOf, runInSpan, SpanKind, startSpanFrom, tracingOn } from '../../runtime/tracing.ts';
import { startInMemoryTracing, type InMemoryTracing, spyOnTracingApi } from '../support/in-memory-tracing.ts';

const AUTH: PeerAuthConfig = { cluster: 'peer-trace', secret: 'peer-trace-test-secret-0123456789abcdef0123' };

let tracing: InMemoryTracing | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tracing?.stop();
  tracing = undefined;
  vi.restoreAllMocks();
});

type Seen = { what: string; carrier: string | undefined }[];

/**
 * Makes `ctx` the active context for the rest of the current callback and whatever it leads to
 * (AsyncLocalStorage.enterWith under the SDK's context manager): how a leftover context gets stuck
 * to a connection in real code.
 */
function enterLeftover(ctx: Context): void {
  const manager = (context as unknown as { _getContextManager(): { _asyncLocalStorage: AsyncLocalStorage<Context> } })._getContextManager();
  manager._asyncLocalStorage.enterWith(ctx);
}

/**
 * A server whose handler records the trace each item arrived in, and a client to it. `atBoundary`
 * records the trace active where the server first sees an ask or tell (its message check, before
 * it restores the sender's trace). `leftover`: entered by the server when it reads a tell to
 * `setup:leftover`, so the items after it arrive with that context active.
 */
async function pair(leftover?: Context): Promise<{ client: PeerClient; seen: Seen; atBoundary: Seen }> {
  const seen: Seen = [];
  const atBoundary: Seen = [];
  const now = (): string | undefined => (tracingOn ? activeCarrier() : undefined);
  const handler: PeerHandler = {
    ask: (actorId) => {
      seen.push({ what: `ask ${actorId}`, carrier: now() });
      return Promise.resolve(ok(null));
    },
    tell: (actorId) => {
      if (actorId !== 'setup:leftover') seen.push({ what: `tell ${actorId}`, carrier: now() });
    },
    deliver: (channel) => {
      seen.push({ what: `delivery ${channel}`, carrier: now() });
      return 'ok';
    },
  };
  const server = new PeerServer({
    nodeId: 'b',
    handler,
    auth: AUTH,
    acceptsMessage: (actorId) => {
      if (actorId === 'setup:leftover' && leftover) enterLeftover(leftover);
      else atBoundary.push({ what: actorId, carrier: now() });
      return undefined;
    },
    logger: silentLogger,
    registry: new Registry(),
    shutdownGraceMs: 500,
  });
  const port = await server.listen('127.0.0.1', 0);
  closers.push(() => server.close());
  const client = new PeerClient(`127.0.0.1:${port}`, {
    nodeId: 'a',
    peerId: 'b',
    auth: AUTH,
    logger: silentLogger,
    registry: new Registry(),
  });
  closers.push(() => client.close(200));
  return { client, seen, atBoundary };
}

/** Sends one ask, one tell and one delivery, and waits until the server saw all three. */
async function sendAll(client: PeerClient, seen: readonly unknown[]): Promise<void> {
  client.tell('device:h:d', { type: 't' }, true, 1, 1);
  client.deliver('hub.command', { x: 1 });
  await client.ask('device:h:d', { type: 'a' }, 2_000, 1, 1);
  for (let i = 0; seen.length < 3 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('peer wire trace context', () => {
  it('restores the sender’s trace on the receiving node for asks, tells and deliveries', async () => {
    tracing = startInMemoryTracing();
    const { client, seen } = await pair();
    const span = startSpanFrom(undefined, 'sender', SpanKind.INTERNAL, {});
    await runInSpan(span, () => sendAll(client, seen));
    const expected = carrierOf(span);
    expect(seen.sort((x, y) => x.what.localeCompare(y.what))).toEqual([
      { what: 'ask device:h:d', carrier: expected },
      { what: 'delivery hub.command', carrier: expected },
      { what: 'tell device:h:d', carrier: expected },
    ]);
  });

  it('runs an untraced item in no trace, even when the receiving node has a leftover context active', async () => {
    tracing = startInMemoryTracing();
    const leftover = startSpanFrom(undefined, 'leftover', SpanKind.INTERNAL, {});
    const { client, seen, atBoundary } = await pair(trace.setSpan(ROOT_CONTEXT, leftover));
    // The server reads this one first, and is left in the leftover context for what follows.
    client.tell('setup:leftover', { type: 'x' }, false, 0, 1);
    await sendAll(client, seen);
    // The leftover context really is active where the server reads the item...
    expect(atBoundary.map((s) => s.carrier)).toEqual([carrierOf(leftover), carrierOf(leftover)]);
    // ...and none of it reaches the handlers.
    expect(seen.map((s) => s.carrier)).toEqual([undefined, undefined, undefined]);
  });

  it('with tracing off, sends and handles items without any trace and never calls the OpenTelemetry API', async () => {
    expect(tracingOn).toBe(false);
    const spies = spyOnTracingApi();
    const { client, seen } = await pair();
    await sendAll(client, seen);
    expect(seen).toHaveLength(3);
    expect(seen.map((s) => s.carrier)).toEqual([undefined, undefined, undefined]);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});
