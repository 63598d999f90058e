/** Trace context on the peer wire: a traced ask, tell or delivery continues its trace on the receiving node; untraced ones carry nothing. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerAuthConfig } from '../../cluster/peer-auth.ts';
import { PeerClient } from '../../cluster/peer-client.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok } from '../../runtime/result.ts';
import { activeCarrier, carrierOf, runInSpan, SpanKind, startSpanFrom, tracingOn } from '../../runtime/tracing.ts';
import { startInMemoryTracing, type InMemoryTracing } from '../support/in-memory-tracing.ts';

const AUTH: PeerAuthConfig = { cluster: 'peer-trace', secret: 'peer-trace-test-secret-0123456789abcdef0123' };

let tracing: InMemoryTracing | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tracing?.stop();
  tracing = undefined;
});

/** A server whose handler records the trace each item arrived in, and a client to it. */
async function pair(): Promise<{ client: PeerClient; seen: { what: string; carrier: string | undefined }[] }> {
  const seen: { what: string; carrier: string | undefined }[] = [];
  const now = (): string | undefined => (tracingOn ? activeCarrier() : undefined);
  const handler: PeerHandler = {
    ask: (actorId) => {
      seen.push({ what: `ask ${actorId}`, carrier: now() });
      return Promise.resolve(ok(null));
    },
    tell: (actorId) => void seen.push({ what: `tell ${actorId}`, carrier: now() }),
    deliver: (channel) => {
      seen.push({ what: `delivery ${channel}`, carrier: now() });
      return 'ok';
    },
  };
  const server = new PeerServer({
    nodeId: 'b',
    handler,
    auth: AUTH,
    acceptsMessage: () => undefined,
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
  return { client, seen };
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
    const { client, seen } = await pair();
    await sendAll(client, seen);
    expect(seen.map((s) => s.carrier)).toEqual([undefined, undefined, undefined]);
  });

  it('with tracing off, sends and handles items without any trace', async () => {
    const { client, seen } = await pair();
    await sendAll(client, seen);
    expect(seen).toHaveLength(3);
    expect(seen.map((s) => s.carrier)).toEqual([undefined, undefined, undefined]);
  });
});
