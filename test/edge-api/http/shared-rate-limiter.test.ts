/**
 * The rate limits shared through Redis: limiter instances ("nodes") on one private redis-server,
 * each with its own client and registry as real nodes have.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { grantSizeOf, SharedRequestLimiter, type SharedRateLimitDeps } from '../../../edge-api/http/shared-rate-limiter.ts';
import type { Admission, RateLimitConfig } from '../../../edge-api/http/rate-limiter.ts';
import { RedisClients } from '../../support/redis-node.ts';
import { startTestRedisCluster } from '../../support/redis-cluster.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let seq = 0;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

interface TestNode {
  readonly limiter: SharedRequestLimiter;
  readonly registry: Registry;
  readonly client: RedisClient;
}

/**
 * A "node": its own Redis client, registry and limiter, on the cluster `keys`. The grant timeout is
 * long unless a test sets it: on two busy shared cores a grant may take longer than the default,
 * and only the fallback tests are about that.
 */
async function node(keys: KeyLayout, config: RateLimitConfig, extra: Partial<SharedRateLimitDeps> = {}): Promise<TestNode> {
  const client = await clients.connect();
  const registry = new Registry();
  const limiter = new SharedRequestLimiter(config, {
    client,
    keys,
    clock: Date.now,
    logger: silentLogger,
    registry,
    grantTimeoutMs: 5_000,
    ...extra,
  });
  return { limiter, registry, client };
}

/** Sum of a metric's samples whose labels include `labels`. */
async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

const resolved = async (a: Admission | Promise<Admission>): Promise<Admission> => (a instanceof Promise ? a : a);

describe('SharedRequestLimiter (nodes sharing one redis-server)', () => {
  it('admits, for a key hammered from three nodes, between 90 % and 100 % of what one bucket admits — never more', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const config = { perTokenPerSec: 1_000_000, perHomePerSec: 200, burst: 100 };
    const nodes = await Promise.all([0, 1, 2].map(() => node(keys, config)));
    const admitted = [0, 0, 0];
    let denied = 0;
    const runMs = 2_000;
    const start = Date.now();
    let lastStart = start;
    // Four requests at a time per node, each waiting for its answer, for runMs.
    await Promise.all(
      nodes.flatMap((n, i) =>
        Array.from({ length: 4 }, async () => {
          while (Date.now() - start < runMs) {
            lastStart = Date.now();
            const a = n.limiter.takeHome('home-1', lastStart);
            const answer = a instanceof Promise ? await a : (await tick(), a);
            if (answer.ok) admitted[i]!++;
            else denied++;
          }
        }),
      ),
    );
    const end = Date.now();
    const total = admitted.reduce((a, b) => a + b, 0);
    // Upper bound over the whole run (a fresh bucket: no grant held before it); lower bound over
    // the time requests were still being sent.
    const most = config.burst + (config.perHomePerSec * (end - start)) / 1000;
    const least = config.burst + (config.perHomePerSec * (lastStart - start)) / 1000;
    const grants = (await Promise.all(nodes.map((n) => metric(n.registry, 'iot_http_rate_limit_grants_total')))).reduce((a, b) => a + b, 0);
    console.log(
      `shared bucket, 3 nodes: admitted ${total} (${admitted.join('/')}) of at most ${most.toFixed(1)} ` +
        `(${((100 * total) / most).toFixed(1)} %), ${denied} denied, ${grants} grant requests to Redis ` +
        `(grant size ${grantSizeOf(config.burst)}), ${end - start} ms`,
    );
    expect(total).toBeLessThanOrEqual(most);
    expect(total).toBeGreaterThanOrEqual(0.9 * least);
    // Every node got a share: the bucket is the cluster's, not one node's.
    for (const a of admitted) expect(a).toBeGreaterThan(0);
    // Denials while the bucket is empty are answered on the node, without a round trip each.
    expect(grants).toBeLessThan((total + denied) / 4);
  });

  it('answers 429 with the wait until the next token, on every node, and admits again once it came', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const config = { perTokenPerSec: 10, perHomePerSec: 1_000, burst: 5 };
    const a = await node(keys, config);
    const b = await node(keys, config);
    for (let i = 0; i < 5; i++) expect(await resolved((i % 2 ? a : b).limiter.takeToken('digest-1', Date.now()))).toEqual({ ok: true });
    for (const n of [a, b]) {
      const r = await resolved(n.limiter.takeToken('digest-1', Date.now()));
      const waitMs = r.ok ? -1 : r.retryAfterMs;
      expect(waitMs).toBeGreaterThan(0);
      expect(waitMs).toBeLessThanOrEqual(100);
    }
    // Known empty: the next refusal is answered at once, without asking Redis.
    const grantsBefore = await metric(a.registry, 'iot_http_rate_limit_grants_total');
    const again = a.limiter.takeToken('digest-1', Date.now());
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ ok: false });
    expect(await metric(a.registry, 'iot_http_rate_limit_grants_total')).toBe(grantsBefore);
    // Another key is not affected.
    expect(await resolved(a.limiter.takeToken('digest-2', Date.now()))).toEqual({ ok: true });
    await vi.waitFor(
      async () => {
        expect(await resolved(a.limiter.takeToken('digest-1', Date.now()))).toEqual({ ok: true });
      },
      { timeout: 2_000, interval: 20 },
    );
  });

  it('spends a grant locally without asking Redis, and drops unspent tokens after the grant TTL', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    let now = 1_000_000;
    const config = { perTokenPerSec: 1_000, perHomePerSec: 1_000, burst: 250 }; // grant size 5
    const n = await node(keys, config, { clock: () => now, grantTtlMs: 500 });
    expect(grantSizeOf(config.burst)).toBe(5);
    expect(await resolved(n.limiter.takeHome('h', now))).toEqual({ ok: true });
    for (let i = 0; i < 4; i++) expect(n.limiter.takeHome('h', now + i)).toEqual({ ok: true }); // synchronous: no Promise
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' })).toBe(1);
    // One more needs the next grant.
    const next = n.limiter.takeHome('h', now + 5);
    expect(next).toBeInstanceOf(Promise);
    expect(await next).toEqual({ ok: true });
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' })).toBe(2);
    expect(n.limiter.perHome.held('h', now + 5)).toBe(4);
    // That grant's 4 unspent tokens are void after the TTL: the next request asks again.
    now += 501;
    const late = n.limiter.takeHome('h', now);
    expect(late).toBeInstanceOf(Promise);
    expect(await late).toEqual({ ok: true });
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' })).toBe(3);
    // The bucket in Redis: a hash with a TTL no longer than its time to refill, plus a second.
    const probe = n.client;
    const key = keys.rateBucket('home', 'h');
    expect(Object.keys(await probe.hgetall(key)).sort()).toEqual(['n', 't']);
    const ttl = await probe.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(Math.ceil((250 * 1000) / 1000) + 1000);
  });

  it('keeps at most maxKeys keys per kind', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const n = await node(keys, { perTokenPerSec: 100, perHomePerSec: 100, burst: 100 }, { maxKeys: 10 });
    for (let i = 0; i < 100; i++) await resolved(n.limiter.takeToken(`d${i}`, Date.now()));
    expect(n.limiter.perToken.size).toBeLessThanOrEqual(10);
    expect(n.limiter.perHome.size).toBe(0);
  });

  it('lets requests that arrive while a grant is in flight wait for it: one Redis call per grant', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const n = await node(keys, { perTokenPerSec: 1, perHomePerSec: 1, burst: 150 }); // grant size 3
    const answers = await Promise.all(Array.from({ length: 7 }, () => resolved(n.limiter.takeHome('h', Date.now()))));
    expect(answers.every((a) => a.ok)).toBe(true);
    // 7 requests at once: grants of 3, 3 and 3, asked one after the other.
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' })).toBe(3);
  });
});

describe('SharedRequestLimiter when Redis fails', () => {
  it('falls back to its own bucket with the same limit while Redis is down, logs once per outage, and shares again after', async () => {
    const own = await startTestRedis();
    const ownClients = new RedisClients(() => own.url);
    try {
      const client = await ownClients.connect();
      const lines: { level: number; msg: string }[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const registry = new Registry();
      const limiter = new SharedRequestLimiter(
        { perTokenPerSec: 10, perHomePerSec: 10, burst: 5 },
        { client, keys: new KeyLayout(own.cluster), clock: Date.now, logger, registry, fallbackRetryMs: 100, grantTimeoutMs: 2_000 },
      );
      expect(await resolved(limiter.takeHome('h', Date.now()))).toEqual({ ok: true });
      own.kill();
      await vi.waitFor(() => expect(client.status).not.toBe('ready'));
      // Down: the node's own bucket (full, 5) decides, at once after the first failure.
      const t0 = Date.now();
      const answers: Admission[] = [];
      for (let i = 0; i < 8; i++) answers.push(await resolved(limiter.takeHome('other', Date.now())));
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(answers.filter((a) => a.ok)).toHaveLength(5);
      const refused = answers.find((a) => !a.ok);
      expect(refused && !refused.ok && refused.retryAfterMs).toBeGreaterThan(0);
      expect(await metric(registry, 'iot_http_rate_limit_fallback_total', { kind: 'home' })).toBeGreaterThanOrEqual(8);
      expect(await metric(registry, 'iot_http_rate_limit_fallback_active')).toBe(1);
      // Retries while still down (probes every 100 ms) do not log again.
      await new Promise((r) => setTimeout(r, 250));
      for (let i = 0; i < 3; i++) await resolved(limiter.takeHome('third', Date.now()));
      const warned = (): number => lines.filter((l) => l.level === 40 && /fall back/.test(l.msg)).length;
      expect(warned()).toBe(1);
      await own.start();
      await vi.waitFor(() => expect(client.status).toBe('ready'), { timeout: 10_000 });
      // The next probe reaches Redis: shared again.
      await vi.waitFor(
        async () => {
          await resolved(limiter.takeHome(`probe-${Date.now()}`, Date.now()));
          expect(await metric(registry, 'iot_http_rate_limit_fallback_active')).toBe(0);
        },
        { timeout: 5_000, interval: 50 },
      );
      expect(lines.filter((l) => l.level === 30 && /shared through Redis again/.test(l.msg))).toHaveLength(1);
      expect(warned()).toBe(1);
      expect(await metric(registry, 'iot_http_rate_limit_grants_total', { result: 'failed' })).toBeGreaterThanOrEqual(1);
    } finally {
      ownClients.disconnectAll();
      await own.stop();
    }
  });

  it('decides locally when Redis does not answer within the grant timeout, and keeps the late grant', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const n = await node(keys, { perTokenPerSec: 100, perHomePerSec: 100, burst: 100 }, { grantTimeoutMs: 100, fallbackRetryMs: 60_000 });
    const pauser = new Redis(redis.url);
    try {
      await pauser.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const t0 = Date.now();
      expect(await resolved(n.limiter.takeToken('slow', Date.now()))).toEqual({ ok: true });
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(90);
      // Well before the pause ends: decided at the deadline, not when Redis came back.
      expect(took).toBeLessThan(1_200);
      expect(await metric(n.registry, 'iot_http_rate_limit_fallback_total', { kind: 'token' })).toBe(1);
      // The paused script runs later: its grant (2 tokens, taken from the bucket) is kept by the node.
      await vi.waitFor(() => expect(n.limiter.perToken.held('slow', Date.now())).toBe(2), { timeout: 3_000 });
      expect(n.limiter.takeToken('slow', Date.now())).toEqual({ ok: true });
      expect(await metric(n.registry, 'iot_http_rate_limit_fallback_total', { kind: 'token' })).toBe(1);
    } finally {
      pauser.disconnect();
    }
  });
});

describe('SharedRequestLimiter on a real Redis Cluster', () => {
  it('shares buckets whose keys sit in different slots (one key per script call)', { timeout: 60_000 }, async () => {
    const rc = await startTestRedisCluster();
    const open: RedisClient[] = [];
    try {
      const keys = new KeyLayout(rc.cluster);
      const config = { perTokenPerSec: 1, perHomePerSec: 1, burst: 3 };
      const limiters = [];
      for (let i = 0; i < 2; i++) {
        const client = createRedisClient(rc.url, { failFast: true, commandTimeoutMs: 2_000 });
        client.on('error', () => {});
        await connectRedis(client);
        open.push(client);
        limiters.push(
          new SharedRequestLimiter(config, {
            client,
            keys,
            clock: Date.now,
            logger: silentLogger,
            registry: new Registry(),
            grantTimeoutMs: 5_000,
          }),
        );
      }
      const homes = Array.from({ length: 6 }, (_, i) => `home-${i}`);
      // The homes' buckets spread over the cluster's masters (three masters: slots in thirds).
      const slots = await Promise.all(
        homes.map(async (h) => Number(await open[0]!.call('CLUSTER', 'KEYSLOT', keys.rateBucket('home', h)))),
      );
      expect(new Set(slots.map((slot) => Math.floor(slot / 5461))).size).toBeGreaterThanOrEqual(2);
      for (const h of homes) {
        const answers = [];
        for (let i = 0; i < 5; i++) answers.push(await resolved(limiters[i % 2]!.takeHome(h, Date.now())));
        // Burst 3 for the two nodes together, not 3 each.
        expect(answers.map((a) => a.ok)).toEqual([true, true, true, false, false]);
      }
    } finally {
      for (const c of open) c.disconnect();
      await rc.stop();
    }
  });
});
