import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpMetrics } from '../../../edge-api/http/http-metrics.ts';
import { closeEdges, startEdge } from './harness.ts';

afterEach(closeEdges);

describe('HTTP edge: probes and metrics', () => {
  it('answers /healthz and /readyz without a token', async () => {
    const edge = startEdge();
    expect(await edge.json('GET', '/healthz', { token: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await edge.json('GET', '/readyz', { token: null })).toMatchObject({
      status: 200,
      body: { ready: true, checks: { store: true, started: true } },
    });
    edge.readiness.ready = false;
    expect(await edge.json('GET', '/readyz', { token: null })).toMatchObject({
      status: 503,
      body: { ready: false, checks: { started: false } },
    });
  });

  it('serves Prometheus metrics with requests by route pattern and status', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.json('GET', '/v1/homes/h1');
    await edge.json('GET', '/v1/homes/h2');
    await edge.json('GET', '/v1/homes/h1', { token: null });
    await edge.json('GET', '/no/such/route');
    const res = await edge.call('GET', '/metrics', { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(edge.registry.contentType);
    const text = await res.text();
    expect(text).toContain('iot_http_requests_total{method="GET",route="/v1/homes/:homeId",status="200"} 1');
    expect(text).toContain('iot_http_requests_total{method="GET",route="/v1/homes/:homeId",status="404"} 1');
    expect(text).toContain('iot_http_requests_total{method="GET",route="/v1/homes/:homeId",status="401"} 1');
    expect(text).toContain('iot_http_requests_total{method="PUT",route="/v1/homes/:homeId",status="201"} 1');
    expect(text).toContain('iot_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).toMatch(/iot_http_request_duration_seconds_count\{method="GET",route="\/v1\/homes\/:homeId"\} 3/);
    expect(text).toContain('iot_actor_messages_total'); // the actor host's metrics share the registry
  });

  it('resolves the label series of a route, method and status once, not per request', async () => {
    const edge = startEdge();
    const metrics = HttpMetrics.of(edge.registry);
    const counter = vi.spyOn(metrics.requests, 'labels');
    const histogram = vi.spyOn(metrics.seconds, 'labels');
    for (let i = 0; i < 5; i++) await edge.json('GET', '/v1/homes/h1');
    for (let i = 0; i < 3; i++) await edge.json('GET', '/v1/homes/h1', { token: null });
    for (let i = 0; i < 2; i++) await edge.json('GET', '/nope');
    expect(counter.mock.calls).toEqual([
      ['GET', '/v1/homes/:homeId', '404'],
      ['GET', '/v1/homes/:homeId', '401'],
      ['GET', 'unmatched', '404'],
    ]);
    expect(histogram.mock.calls).toEqual([
      ['GET', '/v1/homes/:homeId'],
      ['GET', 'unmatched'],
    ]);
    const text = await (await edge.call('GET', '/metrics', { token: null })).text();
    expect(text).toContain('iot_http_requests_total{method="GET",route="/v1/homes/:homeId",status="404"} 5');
    expect(text).toContain('iot_http_requests_total{method="GET",route="/v1/homes/:homeId",status="401"} 3');
    expect(text).toMatch(/iot_http_request_duration_seconds_count\{method="GET",route="\/v1\/homes\/:homeId"\} 8/);
  });

  it('creates its metrics once per registry: a second app on the same registry works', async () => {
    const edge = startEdge();
    const { createHttpApp } = await import('../../../edge-api/http/create-http-app.ts');
    const { silentLogger } = await import('../../../runtime/logger.ts');
    const second = createHttpApp({
      router: edge.router,
      credentials: edge.credentials,
      feed: edge.feed,
      adminToken: 'x',
      registry: edge.registry,
      logger: silentLogger,
      readiness: () => ({ ready: true, checks: {} }),
      maxBodyBytes: 1024,
    });
    expect((await second.request('/healthz')).status).toBe(200);
    const text = await (await edge.call('GET', '/metrics', { token: null })).text();
    expect(text).toContain('iot_http_requests_total{method="GET",route="/healthz",status="200"} 1');
  });
});
