/** ClusterBackend before its cluster has started: the admin routes answer 503 `unavailable`, not a TypeError (500); a close during the start waits for it. */
import { Registry } from 'prom-client';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import { ClusterNode } from '../../cluster/cluster-node.ts';
import { MemoryCredentialStore } from '../../edge-api/auth/credential-store.ts';
import { EventFeed } from '../../edge-api/events/event-feed.ts';
import { createHttpApp } from '../../edge-api/http/create-http-app.ts';
import { ClusterBackend } from '../../node/cluster-backend.ts';
import type { RedisBackend } from '../../node/redis-backend.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';
import { runtimeError } from '../../runtime/result.ts';

const ADMIN = 'admin-cluster-backend-test';

describe('ClusterBackend', () => {
  it('answers the admin routes 503 unavailable until the cluster has started (the HTTP edge listens before)', async () => {
    const registry = new Registry();
    // start() is never called: nothing touches Redis.
    const backend = new ClusterBackend({
      nodeId: 'n1',
      redis: {} as RedisBackend,
      peerAuth: { cluster: 'iot', secret: 'cluster-backend-test-peer-secret-0123456789' },
      registry,
      logger: silentLogger,
      autoJoin: true,
    });
    const router: ActorRouter = {
      ask: async () => runtimeError('unavailable', 'unused'),
      tell: () => runtimeError('unavailable', 'unused'),
      deliver: () => runtimeError('unavailable', 'unused'),
    };
    const app = createHttpApp({
      router,
      credentials: new MemoryCredentialStore(),
      feed: new EventFeed(),
      adminToken: ADMIN,
      registry,
      logger: silentLogger,
      readiness: () => ({ ready: false, checks: { started: false } }),
      maxBodyBytes: 64 * 1024,
      rateLimit: { perTokenPerSec: 1_000, perHomePerSec: 1_000, burst: 1_000 },
      cluster: backend.adminPort,
    });
    const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const change = JSON.stringify({ add: [{ id: 'n2', weight: 1 }] });
    const responses = [
      await app.request('/v1/admin/cluster', { headers }),
      await app.request('/v1/admin/ring/plan', { method: 'POST', headers, body: change }),
      await app.request('/v1/admin/ring', { method: 'POST', headers, body: change }),
    ];
    for (const res of responses) {
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: 'unavailable', message: expect.stringContaining('starting') } });
    }
  });

  it('closes after a start still under way has finished, and stops what it started (heartbeat, ring watch, reporting)', async () => {
    let join: () => void = () => {};
    const joined = new Promise<void>((resolve) => (join = resolve));
    const starts = vi.spyOn(ClusterNode.prototype, 'start').mockImplementation(() => joined);
    const stops = vi.spyOn(ClusterNode.prototype, 'stop').mockImplementation(async () => {});
    const reporting = vi.spyOn(ClusterAdmin.prototype, 'startReporting').mockImplementation(() => {});
    const stopReporting = vi.spyOn(ClusterAdmin.prototype, 'stopReporting').mockImplementation(async () => {});
    try {
      // A client for the constructors only: the join itself (ClusterNode.start) is held above.
      const client = { ringCas: () => {} } as unknown as RedisClient;
      const backend = new ClusterBackend({
        nodeId: 'n1',
        redis: { client, keys: new KeyLayout('cb'), shardCount: 8 } as unknown as RedisBackend,
        peerAuth: { cluster: 'iot', secret: 'cluster-backend-test-peer-secret-0123456789' },
        registry: new Registry(),
        logger: silentLogger,
        autoJoin: true,
      });
      const starting = backend.start({ http: '127.0.0.1:1', grpc: '', peer: '127.0.0.1:2' });
      await vi.waitFor(() => expect(starts).toHaveBeenCalledTimes(1));
      let closed = false;
      const closing = backend.close().then(() => void (closed = true));
      await delay(50);
      // Before the fix close returned here, stopping nothing; the join then started the heartbeat and reporting for good.
      expect(closed).toBe(false);
      join();
      await starting;
      await closing;
      expect(reporting).toHaveBeenCalledTimes(1);
      expect(stopReporting).toHaveBeenCalledTimes(1);
      expect(stops).toHaveBeenCalledTimes(1);
    } finally {
      for (const spy of [starts, stops, reporting, stopReporting]) spy.mockRestore();
    }
  });
});
