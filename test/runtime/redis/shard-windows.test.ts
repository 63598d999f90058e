import type { Registry } from 'prom-client';
import { Registry as PromRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ActorHost } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { counterBehavior, counterTellOf } from '../counter-behavior.ts';

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

function hostOver(store: RedisStore, effects: unknown[] = []): ActorHost {
  return new ActorHost({
    behaviors: [counterBehavior],
    store,
    logger: silentLogger,
    registry: new PromRegistry(),
    tellOf: counterTellOf,
    onEffects: (_from, e) => effects.push(...e),
  });
}

describe('shard windows on Redis', () => {
  it('writes 2,000 actors asked in one tick with one script call per shard window, all recoverable', async () => {
    const keys = new KeyLayout(`${redis.cluster}g`);
    const { client, store, registry } = await clients.node(keys, { shards: SHARDS });
    const host = hostOver(store);
    const watch = await watchFencedWrites(client, keys);
    const ids = Array.from({ length: 2_000 }, (_, i) => `counter:home${i % 400}:d${i}`);
    const replies = await Promise.all(ids.map((id, i) => host.ask(id, { type: 'add', n: i + 1 })));
    expect(replies.every((r) => r.ok)).toBe(true);
    await watch.settle();
    watch.close();

    const windows = await histogram(registry, 'iot_persist_window_actors');
    expect(windows.sum).toBe(2_000);
    // One window per shard for the turn (the activations of a turn recover together, then run in
    // one turn); never one call per actor.
    expect(watch.calls.length).toBe(windows.count);
    expect(windows.count).toBeLessThanOrEqual(2 * SHARDS);
    await host.close();
    const again = hostOver(store);
    expect(await again.ask(ids[1_999]!, { type: 'get' })).toEqual({ ok: true, value: 2_000 });
    await again.close();
  });

  it('writes a step and the steps it caused in the same shard as one script call, and holds outside effects until then', async () => {
    const keys = new KeyLayout(`${redis.cluster}c`);
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const effects: unknown[] = [];
    const host = hostOver(store, effects);
    // Same home segment, same shard: a relay and the add it causes.
    await host.ask('counter:h1:a', { type: 'get' });
    await host.ask('counter:h1:b', { type: 'get' });
    const watch = await watchFencedWrites(client, keys);
    expect(await host.ask('counter:h1:a', { type: 'relay', to: 'counter:h1:b', n: 5 })).toEqual({ ok: true, value: 5 });
    // By the time the relay is answered its window holds b's step too: b already counts 5.
    expect(await host.ask('counter:h1:b', { type: 'get' })).toEqual({ ok: true, value: 5 });
    await watch.settle();
    watch.close();
    expect(watch.calls).toHaveLength(1);
    expect(watch.calls[0]!.filter((a) => a.includes(':j:'))).toEqual([
      keys.journal(store.shardOf('counter:h1:a'), 'counter:h1:a'),
      keys.journal(store.shardOf('counter:h1:a'), 'counter:h1:b'),
    ]);
    // b's own effect (added 5) left the shard only after the window was written.
    expect(effects).toContainEqual({ added: 5 });
    await host.close();
  });

  /**
   * A store over `keys` whose next fenced-write call goes wrong the way `fault` says: it lets the
   * call run and then fails it (a timeout after Redis ran it), or fails it unsent.
   */
  async function faultyStore(keys: KeyLayout) {
    const { client, leases, store } = await clients.node(keys, { shards: SHARDS });
    let fault: 'after' | 'before' | undefined;
    const proxy = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === 'fencedWrite' && fault !== undefined) {
          const kind = fault;
          fault = undefined;
          return async (...args: string[]) => {
            if (kind === 'before') throw new Error('Connection is closed.');
            await (value as (...a: string[]) => Promise<string[]>).apply(target, args);
            throw new Error('Command timed out');
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const faulty = new RedisStore({
      client: proxy,
      keys,
      shardOf: store.shardOf,
      fenceToken: (s) => leases.token(s),
      onFenced: () => {},
      registry: new PromRegistry(),
      logger: silentLogger,
    });
    return { store: faulty, failNext: (kind: 'after' | 'before') => (fault = kind) };
  }

  it('releases a window whose call failed after Redis ran it (a timeout): its effects are not dropped', async () => {
    const { store, failNext } = await faultyStore(new KeyLayout(`${redis.cluster}t`));
    const effects: unknown[] = [];
    const host = hostOver(store, effects);
    await host.ask('counter:h2:a', { type: 'add', n: 1 });
    failNext('after');
    expect(await host.ask('counter:h2:a', { type: 'add', n: 5 })).toEqual({ ok: true, value: 6 });
    expect(effects).toContainEqual({ added: 5 });
    await host.close();
  });

  it('fails a window whose call failed before Redis ran it, and the actor goes on from the durable state', async () => {
    const { store, failNext } = await faultyStore(new KeyLayout(`${redis.cluster}u`));
    const effects: unknown[] = [];
    const host = hostOver(store, effects);
    await host.ask('counter:h3:a', { type: 'add', n: 1 });
    failNext('before');
    expect(await host.ask('counter:h3:a', { type: 'add', n: 5 })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(effects).not.toContainEqual({ added: 5 });
    expect(await host.ask('counter:h3:a', { type: 'get' })).toEqual({ ok: true, value: 1 });
    await host.close();
  });

  it('keeps an actor whose journal is damaged from taking its shard down: it is refused, its neighbours are served', async () => {
    const keys = new KeyLayout(`${redis.cluster}d`);
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const first = hostOver(store);
    await first.ask('counter:h5:bad', { type: 'add', n: 1 });
    await first.ask('counter:h5:bad', { type: 'add', n: 1 });
    await first.ask('counter:h5:good', { type: 'add', n: 1 });
    await first.close();
    // Its stored state is lost (an eviction, a hand edit): the bookkeeping still says seq 2.
    const shard = store.shardOf('counter:h5:bad');
    await client.del(keys.snapshot(shard, 'counter:h5:bad'), keys.journal(shard, 'counter:h5:bad'));
    const host = hostOver(store);
    expect(await host.ask('counter:h5:bad', { type: 'add', n: 1 })).toMatchObject({
      ok: false,
      error: { code: 'unavailable', message: expect.stringMatching(/journal is damaged/) },
    });
    // In the same shard, at the same time: served, and written.
    const [bad, good] = await Promise.all([
      host.ask('counter:h5:bad', { type: 'add', n: 1 }),
      host.ask('counter:h5:good', { type: 'add', n: 1 }),
    ]);
    expect(bad).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(good).toEqual({ ok: true, value: 2 });
    await host.close();
  });

  it('refuses a whole window when one of its actors is not where the window expects it, writing nothing', async () => {
    const keys = new KeyLayout(`${redis.cluster}q`);
    const { store } = await clients.node(keys, { shards: SHARDS });
    const shard = store.shardOf('counter:h4:a');
    await store.write('counter:h4:b', { events: [{ seq: 1, at: 1, msg: 'b1' }] });
    await expect(
      store.commit(shard, [
        { actorId: 'counter:h4:a', batch: { events: [{ seq: 1, at: 2, msg: 'a1' }] } },
        { actorId: 'counter:h4:b', batch: { events: [{ seq: 1, at: 2, msg: 'b1 again' }] } },
      ]),
    ).rejects.toThrow(/SEQ 1/);
    expect((await store.recover('counter:h4:a')).events).toEqual([]);
    // An actor named twice in one window continues its own first part.
    await expect(
      store.commit(shard, [
        { actorId: 'counter:h4:a', batch: { events: [{ seq: 1, at: 3, msg: 'x' }] } },
        { actorId: 'counter:h4:a', batch: { events: [{ seq: 1, at: 3, msg: 'fork' }] } },
      ]),
    ).rejects.toThrow(/SEQ/);
    expect((await store.recover('counter:h4:a')).events).toEqual([]);
  });
});
