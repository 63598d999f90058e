import { connect } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, closeEdges, startEdge, type Edge } from './harness.ts';

const servers: ServerType[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  await closeEdges();
});

/** Serves `edge` over a real @hono/node-server on a free port. */
async function listen(edge: Edge): Promise<number> {
  const server = serve({ fetch: edge.app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return (server.address() as { port: number }).port;
}

/** Sends `head` (request line and headers, no body) on a raw socket; resolves with the response's status and body. */
function rawRequest(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(data.slice(0, end));
      if (end < 0 || !length || data.length < end + 4 + Number(length[1])) return;
      socket.destroy();
      resolve({ status: Number(data.slice(9, 12)), body: data.slice(end + 4, end + 4 + Number(length[1])) });
    });
    socket.on('error', reject);
  });
}

describe('HTTP edge over a real @hono/node-server', () => {
  it('serves a GET that declares a huge Content-Length, and still refuses a large POST body with 413 in the one shape', async () => {
    const edge = startEdge({ maxBodyBytes: 256 });
    await edge.createHome('h1');
    const port = await listen(edge);
    const auth = `authorization: Bearer ${ADMIN}`;

    // The body is never sent: the edge answers from the headers, as a GET has no body to read.
    const get = await rawRequest(port, `GET /v1/homes/h1 HTTP/1.1\r\nhost: x\r\n${auth}\r\ncontent-length: 1000000000\r\n\r\n`);
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({ homeId: 'h1' });

    const declared = await rawRequest(
      port,
      `POST /v1/homes/h1/hubs HTTP/1.1\r\nhost: x\r\n${auth}\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n`,
    );
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body)).toEqual({ error: { code: 'payload_too_large', message: 'the body exceeds 256 bytes' } });

    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const big = await fetch(`${base}/v1/homes/h1`, { method: 'PUT', headers, body: JSON.stringify({ name: 'x'.repeat(300) }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    const put = await fetch(`${base}/v1/homes/h1`, { method: 'PUT', headers, body: JSON.stringify({ name: 'fine', timezone: 'UTC' }) });
    expect(put.status).toBe(200);
  });

  it('serves GETs with params and query validators (shadow, home, device list) without building a Headers object of the request', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }, { deviceId: 'd2' }]);
    const token = await edge.mintToken(['h1'], ['read']);
    // @hono/node-server builds the WHATWG Headers lazily, on the first read of `request.headers`.
    const built: string[] = [];
    const server = serve({
      fetch: (req, env) => {
        const proto: object = Object.getPrototypeOf(req) as object;
        Object.defineProperty(req, 'headers', {
          get(): unknown {
            built.push(new URL(req.url).pathname);
            return Reflect.get(proto, 'headers', req);
          },
        });
        return edge.app.fetch(req, env);
      },
      port: 0,
      hostname: '127.0.0.1',
    });
    servers.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const headers = { authorization: `Bearer ${token}`, 'if-none-match': '"999"' };
    expect((await fetch(`${base}/v1/homes/h1/devices/d1`, { headers })).status).toBe(200);
    expect((await fetch(`${base}/v1/homes/h1`, { headers })).status).toBe(200);
    const list = await fetch(`${base}/v1/homes/h1/devices?limit=1`, { headers });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: unknown[] }).items).toHaveLength(1);
    // A bad parameter is refused by the same validators, still without Headers.
    expect((await fetch(`${base}/v1/homes/h1/devices?limit=0`, { headers })).status).toBe(400);
    expect(built).toEqual([]);
    // The spy works: a route that reads a JSON body does build them.
    await fetch(`${base}/v1/homes/h1/devices/d1`, {
      method: 'PATCH',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(built).toContain('/v1/homes/h1/devices/d1');
  });

  it('reads request headers from node (authorization, If-None-Match, Idempotency-Key)', async () => {
    const edge = startEdge();
    await edge.createHome('h1');
    await edge.attachDevices('h1', 'hub1', [{ deviceId: 'd1' }]);
    const token = await edge.mintToken(['h1'], ['read', 'control']);
    const base = `http://127.0.0.1:${await listen(edge)}`;
    const authorization = `Bearer ${token}`;
    const shadow = await fetch(`${base}/v1/homes/h1/devices/d1`, { headers: { authorization } });
    expect(shadow.status).toBe(200);
    const etag = shadow.headers.get('etag')!;
    expect(etag).toMatch(/^"\d+"$/);
    expect((await fetch(`${base}/v1/homes/h1/devices/d1`, { headers: { authorization, 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${base}/v1/homes/h1/devices/d1`, { headers: { authorization, 'if-none-match': '"999"' } })).status).toBe(200);
    expect((await fetch(`${base}/v1/homes/h1/devices/d1`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const bad = await fetch(`${base}/v1/homes/h1/devices/d1/commands`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json', 'idempotency-key': 'not valid!' },
      body: JSON.stringify({ name: 'on' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: unknown } }).error.details).toMatchObject({
      field: 'Idempotency-Key',
      fields: [{ field: 'Idempotency-Key' }],
    });
  });
});
