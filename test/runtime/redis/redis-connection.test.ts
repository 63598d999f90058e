import { createServer, type Server, type Socket } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRedis,
  createRedisClient,
  isSupportedRedisVersion,
  MIN_REDIS_VERSION,
  parseRedisUrl,
  RedisUrlError,
} from '../../../runtime/redis/redis-connection.ts';
import { loadConfig, redactRedisUrl } from '../../../node/config.ts';
import { ACCEPTED_REDIS_URLS, REFUSED_REDIS_URLS } from './redis-urls.ts';
import { FENCED_WRITE_COMMAND } from '../../../runtime/redis/fenced-write.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await redis.stop();
});

/**
 * A stand-in server that speaks just enough RESP: it answers every command with the given INFO
 * text, so a client sees whichever Redis version the test wants.
 */
async function fakeRedis(info: string): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      // Each complete command `*N\r\n($len\r\n<bytes>\r\n){N}` gets the INFO text as a bulk reply.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(pending);
        if (!m) return;
        let at = m[0].length;
        for (let i = 0; i < Number(m[1]); i++) {
          const b = /^\$(\d+)\r\n/.exec(pending.slice(at));
          if (!b) return;
          at += b[0].length + Number(b[1]) + 2;
        }
        if (at > pending.length) return;
        pending = pending.slice(at);
        socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('isSupportedRedisVersion', () => {
  it.each([
    ['6.2.0', true],
    ['6.2.14', true],
    ['6.3', true],
    ['6.10.0', true],
    ['7.0.15', true],
    ['7.4.1', true],
    ['10.0.0', true],
    ['6.1.99', false],
    ['6.0.20', false],
    ['5.0.14', false],
    ['6', false],
    ['', false],
    ['x.y.z', false],
  ])('%s → %s', (version, supported) => {
    expect(isSupportedRedisVersion(version)).toBe(supported);
  });

  it('accepts exactly the minimum version', () => {
    expect(isSupportedRedisVersion(MIN_REDIS_VERSION.join('.'))).toBe(true);
  });
});

describe('connectRedis', () => {
  it('connects to the test server and returns its version', async () => {
    const client = createRedisClient(redis.url, { failFast: true });
    try {
      const version = await connectRedis(client);
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(isSupportedRedisVersion(version)).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('refuses a server older than 6.2, naming its version and the minimum', async () => {
    const fake = await fakeRedis('# Server\r\nredis_version:6.0.9\r\nloading:0\r\n');
    const client = createRedisClient(fake.url, { failFast: true });
    client.on('error', () => {});
    try {
      await expect(connectRedis(client)).rejects.toThrow('Redis 6.0.9 is too old: 6.2.0 or newer is needed');
    } finally {
      client.disconnect();
      await fake.close();
    }
  });

  it('refuses a server that does not report its version', async () => {
    const fake = await fakeRedis('# Server\r\nloading:0\r\n');
    const client = createRedisClient(fake.url, { failFast: true });
    client.on('error', () => {});
    try {
      await expect(connectRedis(client)).rejects.toThrow(/did not report its version/);
    } finally {
      client.disconnect();
      await fake.close();
    }
  });
});

describe('createRedisClient', () => {
  it('sends shard windows as they are issued: the fence script is never held in an auto-pipeline behind other commands', () => {
    for (const url of ['redis://127.0.0.1:1', 'redis-cluster://127.0.0.1:1,127.0.0.1:2']) {
      const client = createRedisClient(url, { failFast: true });
      expect(client.options.enableAutoPipelining).toBe(true);
      expect(client.options.autoPipeliningIgnoredCommands).toContain(FENCED_WRITE_COMMAND);
      client.disconnect();
    }
  });

  it('builds a Sentinel client from redis-sentinel://[:password@]host:port,host:port/<master>, without connecting', () => {
    const client = createRedisClient('redis-sentinel://:p%40ss@s1:26379,10.0.0.2:26380/mymaster', { failFast: true });
    try {
      expect(client).toBeInstanceOf(Redis);
      const { options } = client as Redis;
      expect(options.sentinels).toEqual([
        { host: 's1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ]);
      expect(options.name).toBe('mymaster');
      expect(options.password).toBe('p@ss');
      expect(client.status).toBe('wait');
    } finally {
      client.disconnect();
    }
  });

  it("passes the Sentinels' own credentials (?sentinelUsername=…&sentinelPassword=…, %-decoded) apart from the master's", () => {
    const url = 'redis-sentinel://:master%40pw@s1:26379,s2:26380/mymaster?sentinelUsername=watch&sentinelPassword=s%40nt%26x';
    expect(parseRedisUrl(url)).toEqual({
      kind: 'sentinel',
      password: 'master@pw',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      master: 'mymaster',
      sentinelUsername: 'watch',
      sentinelPassword: 's@nt&x',
    });
    const client = createRedisClient(url, { failFast: true });
    try {
      const { options } = client as Redis;
      expect(options).toMatchObject({ password: 'master@pw', sentinelUsername: 'watch', sentinelPassword: 's@nt&x', name: 'mymaster' });
    } finally {
      client.disconnect();
    }
    // Neither the configuration error nor a redacted URL shows the Sentinels' password.
    expect(redactRedisUrl(url)).toBe('redis-sentinel://:***@s1:26379,s2:26380/mymaster?sentinelUsername=***&sentinelPassword=***');
    let message = '';
    try {
      loadConfig({ NODE_ID: 'n1', REDIS_URL: `${url}&db=1` });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('query parameter "db" is not read');
    expect(message).not.toContain('s%40nt');
    expect(message).not.toContain('master%40pw');
  });

  it('keeps every Lua command defined on a Cluster client out of auto-pipelines (ioredis files them under the slot of their key count)', () => {
    const client = createRedisClient('redis-cluster://127.0.0.1:1,127.0.0.1:2', { failFast: true });
    try {
      client.defineCommand('someScript', { lua: 'return 1' });
      expect(client.options.autoPipeliningIgnoredCommands).toEqual(expect.arrayContaining([FENCED_WRITE_COMMAND, 'someScript', 'evalsha']));
      expect('someScript' in client).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('builds a Cluster client from redis-cluster://[:password@]host:port,host:port: the startup nodes and the password, without connecting', () => {
    const client = createRedisClient('redis-cluster://:secret@c1:7000,c2:7001', { failFast: true });
    try {
      expect(client).toBeInstanceOf(Cluster);
      // ioredis keeps the startup nodes in a private field.
      expect((client as unknown as { startupNodes: unknown }).startupNodes).toEqual([
        { host: 'c1', port: 7000 },
        { host: 'c2', port: 7001 },
      ]);
      expect((client as Cluster).options.redisOptions?.password).toBe('secret');
      expect(client.status).toBe('wait');
    } finally {
      client.disconnect();
    }
  });
});

describe('parseRedisUrl: the one reading of REDIS_URL (configuration check and client)', () => {
  it.each(ACCEPTED_REDIS_URLS)('%s: accepted by loadConfig, and createRedisClient builds a client for it (no connect)', (url) => {
    expect(loadConfig({ NODE_ID: 'n1', REDIS_URL: url }).redisUrl).toBe(url);
    const client = createRedisClient(url, { failFast: true });
    try {
      expect(client.status).toBe('wait');
    } finally {
      client.disconnect();
    }
  });

  it.each(REFUSED_REDIS_URLS)('%s: refused by loadConfig naming REDIS_URL, and by createRedisClient alike', (url, why) => {
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: url })).toThrow(/^REDIS_URL[=:]/);
    expect(() => createRedisClient(url, { failFast: true })).toThrow(RedisUrlError);
    expect(() => createRedisClient(url, { failFast: true })).toThrow(why);
  });

  it('reads a standalone URL: host, port (6379 by default), db, TLS, and the credentials %-decoded', () => {
    expect(parseRedisUrl('redis://h')).toEqual({ kind: 'standalone', host: 'h', port: 6379, db: 0, tls: false });
    expect(parseRedisUrl('rediss://us%40er:p%40ss%2F1@[::1]:6380/3')).toEqual({
      kind: 'standalone',
      username: 'us@er',
      password: 'p@ss/1',
      host: '::1',
      port: 6380,
      db: 3,
      tls: true,
    });
    // A password may hold `/`, `?` or `#` as written: the credentials end at the `@`.
    expect(parseRedisUrl('redis://:a/b?c#d@h:1')).toMatchObject({ password: 'a/b?c#d', host: 'h', port: 1 });
  });

  it('decodes the user name of every form alike, and reads the Sentinel master and the Cluster nodes', () => {
    expect(parseRedisUrl('redis-sentinel://us%40er:pw@s1:26379,s2:26380/mymaster')).toEqual({
      kind: 'sentinel',
      username: 'us@er',
      password: 'pw',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      master: 'mymaster',
    });
    expect(parseRedisUrl('redis-cluster://us%40er:pw@c1:7000')).toEqual({
      kind: 'cluster',
      username: 'us@er',
      password: 'pw',
      nodes: [{ host: 'c1', port: 7000 }],
    });
  });

  it('gives the standalone client what the URL says: db, credentials and TLS (redis://h/0?db=3 is refused, not db 0)', () => {
    const client = createRedisClient('rediss://u%40x:p%40ss@127.0.0.1:1/5', { failFast: true });
    try {
      const { options } = client as Redis;
      expect(options).toMatchObject({ host: '127.0.0.1', port: 1, db: 5, username: 'u@x', password: 'p@ss' });
      expect(options.tls).toBeDefined();
    } finally {
      client.disconnect();
    }
    expect(() => createRedisClient('redis://h/0?db=3', { failFast: true })).toThrow('query string');
  });
});
