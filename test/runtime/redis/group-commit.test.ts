import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

const SHARDS = 16;
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/** Count and sum of a histogram in the registry. */
async function histogram(registry: Registry, name: string): Promise<{ count: number; sum: number }> {
  // Histogram values carry their series name (`_count`, `_sum`, `_bucket`), which the type omits.
  const values = ((await registry.getSingleMetric(name)?.get())?.values ?? []) as { metricName?: string; value: number }[];
  const find = (suffix: string): number => values.find((v) => v.metricName === `${name}${suffix}`)?.value ?? 0;
  return { count: find('_count'), sum: find('_sum') };
}

/**
 * Records, from Redis' side, every fenced-write script call on `keys`' shards (its first key is a
 * fence key; lease scripts start with the lease key). `settle` waits until Redis has reported
 * everything executed so far, by sending a marker through `client` and waiting to see it.
 */
async function watchFencedWrites(client: RedisClient, keys: KeyLayout) {
  const monitor = await (client as Extract<RedisClient, { monitor: unknown }>).monitor();
  const calls: string[][] = [];
  const markers = new Set<string>();
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0] === 'echo' && args[1]) markers.add(args[1]);
    const first = args[3] ?? '';
    if ((args[0] === 'evalsha' || args[0] === 'eval') && first.startsWith(keys.shardTag(0).slice(0, -2)) && first.endsWith(':fence')) {
      calls.push(args);
    }
  });
  let n = 0;
  return {
    calls,
    settle: async () => {
      const marker = `settled-${n++}`;
      await client.echo(marker);
      await vi.waitFor(() => expect(markers.has(marker)).toBe(true), { timeout: 5_000, interval: 5 });
    },
    close: () => monitor.disconnect(),
  };
}

describe('RedisStore group commit', () => {
  it('writes 2,000 actors issued in one tick in a handful of Redis round trips, all recoverable', async () => {
    const keys = new KeyLayout(`${redis.cluster}g`);
    const { client, store, registry } = await clients.node(keys, { shards: SHARDS });
    const watch = await watchFencedWrites(client, keys);
    const ids = Array.from({ length: 2_000 }, (_, i) => `device:home${i % 400}:d${i}`);

    const writes = ids.map((id, i) =>
      store.write(id, {
        events: [
          { seq: 1, at: 1_000 + i, msg: { type: 'report', n: i } },
          { seq: 2, at: 2_000 + i, msg: { type: 'report', n: -(i + 1) } },
        ],
      }),
    );
    await Promise.all(writes);
    await watch.settle();
    watch.close();

    const windows = await histogram(registry, 'iot_persist_window_actors');
    expect(windows.sum).toBe(2_000);
    expect(windows.count).toBeLessThanOrEqual(3); // one window in practice; never one per write
    // One fenced script call per shard per window, pipelined: not one per actor.
    expect(watch.calls.length).toBeGreaterThanOrEqual(1);
    expect(watch.calls.length).toBeLessThanOrEqual(windows.count * SHARDS);
    expect((await histogram(registry, 'iot_persist_window_events')).sum).toBe(4_000);

    const recovered = await Promise.all(ids.map((id) => store.recover(id)));
    recovered.forEach((r, i) => {
      expect(r, ids[i]).toEqual({
        events: [
          { seq: 1, at: 1_000 + i, msg: { type: 'report', n: i } },
          { seq: 2, at: 2_000 + i, msg: { type: 'report', n: -(i + 1) } },
        ],
      });
    });
  });

  it('keeps each window to at most one script call per shard while writes keep arriving', async () => {
    const keys = new KeyLayout(`${redis.cluster}s`);
    const { client, store, registry } = await clients.node(keys, { shards: SHARDS, store: { maxWindowWrites: 500 } });
    const watch = await watchFencedWrites(client, keys);
    // Five bursts of 1,000 actors, each burst a tick apart: writes that arrive while a window is
    // in flight form the next one.
    const all: Promise<void>[] = [];
    for (let burst = 0; burst < 5; burst++) {
      for (let i = 0; i < 1_000; i++) all.push(store.write(`home:b${burst}x${i}`, { events: [{ seq: 1, at: burst, msg: i }] }));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    await watch.settle();
    watch.close();
    const windows = await histogram(registry, 'iot_persist_window_actors');
    expect(windows.sum).toBe(5_000);
    expect(windows.count).toBeLessThan(100);
    expect(watch.calls.length).toBeLessThanOrEqual(windows.count * SHARDS);
    expect((await store.recover('home:b4x999')).events).toEqual([{ seq: 1, at: 4, msg: 999 }]);
  });
});
