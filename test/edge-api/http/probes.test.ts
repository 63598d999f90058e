import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpMetrics } from '../../../edge-api/http/http-metrics.ts';
import { createMetricsApp } from '../../../edge-api/http/metrics-endpoint.ts';
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

  it('serves /metrics on the app port to the admin token only', async () => {
    const edge = startEdge();
    const appToken = await edge.mintToken(['h1'], ['read', 'control', 'rules']);
    const anonymous = await edge.json('GET', '/metrics', { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('unauthenticated');
    expect(anonymous.res.headers.get('www-authenticate')).toBe('Bearer realm="iot"');
    const app = await edge.json('GET', '/metrics', { token: appToken });
    expect(app.status).toBe(403);
    expect(app.body.error.code).toBe('forbidden');
    const admin = await edge.call('GET', '/metrics');
    expect(admin.status).toBe(200);
    expect(await admin.text()).toContain('iot_http_requests_total');
  });

  it('does not serve /metrics on the app port when a metrics server serves it', async () => {
    const edge = startEdge({ serveMetrics: false });
    expect((await edge.json('GET', '/metrics')).body.error.code).toBe('not_found');
  });

  it('the metrics port app serves /metrics without a token, and nothing else', async () => {
    const edge = startEdge();
    await edge.json('GET', '/healthz', { token: null });
    const app = createMetricsApp(edge.registry);
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(edge.registry.contentType);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toContain('iot_http_requests_total{method="GET",route="/healthz",status="200"} 1');
    for (const path of ['/healthz', '/v1/homes/h1', '/metrics/x']) {
      const other = await app.request(path);
      expect(other.status, path).toBe(404);
      expect(((await other.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    expect((await app.request('/metrics', { method: 'POST' })).status).toBe(404);
  });

  it('serves Prometheus metrics with requests by route pattern and status', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.json('GET', '/v1/homes/h1');
    await edge.json('GET', '/v1/homes/h2');
    await edge.json('GET', '/v1/homes/h1', { token: null });
    await edge.json('GET', '/no/such/route');
    const res = await edge.call('GET', '/metrics');
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
    const text = await (await edge.call('GET', '/metrics')).text();
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
    const text = await (await edge.call('GET', '/metrics')).text();
    expect(text).toContain('iot_http_requests_total{method="GET",route="/healthz",status="200"} 1');
  });
});
