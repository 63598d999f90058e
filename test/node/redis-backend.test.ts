import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { openRedisBackend } from '../../node/redis-backend.ts';
import { silentLogger } from '../../runtime/logger.ts';

/** A TCP server that answers every Redis command with an error: ioredis connects, and the version check fails. */
async function refusingRedis(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', () => socket.write('-ERR not a redis\r\n'));
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
});
