/** Membership on a real Redis: registration, heartbeats that expire, a clean leave, and an outage logged once. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NodeInfo } from '../../cluster/cluster-types.ts';
import { Membership } from '../../cluster/membership.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../runtime/redis/redis-connection.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

let redis: TestRedis;
const clients: RedisClient[] = [];
let client: RedisClient;
let seq = 0;

async function connect(): Promise<RedisClient> {
  const c = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 2_000 });
  c.on('error', () => {}); // expected while Redis is killed
  await connectRedis(c);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  redis = await startTestRedis();
  client = await connect();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.stop();
});

const info = (id: string): NodeInfo => ({
  id,
  http: `127.0.0.1:80${id.length}`,
  grpc: '127.0.0.1:50051',
  peer: '',
  startedAt: 1_700_000_000_000,
});
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}m${seq++}`);

describe('Membership', () => {
  it('registers the node record, lists it and starts a heartbeat with the TTL', async () => {
    const keys = freshKeys();
    const m = new Membership(client, keys, info('n1'), silentLogger, { ttlMs: 5_000 });
    await m.start();
    // The record carries the node's heartbeat TTL (doctor judges its heartbeat by it).
    expect(await m.info('n1')).toEqual({ ...info('n1'), heartbeatTtlMs: 5_000 });
    expect(await m.info('nobody')).toBeUndefined();
    expect(await m.all()).toEqual([{ ...info('n1'), heartbeatTtlMs: 5_000 }]);
    const pttl = await client.pttl(keys.heartbeat('n1'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await m.stop();
  });

  it('lets the heartbeat expire after the TTL when a node stops refreshing, while a refreshing node stays alive', async () => {
    const keys = freshKeys();
    const steady = new Membership(client, keys, info('steady'), silentLogger, { ttlMs: 300 });
    const crashedClient = await connect();
    const crashed = new Membership(crashedClient, keys, info('crashed'), silentLogger, { ttlMs: 300 });
    await steady.start();
    await crashed.start();
    expect(await steady.alive(['steady', 'crashed'])).toEqual(new Set(['steady', 'crashed']));

    crashedClient.disconnect(); // its refreshes fail from now on, as when the node dies
    const t0 = Date.now();
    await vi.waitFor(async () => expect(await steady.alive(['steady', 'crashed'])).toEqual(new Set(['steady'])), {
      timeout: 5_000,
      interval: 20,
    });
    expect(Date.now() - t0).toBeGreaterThan(150); // it lived out (most of) its TTL
    // Several TTLs later the refreshing node is still alive.
    await vi.waitFor(
      async () => {
        expect(await steady.alive(['steady'])).toEqual(new Set(['steady']));
        expect(Date.now() - t0).toBeGreaterThan(1_000);
      },
      { timeout: 5_000, interval: 20 },
    );
    // The record of a dead node stays.
    expect((await steady.all()).map((n) => n.id)).toEqual(['crashed', 'steady']);
    await steady.stop();
    await crashed.stop(); // cannot reach Redis: logs, does not throw
  });

  it('reports exactly the nodes with a live heartbeat, in one call', async () => {
    const keys = freshKeys();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => new Membership(client, keys, info(id), silentLogger));
    await Promise.all([a!.start(), b!.start(), c!.start()]);
    await c!.stop();
    expect(await a!.alive(['a', 'b', 'c', 'never-registered'])).toEqual(new Set(['a', 'b']));
    expect(await a!.alive([])).toEqual(new Set());
    await Promise.all([a!.stop(), b!.stop()]);
    expect(await a!.alive(['a', 'b', 'c'])).toEqual(new Set());
  });

  it('deletes the heartbeat at once on stop and keeps the record', async () => {
    const keys = freshKeys();
    const m = new Membership(client, keys, info('n1'), silentLogger, { ttlMs: 60_000 });
    await m.start();
    expect(await client.exists(keys.heartbeat('n1'))).toBe(1);
    await m.stop();
    expect(await client.exists(keys.heartbeat('n1'))).toBe(0);
    expect(await m.alive(['n1'])).toEqual(new Set());
    expect(await m.info('n1')).toEqual({ ...info('n1'), heartbeatTtlMs: 60_000 });
    expect(await m.all()).toEqual([{ ...info('n1'), heartbeatTtlMs: 60_000 }]);
  });

  it("reads an older node's record, written without its heartbeat TTL, as it is (readers assume the default)", async () => {
    const keys = freshKeys();
    await client.set(keys.node('old'), JSON.stringify(info('old')));
    await client.sadd(keys.nodes(), 'old');
    const m = new Membership(client, keys, info('n1'), silentLogger);
    expect(await m.info('old')).toEqual(info('old'));
    expect(await m.all()).toEqual([info('old')]);
  });

  it('does not refresh the heartbeat after stop', async () => {
    const keys = freshKeys();
    const m = new Membership(client, keys, info('n1'), silentLogger, { ttlMs: 30 }); // refreshes every 10 ms
    await m.start();
    const set = vi.spyOn(client, 'set');
    await vi.waitFor(() => expect(set.mock.calls.length).toBeGreaterThanOrEqual(2), { timeout: 2_000, interval: 5 });
    await m.stop();
    set.mockClear();
    // Another node refreshing at the same pace marks the time: several of its refreshes, none of n1's.
    const other = new Membership(client, keys, info('n2'), silentLogger, { ttlMs: 30 });
    await other.start();
    await vi.waitFor(() => expect(set.mock.calls.length).toBeGreaterThanOrEqual(5), { timeout: 2_000, interval: 5 });
    expect(set.mock.calls.map((c) => c[0])).not.toContain(keys.heartbeat('n1'));
    expect(await client.exists(keys.heartbeat('n1'))).toBe(0);
    await other.stop();
    set.mockRestore();
  });

  it('lists every registered node by id from the node set', async () => {
    const keys = freshKeys();
    const ms = ['z', 'x', 'y'].map((id) => new Membership(client, keys, info(id), silentLogger));
    for (const m of ms) await m.start();
    expect((await ms[0]!.all()).map((n) => n.id)).toEqual(['x', 'y', 'z']);
    expect(await client.smembers(keys.nodes())).toHaveLength(3);
    for (const m of ms) await m.stop();
  });

  it('refuses a TTL that cannot be refreshed', () => {
    expect(() => new Membership(client, freshKeys(), info('n'), silentLogger, { ttlMs: 0 })).toThrow(/ttlMs/);
    expect(() => new Membership(client, freshKeys(), info('n'), silentLogger, { ttlMs: 12.5 })).toThrow(/ttlMs/);
  });

  it('keeps refreshing on a connection of its own while the data connection is blocked inside Redis (no self-fence), and closes it on stop', async () => {
    /** Blocks `data` inside Redis for 3 s (a BLPOP nobody answers, as a WAIT without replicas would) and samples mayServe meanwhile. */
    async function lapsesWhileBlocked(m: Membership, data: RedisClient): Promise<boolean> {
      const blocked = data.blpop(`${redis.cluster}:never-pushed:${seq++}`, 3);
      let lapsed = false;
      const until = performance.now() + 2_800;
      while (performance.now() < until) {
        if (!m.mayServe()) lapsed = true;
        await new Promise((r) => setTimeout(r, 20));
      }
      await blocked;
      return lapsed;
    }
    const data = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 10_000 });
    data.on('error', () => {}); // expected once the last test kills Redis
    await connectRedis(data);
    clients.push(data);
    const keys = freshKeys();
    // TTL 1 s: refreshed every 200 ms, may serve until 800 ms after the last send.
    const own = new Membership(data, keys, info('own'), silentLogger, { ttlMs: 1_000, ownConnection: true });
    await own.start();
    expect(await lapsesWhileBlocked(own, data)).toBe(false);
    expect(await client.exists(keys.heartbeat('own'))).toBe(1);
    const connections = async (): Promise<number> =>
      String(await client.client('LIST'))
        .split('\n')
        .filter(Boolean).length;
    const before = await connections();
    await own.stop();
    expect(await client.exists(keys.heartbeat('own'))).toBe(0);
    await vi.waitFor(async () => expect(await connections()).toBe(before - 1)); // its own connection closed
    expect(data.status).toBe('ready'); // the data connection is the caller's: left open

    // The same on the data connection (as before): every refresh waits behind the blocked command.
    const shared = new Membership(data, freshKeys(), info('shared'), silentLogger, { ttlMs: 1_000 });
    await shared.start();
    expect(await lapsesWhileBlocked(shared, data)).toBe(true);
    await shared.stop();
  }, 20_000);

  it('reads a heartbeat without a TTL (PTTL -1, written by hand) as alive, not expired', async () => {
    const keys = freshKeys();
    const m = new Membership(client, keys, info('n1'), silentLogger);
    await client.set(keys.heartbeat('manual'), '1');
    expect(await m.heartbeatLeftMs('manual')).toBe(Number.POSITIVE_INFINITY);
    expect(await m.heartbeatLeftMs('absent')).toBeUndefined();
  });

  // Kills the test Redis: keep this last.
  it('logs a Redis outage once, never throws from the timer, and is alive again once Redis is back', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
    const keys = freshKeys();
    const m = new Membership(client, keys, info('n1'), logger, { ttlMs: 150 }); // refreshes every 50 ms
    await m.start();
    const pipelines = vi.spyOn(client, 'pipeline');

    redis.kill();
    // While failing, each refresh tries to register again (a pipeline): wait for several attempts.
    await vi.waitFor(() => expect(pipelines.mock.calls.length).toBeGreaterThanOrEqual(4), { timeout: 10_000, interval: 20 });
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual(['heartbeat refresh failed; retrying (logged once per outage)']);

    await redis.start();
    await vi.waitFor(async () => expect(await m.alive(['n1'])).toEqual(new Set(['n1'])), { timeout: 10_000, interval: 50 });
    expect(lines.some((l) => l.msg === 'heartbeat refreshed again')).toBe(true);
    expect(await m.info('n1')).toEqual({ ...info('n1'), heartbeatTtlMs: 150 });
    pipelines.mockRestore();
    await m.stop();
  });
});
