/** ClusterBackend before its cluster has started: the admin routes answer 503 `unavailable`, not a TypeError (500). */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { MemoryCredentialStore } from '../../edge-api/auth/credential-store.ts';
import { EventFeed } from '../../edge-api/events/event-feed.ts';
import { createHttpApp } from '../../edge-api/http/create-http-app.ts';
import { ClusterBackend } from '../../node/cluster-backend.ts';
import type { RedisBackend } from '../../node/redis-backend.ts';
import { silentLogger } from '../../runtime/logger.ts';
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
});
