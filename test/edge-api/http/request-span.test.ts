import { ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { requestSpan } from '../../../edge-api/http/request-span.ts';
import { activeCarrier, tracingOn } from '../../../runtime/tracing.ts';
import { parentOf, startInMemoryTracing, type InMemoryTracing, spyOnTracingApi } from '../../support/in-memory-tracing.ts';
import { closeEdges, startEdge } from './harness.ts';

let tracing: InMemoryTracing | undefined;

afterEach(async () => {
  await closeEdges();
  await tracing?.stop();
  tracing = undefined;
  vi.restoreAllMocks();
});

/** An app with the middleware, a route that reports the trace it runs in, one that fails, and the error handler. */
function app(): Hono {
  const a = new Hono();
  a.use('*', requestSpan());
  a.get('/v1/things/:id', (c) => c.json({ carrier: tracingOn ? (activeCarrier() ?? null) : null }));
  a.post('/v1/things/:id/fail', () => {
    throw new Error('boom');
  });
  a.onError((_err, c) => c.json({ error: { code: 'internal' } }, 500));
  return a;
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('createHttpApp', () => {
  const traced = (app: { routes: readonly { handler: { name: string } }[] }): boolean =>
    app.routes.some((r) => r.handler.name === 'traceRequest');

  it('installs the request span middleware only when tracing is on when the app is made', () => {
    expect(tracingOn).toBe(false);
    expect(traced(startEdge().app)).toBe(false);
    tracing = startInMemoryTracing();
    expect(traced(startEdge().app)).toBe(true);
  });
});

describe('requestSpan', () => {
  it('names the span by method and route pattern, records the HTTP attributes, and runs the handler in it', async () => {
    tracing = startInMemoryTracing();
    const res = await app().request('http://edge.test/v1/things/t1?x=1');
    expect(res.status).toBe(200);
    const span = tracing.span('GET /v1/things/:id');
    expect(span.kind).toBe(1); // SERVER
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'url.path': '/v1/things/t1',
      'url.scheme': 'http',
      'http.route': '/v1/things/:id',
      'http.response.status_code': 200,
    });
    expect(span.status.code).toBe(0);
    expect(parentOf(span)).toBeUndefined();
    // What the handler sends continues this span.
    expect(await res.json()).toEqual({ carrier: `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01` });
  });

  it("starts its own trace for a request with a traceparent, linked to the caller's span, never its child", async () => {
    tracing = startInMemoryTracing();
    // Flag 00: the client asks not to be sampled; this node's sampler decides all the same.
    for (const flags of ['01', '00']) {
      await app().request('http://edge.test/v1/things/t1', { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-${flags}` } });
    }
    const spans = tracing.spans().filter((s) => s.name === 'GET /v1/things/:id');
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(parentOf(span)).toBeUndefined();
      expect(span.spanContext().traceId).not.toBe(TRACE_ID);
      expect(span.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([[TRACE_ID, PARENT]]);
    }
    // A malformed header is no link.
    await app().request('http://edge.test/v1/things/t2', { headers: { traceparent: 'garbage' } });
    expect(tracing.spans().at(-1)!.links).toEqual([]);
  });

  it('lets no client force sampling: a sampled traceparent under a sampler that keeps nothing records nothing', async () => {
    tracing = startInMemoryTracing({ sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }) });
    const res = await app().request('http://edge.test/v1/things/t1', { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
    expect(await res.json()).toEqual({ carrier: null });
    expect(tracing.spans()).toEqual([]);
  });

  it('bounds url.path', async () => {
    tracing = startInMemoryTracing();
    await app().request(`http://edge.test/v1/things/${'x'.repeat(2_000)}`);
    expect(tracing.span('GET /v1/things/:id').attributes['url.path']).toBe(`/v1/things/${'x'.repeat(2_000)}`.slice(0, 256));
  });

  it('marks a 5xx answer as an error; a 404 of no route is named by its method alone and is not an error', async () => {
    tracing = startInMemoryTracing();
    expect((await app().request('http://edge.test/v1/things/t1/fail', { method: 'POST' })).status).toBe(500);
    expect((await app().request('http://edge.test/nowhere')).status).toBe(404);
    const failed = tracing.span('POST /v1/things/:id/fail');
    expect(failed.status).toEqual({ code: 2, message: 'HTTP 500' });
    expect(failed.attributes['http.response.status_code']).toBe(500);
    const unmatched = tracing.span('GET');
    expect(unmatched.status.code).toBe(0);
    expect(unmatched.attributes['http.route']).toBeUndefined();
  });

  it('with tracing off, passes the request through without touching the OpenTelemetry API', async () => {
    expect(tracingOn).toBe(false);
    const spies = spyOnTracingApi();
    const res = await app().request('http://edge.test/v1/things/t1', { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
    expect(await res.json()).toEqual({ carrier: null });
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});
