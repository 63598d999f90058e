/** startNode as a cluster member over a private Redis: the cluster admin once started, and a shutdown that closes the store once. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../node/config.ts';
import { startNode } from '../../node/start-node.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { RedisStore } from '../../runtime/redis/redis-store.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

let redis: TestRedis;

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
