import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActorStack } from '../../../node/actor-stack.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}o${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/** Kills redis-server and waits until the client has noticed (no fixed sleep). */
async function killRedis(client: RedisClient): Promise<void> {
  redis.kill();
  await vi.waitFor(() => expect(client.status).not.toBe('ready'), { timeout: 5_000, interval: 10 });
}

/** Starts redis-server again (same port and data) and waits until the client is back. */
async function startRedis(client: RedisClient): Promise<void> {
  await redis.start();
  await vi.waitFor(() => expect(client.status).toBe('ready'), { timeout: 10_000, interval: 20 });
}

describe('RedisStore while Redis is down', () => {
  it('fails a write fast, reports unhealthy, and writes again once Redis is back', async () => {
    const { client, store } = await clients.node(freshKeys());
    await store.write('home:r1', { events: [{ seq: 1, at: 1, msg: 'before' }] });
    expect(store.healthy).toBe(true);

    await killRedis(client);
    expect(store.healthy).toBe(false);
    const started = Date.now();
    await expect(store.write('home:r1', { events: [{ seq: 2, at: 2, msg: 'during' }] })).rejects.toThrow();
    // Fail fast: well under the 2 s command timeout, so nothing waited in a queue for it.
    expect(Date.now() - started).toBeLessThan(1_500);
    await expect(store.recover('home:r1')).rejects.toThrow();
    expect(store.healthy).toBe(false);

    await startRedis(client);
    await store.write('home:r1', { events: [{ seq: 2, at: 3, msg: 'after' }] });
    expect(store.healthy).toBe(true);
    // Acknowledged before the crash (append-only file, fsync always) and after it; nothing else.
    expect((await store.recover('home:r1')).events.map((e) => e.msg)).toEqual(['before', 'after']);
  });

  it('answers unavailable through the actor host, then recovers the actor by itself without the unacknowledged step', async () => {
    const { client, store } = await clients.node(freshKeys());
    const { host } = createActorStack({
      store,
      logger: silentLogger,
      registry: new Registry(),
      hubCommands: { send: () => {} },
      publish: () => {},
    });
    try {
      const hello = await host.ask('hub:o1:hub1', {
        type: 'hub.hello',
        nodeId: 'n1',
        devices: [{ deviceId: 'lamp', type: 'light', capabilities: ['on'] }],
      });
      expect(hello).toMatchObject({ ok: true, value: { ok: true } });
      const lamp = 'device:o1:lamp';
      await vi.waitFor(async () => expect(await host.ask(lamp, { type: 'shadow.get' })).toMatchObject({ ok: true, value: { ok: true } }));
      const desired = await host.ask(lamp, { type: 'shadow.setDesired', desired: { on: true } });
      expect(desired).toMatchObject({ ok: true, value: { ok: true, value: { desired: { on: true } } } });
      const acked = await host.ask(lamp, { type: 'shadow.get' });

      await killRedis(client);
      const during = await host.ask(lamp, { type: 'shadow.setDesired', desired: { on: false, level: 3 } }, 3_000);
      expect(during).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      // The actor must reload before it answers again, and cannot while Redis is down.
      expect(await host.ask(lamp, { type: 'shadow.get' }, 3_000)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      const report = await host.ask(lamp, { type: 'report', seq: 1, tsMs: 5, attributes: { on: true } }, 3_000);
      expect(report).toMatchObject({ ok: false, error: { code: 'unavailable' } });

      await startRedis(client);
      // No restart of the host: the actor reloads on its next message. What it answers is what
      // was acknowledged, not the step that failed.
      await vi.waitFor(async () => expect(await host.ask(lamp, { type: 'shadow.get' })).toEqual(acked), { timeout: 10_000, interval: 50 });
      // And it goes on from there: the report that failed can be re-sent and applies once.
      expect(await host.ask(lamp, { type: 'report', seq: 1, tsMs: 5, attributes: { on: true } })).toMatchObject({
        ok: true,
        value: { ok: true, value: { applied: true } },
      });
      expect(await host.ask(lamp, { type: 'report', seq: 1, tsMs: 5, attributes: { on: true } })).toMatchObject({
        ok: true,
        value: { ok: true, value: { applied: false, reason: 'duplicate' } },
      });
      expect(store.healthy).toBe(true);
      const recovered = await store.recover(lamp);
      const msgs = [...recovered.events.map((e) => e.msg)];
      expect(msgs).not.toContainEqual(expect.objectContaining({ desired: { on: false, level: 3 } }));
    } finally {
      await host.close();
    }
  });
});
