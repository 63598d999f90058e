import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PeerSecretKeeper } from '../../node/peer-secret-keeper.ts';
import { leaseTtlFor, openRedisBackend } from '../../node/redis-backend.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { RedisStore } from '../../runtime/redis/redis-store.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';

/** A TCP server posing as a Redis too old to run on: ioredis connects, and the version check fails. */
async function refusingRedis(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // OK to everything (ioredis' CLIENT SETNAME, ...), and an INFO naming a Redis too old to run on: the start fails at once.
    // One reply per command of the chunk (RESP arrays: `*<n>` then the name as the first bulk string).
    socket.on('data', (d: Buffer) => {
      const info = 'redis_version:5.0.0\r\n';
      for (const command of d
        .toString()
        .split(/\*\d+\r\n/)
        .slice(1))
        socket.write(/^\$\d+\r\ninfo\r\n/i.test(command) ? `$${info.length}\r\n${info}\r\n` : '+OK\r\n');
    });
    socket.on('error', () => {});
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

describe('openRedisBackend', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
  });

  it('leaves no client reconnecting behind when the start fails', async () => {
    const fake = await refusingRedis();
    server = fake.server;
    await expect(
      openRedisBackend(
        { url: `redis://127.0.0.1:${fake.port}`, cluster: 'leak', nodeId: 'n1', shards: 8, onShardLost: () => {} },
        new Registry(),
        silentLogger,
      ),
    ).rejects.toThrow();
    // A client left behind would reconnect (ioredis' retry strategy) every 50 ms-2 s: none may come.
    const after = fake.connections();
    await delay(1_500);
    expect(fake.connections()).toBe(after);
  });

  it('starts no peer secret keeper when it closes while sharedPeerSecret waits on Redis (a start aborted at that step)', async () => {
    const redis = await startTestRedis();
    const starts = vi.spyOn(PeerSecretKeeper.prototype, 'start');
    // The store's close is held until the secret's read has settled: the moment the fix is about.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const storeClose = vi.spyOn(RedisStore.prototype, 'close').mockImplementation(() => held);
    try {
      const backend = await openRedisBackend(
        { url: redis.url, cluster: redis.cluster, nodeId: 'n1', shards: 8, onShardLost: () => {} },
        new Registry(),
        silentLogger,
      );
      const secret = backend.sharedPeerSecret();
      const closing = backend.close();
      // Before the fix the read succeeded and a keeper started, its timer outliving the closed backend.
      await expect(secret).rejects.toThrow('the Redis backend closed while the peer secret was read');
      release();
      await closing;
      expect(starts).not.toHaveBeenCalled();
    } finally {
      release();
      storeClose.mockRestore();
      starts.mockRestore();
      await redis.stop();
    }
  });
});

describe('leaseTtlFor', () => {
  it("keeps a live node's lease alive past its self-fence: 15 s, or the heartbeat TTL plus two renewal periods when longer", () => {
    expect(leaseTtlFor(2_000)).toBe(15_000);
    expect(leaseTtlFor(5_000)).toBe(15_000);
    expect(leaseTtlFor(30_000)).toBe(40_000);
    // With Redis out of reach from T: the lease lapses no earlier than T − 5 s + ttl, the fence comes by T + heartbeat.
    for (const hb of [500, 2_000, 10_000, 60_000, 300_000]) expect(leaseTtlFor(hb) - 5_000).toBeGreaterThan(hb);
  });
});
