/** startNode as a cluster member over a private Redis: the cluster admin once started, and a shutdown that closes the store once. */
import { request } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../node/config.ts';
import { ClusterNode } from '../../cluster/cluster-node.ts';
import type { RingDoc } from '../../cluster/cluster-types.ts';
import { MAX_RING_POINTS, MAX_WEIGHT } from '../../cluster/hash-ring.ts';
import { Membership } from '../../cluster/membership.ts';
import { PortTakenError } from '../../node/port-taken-error.ts';
import { abortedBy, startNode } from '../../node/start-node.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient } from '../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../runtime/redis/redis-store.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { makeTestPki } from '../support/test-certificates.ts';

let redis: TestRedis;

/** A prototype's method as it is before a spy replaces it, to call through with the instance as `this`. */
function original<T extends object, K extends keyof T>(proto: T, name: K): T[K] {
  return Reflect.get(proto, name);
}

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await redis?.stop();
});

describe('startNode with REDIS_URL', () => {
  it('serves the cluster admin once started, and closes the Redis store exactly once at shutdown', async () => {
    const config = loadConfig({
      NODE_ID: 'start-node-test',
      REDIS_URL: redis.url,
      CLUSTER: redis.cluster,
      HOST: '127.0.0.1',
      HTTP_PORT: '0',
      GRPC_PORT: '0',
      PEER_PORT: '0',
      SHARDS: '8',
      ADMIN_TOKEN: 'admin-start-node-test',
    });
    const closes = vi.spyOn(RedisStore.prototype, 'close');
    const node = await startNode(config, { logger: silentLogger, shutdownGraceMs: 500 });
    try {
      const res = await fetch(`http://127.0.0.1:${node.httpPort}/v1/admin/cluster`, {
        headers: { authorization: 'Bearer admin-start-node-test' },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ shardCount: 8, nodes: [{ id: 'start-node-test' }] });
    } finally {
      await node.close();
    }
    expect(closes).toHaveBeenCalledTimes(1);
    closes.mockRestore();
  });
});

describe('startNode: ring weights over the admin API', () => {
  it('refuses a weight that would block the event loop with 400 naming it, and plans one of MAX_WEIGHT', async () => {
    const config = loadConfig({
      NODE_ID: 'ring-weight-test',
      REDIS_URL: redis.url,
      CLUSTER: `${redis.cluster}w`,
      HOST: '127.0.0.1',
      HTTP_PORT: '0',
      PEER_PORT: '0',
      ROLES: 'edge,actors',
      SHARDS: '64',
      ADMIN_TOKEN: 'admin-ring-weight-test',
    });
    const node = await startNode(config, { logger: silentLogger, shutdownGraceMs: 200 });
    const plan = async (body: unknown) => {
      const res = await fetch(`http://127.0.0.1:${node.httpPort}/v1/admin/ring/plan`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-ring-weight-test', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      // 1e308 once meant an endless loop; 20 000 blocked the node 6.5 s. Both are refused before any ring math.
      for (const weight of [1e308, 20_000]) {
        const r = await plan({ weights: { 'ring-weight-test': weight } });
        expect(r).toMatchObject({
          status: 400,
          body: { error: { code: 'invalid_argument', details: { field: 'weights.ring-weight-test' } } },
        });
      }
      const add = await plan({ add: [{ id: 'big', weight: 1e308 }] });
      expect(add.body.error.details).toMatchObject({ field: 'add[0].weight', fields: [{ field: 'add[0].weight' }] });
      // The largest weight allowed plans (MAX_POINTS_PER_NODE control points for the node).
      const max = await plan({ add: [{ id: 'big', weight: MAX_WEIGHT }] });
      expect(max.status).toBe(200);
      expect(max.body.nextNodes).toContainEqual({ id: 'big', weight: MAX_WEIGHT, state: 'active' });
      expect(max.body.moving).toBeGreaterThan(0);
      // 2 300 nodes of weight 16 in one plan once blocked the loop 9.6 s: refused by count, before any ring math.
      const crowd = await plan({ add: Array.from({ length: 2_300 }, (_, i) => ({ id: `m${i}`, weight: MAX_WEIGHT })) });
      expect(crowd).toMatchObject({ status: 400, body: { error: { code: 'invalid_argument', details: { field: 'add' } } } });
      // Fewer nodes, but weights adding up past 256 (MAX_RING_POINTS control points): refused by the ring change check.
      const heavy = await plan({ add: Array.from({ length: 17 }, (_, i) => ({ id: `m${i}`, weight: MAX_WEIGHT })) });
      expect(heavy).toMatchObject({ status: 400, body: { error: { code: 'invalid_argument', details: { field: 'change' } } } });
      expect(heavy.body.error.message).toContain(`more than ${MAX_RING_POINTS}`);
    } finally {
      await node.close();
    }
  });

  it('follows a ring stored with a weight above MAX_WEIGHT (written before the cap), and reweights it to MAX_WEIGHT', async () => {
    const cluster = `${redis.cluster}o`;
    const id = 'old-weight-test';
    const writer = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
    await connectRedis(writer);
    await writer.set(
      new KeyLayout(cluster).ring(),
      JSON.stringify({ epoch: 5, shardCount: 16, nodes: [{ id, weight: 20, state: 'active' }] }),
    );
    writer.disconnect();
    const config = loadConfig({
      NODE_ID: id,
      REDIS_URL: redis.url,
      CLUSTER: cluster,
      HOST: '127.0.0.1',
      HTTP_PORT: '0',
      PEER_PORT: '0',
      ROLES: 'edge,actors',
      SHARDS: '16',
      ADMIN_TOKEN: 'admin-old-weight-test',
    });
    // Before the fix, reading this ring threw and the node never started.
    const node = await startNode(config, { logger: silentLogger, shutdownGraceMs: 200 });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
        method,
        headers: { authorization: 'Bearer admin-old-weight-test', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      const before = await call('GET', '/v1/admin/cluster');
      expect(before.body).toMatchObject({ epoch: 5, nodes: [{ id, weight: 20, state: 'active', shardsAssigned: 16 }] });
      // No change sets a weight above MAX_WEIGHT, not even back to what is stored.
      const up = await call('POST', '/v1/admin/ring', { weights: { [id]: MAX_WEIGHT + 1 } });
      expect(up).toMatchObject({ status: 400, body: { error: { details: { field: `weights.${id}` } } } });
      // 409 while the node still takes its shards at start; then the reweight applies.
      let applied = await call('POST', '/v1/admin/ring', { weights: { [id]: MAX_WEIGHT } });
      for (let i = 0; applied.status === 409 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        applied = await call('POST', '/v1/admin/ring', { weights: { [id]: MAX_WEIGHT } });
      }
      expect(applied).toMatchObject({ status: 202, body: { epoch: 6 } });
      const after = await call('GET', '/v1/admin/cluster');
      expect(after.body).toMatchObject({ epoch: 6, nodes: [{ id, weight: MAX_WEIGHT, shardsAssigned: 16 }] });
    } finally {
      await node.close();
    }
  });
});

describe('startNode: the HTTP edge and its metrics', () => {
  const ADMIN = 'admin-start-node-http-test';
  const base = { NODE_ID: 'http-edge-test', HOST: '127.0.0.1', HTTP_PORT: '0', ROLES: 'edge,actors', ADMIN_TOKEN: ADMIN };
  const scrape = (port: number, token?: string) =>
    fetch(`http://127.0.0.1:${port}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

  it('without METRICS_PORT serves /metrics on the HTTP port to the admin token only', async () => {
    const node = await startNode(loadConfig(base), { logger: silentLogger, shutdownGraceMs: 200 });
    try {
      expect(node.metricsPort).toBeUndefined();
      expect((await scrape(node.httpPort!)).status).toBe(401);
      const res = await scrape(node.httpPort!, ADMIN);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('iot_http_requests_total{method="GET",route="/metrics",status="401"} 1');
    } finally {
      await node.close();
    }
  });

  it('with METRICS_PORT serves /metrics there without a token, and not on the HTTP port', async () => {
    const node = await startNode(loadConfig({ ...base, METRICS_PORT: '0' }), { logger: silentLogger, shutdownGraceMs: 200 });
    try {
      expect(node.metricsPort).toEqual(expect.any(Number));
      expect(node.metricsPort).not.toBe(node.httpPort);
      expect((await fetch(`http://127.0.0.1:${node.httpPort}/healthz`)).status).toBe(200);
      const res = await scrape(node.metricsPort!);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('iot_http_requests_total{method="GET",route="/healthz",status="200"} 1');
      expect((await scrape(node.httpPort!, ADMIN)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${node.metricsPort}/healthz`)).status).toBe(404);
    } finally {
      await node.close();
    }
    // Both servers are closed.
    await expect(scrape(node.metricsPort!)).rejects.toThrow();
  });

  it('binds METRICS_PORT on METRICS_HOST (loopback by default), never on HOST, and warns when METRICS_HOST is not loopback', async () => {
    // HOST is another loopback address here, so both binds can be told apart.
    const node = await startNode(loadConfig({ ...base, HOST: '127.0.0.2', METRICS_PORT: '0' }), {
      logger: silentLogger,
      shutdownGraceMs: 200,
    });
    try {
      expect((await fetch(`http://127.0.0.2:${node.httpPort}/healthz`)).status).toBe(200);
      expect((await scrape(node.metricsPort!)).status).toBe(200);
      await expect(fetch(`http://127.0.0.2:${node.metricsPort}/metrics`)).rejects.toThrow();
    } finally {
      await node.close();
    }
    const lines: { level: number; msg: string; host?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const wide = await startNode(loadConfig({ ...base, METRICS_PORT: '0', METRICS_HOST: '0.0.0.0' }), { logger, shutdownGraceMs: 200 });
    try {
      expect((await scrape(wide.metricsPort!)).status).toBe(200);
      expect(lines.filter((l) => l.level === 40 && l.msg.startsWith('metrics '))).toEqual([
        expect.objectContaining({
          host: '0.0.0.0',
          msg: expect.stringContaining('metrics serves plaintext HTTP on a non-loopback address'),
        }),
      ]);
    } finally {
      await wide.close();
    }
  });

  it('serves HTTPS with HTTP_TLS_CERT and HTTP_TLS_KEY', async () => {
    const pki = makeTestPki();
    const node = await startNode(loadConfig({ ...base, HTTP_TLS_CERT: pki.server.cert, HTTP_TLS_KEY: pki.server.key }), {
      logger: silentLogger,
      shutdownGraceMs: 200,
    });
    try {
      const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: node.httpPort, path: '/healthz', ca: pki.read(pki.ca), agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(got).toEqual({ status: 200, body: '{"status":"ok"}' });
    } finally {
      await node.close();
      pki.remove();
    }
  });

  it('stops before it starts anything when a TLS file cannot be read, naming the variable', async () => {
    const config = loadConfig({ ...base, HTTP_TLS_CERT: '/nonexistent/cert.pem', HTTP_TLS_KEY: '/nonexistent/key.pem' });
    const started = startNode(config, { logger: silentLogger });
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow('HTTP_TLS_CERT=/nonexistent/cert.pem cannot be read (ENOENT)');
  });
});

/** A TCP server holding a free port of 127.0.0.1 (`listen` rejects when the port is taken). */
function listen(port = 0): Promise<Server & { port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(Object.assign(server, { port: (server.address() as { port: number }).port })));
  });
}
const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));
/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = await listen();
  await closeServer(server);
  return server.port;
}

describe('startNode: a start that fails part-way', () => {
  it.each(['PEER_PORT', 'GRPC_PORT', 'HTTP_PORT', 'METRICS_PORT'])(
    'with %s taken rejects and frees every port it had bound, and closes Redis',
    async (taken) => {
      const ports: Record<string, number> = { HTTP_PORT: await freePort(), GRPC_PORT: await freePort(), PEER_PORT: await freePort() };
      ports.METRICS_PORT = await freePort();
      const squatter = await listen(ports[taken]);
      const closes = vi.spyOn(RedisStore.prototype, 'close');
      try {
        const config = loadConfig({
          NODE_ID: `failed-start-${taken}`,
          REDIS_URL: redis.url,
          CLUSTER: `${redis.cluster}f`,
          HOST: '127.0.0.1',
          SHARDS: '8',
          ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
        });
        const started = startNode(config, { logger: silentLogger, shutdownGraceMs: 100 });
        // Named by its variable (the peer port too, bound by grpc-js, which keeps the errno only in its message).
        await expect(started).rejects.toBeInstanceOf(PortTakenError);
        await expect(started).rejects.toMatchObject({ code: 'PORT_TAKEN', variable: taken, host: '127.0.0.1', port: ports[taken] });
        await expect(started).rejects.toThrow(`${taken}=${ports[taken]}: 127.0.0.1:${ports[taken]} is already in use`);
        expect(closes).toHaveBeenCalledTimes(1);
      } finally {
        closes.mockRestore();
        await closeServer(squatter);
      }
      // Every port the node had bound is free again: binding it here proves it.
      for (const [name, port] of Object.entries(ports)) {
        const probe = await listen(port).catch((err: NodeJS.ErrnoException) => {
          throw new Error(`${name} ${port} still bound after the failed start: ${err.code}`);
        });
        await closeServer(probe);
      }
    },
  );
});

describe('startNode: PEER_TLS files', () => {
  it('are read before Redis is connected: an unreadable one stops the node naming the variable, whatever Redis does', async () => {
    // Nothing listens on port 1: were the files read after connecting (as they once were), the error would be Redis's.
    const config = loadConfig({
      NODE_ID: 'peer-tls-read-test',
      REDIS_URL: 'redis://127.0.0.1:1',
      PEER_TLS_CERT: '/nonexistent/peer.crt',
      PEER_TLS_KEY: '/nonexistent/peer.key',
      PEER_TLS_CA: '/nonexistent/ca.crt',
    });
    const started = startNode(config, { logger: silentLogger });
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow('PEER_TLS_CERT=/nonexistent/peer.crt cannot be read (ENOENT)');
  });
});

describe('startNode: advertised addresses', () => {
  it("gives each server's address as others reach it: a wildcard HOST becomes the host name", async () => {
    const node = await startNode(loadConfig({ NODE_ID: 'addresses-test', HOST: '0.0.0.0', HTTP_PORT: '0', GRPC_PORT: '0' }), {
      logger: silentLogger,
      shutdownGraceMs: 100,
    });
    try {
      expect(node.addresses).toEqual({
        http: `${hostname()}:${node.httpPort}`,
        grpc: `${hostname()}:${node.grpcPort}`,
        peer: undefined,
      });
    } finally {
      await node.close();
    }
  });

  it('brackets an IPv6 HOST and registers the same addresses with the cluster', async () => {
    const node = await startNode(
      loadConfig({
        NODE_ID: 'addresses-v6-test',
        REDIS_URL: redis.url,
        CLUSTER: `${redis.cluster}a`,
        HOST: '::1',
        PEER_HOST: '::1',
        HTTP_PORT: '0',
        GRPC_PORT: '0',
        PEER_PORT: '0',
        SHARDS: '8',
        ADMIN_TOKEN: 'admin-addresses-v6-test',
      }),
      { logger: silentLogger, shutdownGraceMs: 100 },
    );
    try {
      expect(node.addresses).toEqual({
        http: `[::1]:${node.httpPort}`,
        grpc: `[::1]:${node.grpcPort}`,
        peer: `[::1]:${node.peerPort}`,
      });
      const res = await fetch(`http://${node.addresses.http}/v1/admin/cluster`, {
        headers: { authorization: 'Bearer admin-addresses-v6-test' },
      });
      expect(res.status).toBe(200);
      // The node's record in the cluster: what the other nodes dial.
      const reader = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
      await connectRedis(reader);
      try {
        const record = JSON.parse((await reader.get(new KeyLayout(`${redis.cluster}a`).node('addresses-v6-test')))!);
        expect(record).toMatchObject(node.addresses);
      } finally {
        reader.disconnect();
      }
    } finally {
      await node.close();
    }
  });

  it('uses ADVERTISE_HOST for every address it registers with the cluster, whatever it binds', async () => {
    const node = await startNode(
      loadConfig({
        NODE_ID: 'addresses-advertised-test',
        REDIS_URL: redis.url,
        CLUSTER: `${redis.cluster}v`,
        HOST: '0.0.0.0',
        PEER_HOST: '127.0.0.1',
        ADVERTISE_HOST: 'addresses-advertised-test.iot-peers',
        HTTP_PORT: '0',
        GRPC_PORT: '0',
        PEER_PORT: '0',
        SHARDS: '8',
      }),
      { logger: silentLogger, shutdownGraceMs: 100 },
    );
    try {
      const host = 'addresses-advertised-test.iot-peers';
      expect(node.addresses).toEqual({
        http: `${host}:${node.httpPort}`,
        grpc: `${host}:${node.grpcPort}`,
        peer: `${host}:${node.peerPort}`,
      });
      const reader = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
      await connectRedis(reader);
      try {
        const record = JSON.parse((await reader.get(new KeyLayout(`${redis.cluster}v`).node('addresses-advertised-test')))!);
        expect(record).toMatchObject(node.addresses);
      } finally {
        reader.disconnect();
      }
    } finally {
      await node.close();
    }
  });
});

describe('startNode: aborted by a signal', () => {
  it('rejects with the abort reason at once while it waits for a Redis that accepts and never answers', async () => {
    const silent: Server = createServer(() => {});
    const sockets = new Set<Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const config = loadConfig({
      NODE_ID: 'aborted-start',
      REDIS_URL: `redis://127.0.0.1:${port}`,
      HOST: '127.0.0.1',
      HTTP_PORT: '0',
      GRPC_PORT: '0',
      PEER_PORT: '0',
      SHARDS: '8',
    });
    const abort = new AbortController();
    try {
      const started = startNode(config, { logger: silentLogger, signal: abort.signal });
      await vi.waitFor(() => expect(sockets.size).toBeGreaterThan(0));
      const reason = new Error('SIGTERM during the start');
      const aborted = Date.now();
      abort.abort(reason);
      await expect(started).rejects.toBe(reason);
      expect(Date.now() - aborted).toBeLessThan(500);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('does not start at all with a signal already aborted', async () => {
    const config = loadConfig({ NODE_ID: 'aborted-before', HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0' });
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    const started = startNode(config, { logger: silentLogger, signal });
    await expect(started).rejects.toBe(reason);
    expect(abortedBy(await started.catch((err: unknown) => err), signal)).toBe(true);
  });

  it('a start failing by itself rejects with its own error when a signal comes during the undo: abortedBy says not aborted', async () => {
    const squatter = await listen();
    const abort = new AbortController();
    const close = original(RedisStore.prototype, 'close');
    // The signal arrives while the failed start is being undone (its Redis store closing).
    const spy = vi.spyOn(RedisStore.prototype, 'close').mockImplementation(function (this: RedisStore) {
      abort.abort(new Error('SIGTERM during the undo'));
      return close.call(this);
    });
    try {
      const config = loadConfig({
        NODE_ID: 'failed-then-signalled',
        REDIS_URL: redis.url,
        CLUSTER: `${redis.cluster}u`,
        HOST: '127.0.0.1',
        HTTP_PORT: String(squatter.port),
        PEER_PORT: '0',
        ROLES: 'edge,actors',
        SHARDS: '8',
      });
      const err = await startNode(config, { logger: silentLogger, signal: abort.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortTakenError);
      expect(abort.signal.aborted).toBe(true);
      // main reports it as the failure it is (exit 2 here), not as a clean stop (exit 0).
      expect(abortedBy(err, abort.signal)).toBe(false);
    } finally {
      spy.mockRestore();
      await closeServer(squatter);
    }
  });
});

describe('startNode: a signal during the ring join', () => {
  /** Aborts `abort` at the moment `when` names: mid-join (this node registered, not yet in the ring), or once it has joined. */
  function abortAt(when: 'mid-join' | 'after the join', abort: AbortController, reason: Error): { mockRestore(): void } {
    if (when === 'mid-join') {
      const start = original(Membership.prototype, 'start');
      return vi.spyOn(Membership.prototype, 'start').mockImplementation(async function (this: Membership) {
        await start.call(this);
        abort.abort(reason);
      });
    }
    const start = original(ClusterNode.prototype, 'start');
    return vi.spyOn(ClusterNode.prototype, 'start').mockImplementation(async function (this: ClusterNode) {
      await start.call(this);
      abort.abort(reason);
    });
  }

  it.each(['mid-join', 'after the join'] as const)(
    'aborted %s: the node finishes joining, drains out of the ring and stops; no heartbeat or ring change follows',
    async (when) => {
      const cluster = `${redis.cluster}${when === 'mid-join' ? 'm' : 'j'}`;
      const base = {
        REDIS_URL: redis.url,
        CLUSTER: cluster,
        HOST: '127.0.0.1',
        HTTP_PORT: '0',
        PEER_PORT: '0',
        ROLES: 'edge,actors',
        SHARDS: '8',
      };
      // Another node to hand the shards to: the last node of a ring cannot leave it.
      const other = await startNode(loadConfig({ ...base, NODE_ID: 'join-other' }), { logger: silentLogger, shutdownGraceMs: 100 });
      const reader = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
      await connectRedis(reader);
      const keys = new KeyLayout(cluster);
      const ring = async (): Promise<RingDoc> => JSON.parse((await reader.get(keys.ring()))!) as RingDoc;
      try {
        const abort = new AbortController();
        const reason = new Error('SIGTERM during the start');
        const spy = abortAt(when, abort, reason);
        try {
          const started = startNode(loadConfig({ ...base, NODE_ID: 'join-aborted' }), {
            logger: silentLogger,
            shutdownGraceMs: 100,
            signal: abort.signal,
          });
          await expect(started).rejects.toBe(reason);
        } finally {
          spy.mockRestore();
        }
        // Before the fix: mid-join, the join went on after the undo (the heartbeat outlived the node);
        // after it, the node stopped without draining and stayed in the ring.
        const after = await ring();
        expect(after.nodes.map((n) => n.id)).toEqual(['join-other']);
        expect(await reader.exists(keys.heartbeat('join-aborted'))).toBe(0);
        // Nothing of it keeps running: its heartbeat (refreshed every 2 s) does not come back, and the ring stays.
        await delay(2_500);
        expect(await reader.exists(keys.heartbeat('join-aborted'))).toBe(0);
        expect((await ring()).epoch).toBe(after.epoch);
      } finally {
        reader.disconnect();
        await other.close();
      }
    },
  );
});
