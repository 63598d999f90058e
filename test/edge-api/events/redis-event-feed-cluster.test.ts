/** RedisEventFeed on a real 3-master Redis Cluster: a subscriber connection that is killed (and swapped by ioredis without a word) loses no event. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfHome } from '../../../cluster/shard-of.ts';
import type { FeedBatch } from '../../../edge-api/events/home-event-feed.ts';
import { RedisEventFeed } from '../../../edge-api/events/redis-event-feed.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedisCluster, type TestRedisCluster } from '../../support/redis-cluster.ts';

const SHARDS = 16;
let cluster: TestRedisCluster;
const clients = new RedisClients(() => cluster.url);
let feed: RedisEventFeed | undefined;

beforeAll(async () => {
  cluster = await startTestRedisCluster();
}, 60_000);

afterAll(async () => {
  await feed?.close();
  clients.disconnectAll();
  await cluster?.stop();
});

describe('RedisEventFeed on Redis Cluster', () => {
  it('delivers every id of the log, in order and once, while its subscriber connection is killed on every master', async () => {
    const keys = new KeyLayout(`${cluster.cluster}fc`);
    const node = await clients.node(keys, { shards: SHARDS });
    const homeId = 'swap';
    const shard = shardOfHome(homeId, SHARDS);
    feed = new RedisEventFeed({
      client: await clients.connect(),
      keys,
      shardOfHome: (h) => shardOfHome(h, SHARDS),
      logger: silentLogger,
      retryMs: 100,
      checkEveryMs: 500,
    });
    const batches: FeedBatch[] = [];
    await feed.subscribe(homeId, (b) => void batches.push(b)).following;
    const masters = cluster.ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true }));
    try {
      for (const m of masters) await m.connect();
      let writing = true;
      const writer = (async () => {
        let i = 0;
        while (writing) {
          await node.store.commit(shard, [], [{ log: homeId, at: Date.now(), entry: { topic: 't', data: { i: i++ } } }]);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      for (let round = 0; round < 4; round++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        for (const m of masters) await m.client('KILL', 'TYPE', 'pubsub');
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
      writing = false;
      await writer;
      const logged = (await node.client.xrange(keys.events(shard, homeId), '-', '+')).map(([id]) => id);
      const received = (): string[] => batches.flatMap((b) => b.events.map((e) => e.id));
      await vi.waitFor(() => expect(received()).toEqual(logged), { timeout: 15_000 });
      expect(batches.filter((b) => b.gap)).toEqual([]);
      console.log(`cluster feed: ${logged.length} events, ${batches.filter((b) => b.replay).length} catch-up reads`);
    } finally {
      for (const m of masters) m.disconnect();
    }
  }, 60_000);
});
