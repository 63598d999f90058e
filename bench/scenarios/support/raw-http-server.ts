/**
 * The HTTP baselines, each in its own process like the node: a raw Hono app served by
 * @hono/node-server, or a raw `node:http` server. Both answer GET /v1/homes/:homeId/devices/:deviceId
 * with the shadow body the node returned (serialised per request, as the node does) and its ETag.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { toParent, workerInput } from '../../harness/worker-process.ts';

export interface RawServerInput {
  readonly kind: 'hono' | 'node-http';
  /** The shadow JSON the node served. */
  readonly body: string;
  readonly etag: string;
}

const input = workerInput<RawServerInput>();
const shadow = JSON.parse(input.body) as unknown;
const ROUTE = /^\/v1\/homes\/[^/]+\/devices\/[^/?]+$/;

if (input.kind === 'hono') {
  const app = new Hono();
  app.get('/v1/homes/:homeId/devices/:deviceId', (c) => {
    c.header('ETag', input.etag);
    return c.json(shadow);
  });
  serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => toParent({ type: 'listening', port: info.port }));
} else {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url !== undefined && ROUTE.test(req.url)) {
      const text = JSON.stringify(shadow);
      res.writeHead(200, { 'content-type': 'application/json', etag: input.etag, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(0, '127.0.0.1', () => toParent({ type: 'listening', port: (server.address() as AddressInfo).port }));
}

process.on('SIGTERM', () => process.exit(0));
