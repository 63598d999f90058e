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
import { grantSizeOf, maxHeldOf, SharedRequestLimiter, type SharedRateLimitDeps } from '../../../edge-api/http/shared-rate-limiter.ts';
import type { Admission, RateLimitConfig } from '../../../edge-api/http/rate-limiter.ts';
import { openGrantConnection } from '../../../edge-api/http/bucket-grants.ts';
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
 * A "node": its own Redis client, registry and limiter, on the cluster `keys`, with the default
 * grant timeout (a slow grant alone does not fall back: FAILURES_TO_FALLBACK in a row do).
 */
async function node(
  keys: KeyLayout,
  config: RateLimitConfig,
  extra: Partial<SharedRateLimitDeps> = {},
  control?: GrantControl,
): Promise<TestNode> {
  const client = await clients.connect();
  const registry = new Registry();
  const limiter = new SharedRequestLimiter(config, {
    client: control ? controlled(client, control) : client,
    keys,
    clock: Date.now,
    logger: silentLogger,
    registry,
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
    // Shared throughout: a fallback to per-node buckets here is a failure to look at, not noise.
    for (const n of nodes) expect(await metric(n.registry, 'iot_http_rate_limit_fallback_total')).toBe(0);
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

  it('spends a grant locally, fetches the next one ahead at half a grant left, and drops unspent tokens after the grant TTL', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    let now = 1_000_000;
    const config = { perTokenPerSec: 1_000, perHomePerSec: 1_000, burst: 250 }; // grant size 5, at most 25 held
    const n = await node(keys, config, { clock: () => now, grantTtlMs: 500 });
    expect(grantSizeOf(config.burst)).toBe(5);
    expect(maxHeldOf(config.burst)).toBe(25);
    const grants = (): Promise<number> => metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' });
    expect(await resolved(n.limiter.takeHome('h', now))).toEqual({ ok: true });
    expect(await grants()).toBe(1);
    expect(n.limiter.perHome.held('h', now)).toBe(4);
    // 4 → 3 held: synchronous, nothing asked.
    expect(n.limiter.takeHome('h', now)).toEqual({ ok: true });
    await tick();
    expect(await grants()).toBe(1);
    // 3 → 2 held: half a grant left, the next grant is fetched ahead, the request is not held up.
    expect(n.limiter.takeHome('h', now)).toEqual({ ok: true });
    await vi.waitFor(async () => expect(await grants()).toBe(2));
    await vi.waitFor(() => expect(n.limiter.perHome.held('h', now)).toBe(7));
    // 7 → 2 held, all synchronous; at 2 the next grant is fetched ahead again.
    for (let i = 0; i < 5; i++) expect(n.limiter.takeHome('h', now)).toEqual({ ok: true });
    await vi.waitFor(async () => expect(await grants()).toBe(3));
    await vi.waitFor(() => expect(n.limiter.perHome.held('h', now)).toBe(7));
    // Those 7 go unspent: void after the TTL, and the next request asks again.
    now += 501;
    expect(n.limiter.perHome.held('h', now)).toBe(0);
    const late = n.limiter.takeHome('h', now);
    expect(late).toBeInstanceOf(Promise);
    expect(await late).toEqual({ ok: true });
    expect(await grants()).toBe(4);
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

  it('serves the requests of one event-loop turn from one grant: 7 at once cost one Redis call', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const n = await node(keys, { perTokenPerSec: 1, perHomePerSec: 1, burst: 150 }); // grant size 3, at most 15 held
    const answers = await Promise.all(Array.from({ length: 7 }, () => resolved(n.limiter.takeHome('h', Date.now()))));
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'home' })).toBe(1);
    // 256 waiting: at most 15 per grant (the node never holds more), not 3 per grant one after the other.
    const many = await Promise.all(Array.from({ length: 256 }, () => resolved(n.limiter.takeToken('t', Date.now()))));
    expect(many.filter((a) => a.ok)).toHaveLength(150);
    const tokenGrants = await metric(n.registry, 'iot_http_rate_limit_grants_total', { kind: 'token' });
    console.log(`256 waiters on one key: ${tokenGrants} grant requests (150 admitted)`);
    expect(tokenGrants).toBeLessThanOrEqual(Math.ceil(150 / 15) + 2);
  });

  it('admits at least 90 % of requests synchronously at a steady rate below the limit (grants fetched ahead)', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const config = { perTokenPerSec: 1_000_000, perHomePerSec: 300, burst: 100 };
    const nodes = await Promise.all([0, 1, 2].map(() => node(keys, config)));
    // Each node 50 requests a second (150/s for the cluster: half the limit), for 1.5 s.
    const perNode = 75;
    let sync = 0;
    let admitted = 0;
    await Promise.all(
      nodes.map(async (n) => {
        for (let i = 0; i < perNode; i++) {
          const a = n.limiter.takeHome('steady', Date.now());
          if (!(a instanceof Promise)) sync++;
          if ((await resolved(a)).ok) admitted++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    const grants = (await Promise.all(nodes.map((n) => metric(n.registry, 'iot_http_rate_limit_grants_total')))).reduce((a, b) => a + b, 0);
    console.log(`steady 150/s of 300/s over 3 nodes: ${sync} of ${3 * perNode} answered synchronously, ${grants} grant requests`);
    expect(admitted).toBe(3 * perNode);
    expect(sync).toBeGreaterThanOrEqual(0.9 * 3 * perNode);
  });

  it("keeps the admin token's bucket on each node: it never asks Redis and each node has its own burst", async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const config = { perTokenPerSec: 1, perHomePerSec: 1, burst: 3 };
    const a = await node(keys, config);
    const b = await node(keys, config);
    const now = Date.now();
    for (const n of [a, b]) {
      const answers = Array.from({ length: 4 }, () => n.limiter.takeAdmin(now));
      expect(answers.map((x) => x.ok)).toEqual([true, true, true, false]);
      expect(await metric(n.registry, 'iot_http_rate_limit_grants_total')).toBe(0);
    }
    expect(await a.client.keys(`${keys.rateBucket('token', '*')}`)).toEqual([]);
  });
});

/** How a test's grants misbehave: `delay(n)` ms the nth answer is held back; `fail` rejects every call (a lost connection). */
interface GrantControl {
  delay: (n: number) => number;
  fail: boolean;
}

/**
 * `client` as the limiter sees it, its grant script under `control`. A proxy: ioredis' own
 * auto-pipelining reads the script's function from the client, which stays untouched.
 */
function controlled(client: RedisClient, control: GrantControl): RedisClient {
  let calls = 0;
  const grant = (...args: unknown[]): Promise<unknown> => {
    if (control.fail) return Promise.reject(new Error('connection lost'));
    const ms = control.delay(calls++);
    const answer = (client as unknown as { rateGrant: (...a: unknown[]) => Promise<unknown> }).rateGrant(...args);
    return ms === 0 ? answer : answer.then((x) => new Promise((r) => setTimeout(() => r(x), ms)));
  };
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'rateGrant') return grant;
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

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

  it('waits for a grant unanswered for one timeout, decides locally after three in a row, and keeps the late grant', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const n = await node(keys, { perTokenPerSec: 100, perHomePerSec: 100, burst: 100 }, { grantTimeoutMs: 100, fallbackRetryMs: 60_000 });
    const pauser = new Redis(redis.url);
    try {
      await pauser.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const t0 = Date.now();
      expect(await resolved(n.limiter.takeToken('slow', Date.now()))).toEqual({ ok: true });
      const took = Date.now() - t0;
      // One timeout is no fallback: three (100 ms each) without an answer are.
      expect(took).toBeGreaterThanOrEqual(290);
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

describe('SharedRequestLimiter when Redis is slow or flaky', () => {
  it('rides out one grant in 20 answered 300 ms late: no fallback, no flapping, admissions within one bucket', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const config = { perTokenPerSec: 1_000_000, perHomePerSec: 200, burst: 100 };
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // The default grant timeout (250 ms): the late answers come after it.
    const control = { delay: (i: number) => (i % 20 === 19 ? 300 : 0), fail: false };
    const nodes = await Promise.all([0, 1, 2].map(() => node(keys, config, { logger }, control)));
    let flapped = 0;
    const watch = setInterval(() => {
      for (const n of nodes) void metric(n.registry, 'iot_http_rate_limit_fallback_active').then((v) => (flapped += v));
    }, 10);
    const admitted = [0, 0, 0];
    const runMs = 2_000;
    const start = Date.now();
    let lastStart = start;
    try {
      await Promise.all(
        nodes.flatMap((n, i) =>
          Array.from({ length: 4 }, async () => {
            while (Date.now() - start < runMs) {
              lastStart = Date.now();
              const a = n.limiter.takeHome('home-1', lastStart);
              const answer = a instanceof Promise ? await a : (await tick(), a);
              if (answer.ok) admitted[i]!++;
            }
          }),
        ),
      );
    } finally {
      clearInterval(watch);
    }
    const end = Date.now();
    const total = admitted.reduce((a, b) => a + b, 0);
    const most = config.burst + (config.perHomePerSec * (end - start)) / 1000;
    const least = config.burst + (config.perHomePerSec * (lastStart - start)) / 1000;
    const late = (await Promise.all(nodes.map((n) => metric(n.registry, 'iot_http_rate_limit_grants_total', { result: 'late' })))).reduce(
      (a, b) => a + b,
      0,
    );
    const fallback = (await Promise.all(nodes.map((n) => metric(n.registry, 'iot_http_rate_limit_fallback_total')))).reduce(
      (a, b) => a + b,
      0,
    );
    console.log(
      `1 grant in 20 late by 300 ms, 3 nodes: admitted ${total} (${admitted.join('/')}) of at most ${most.toFixed(1)} ` +
        `(${((100 * total) / most).toFixed(1)} %), ${late} late grants, ${fallback} local decisions`,
    );
    expect(late).toBeGreaterThan(0);
    expect(fallback).toBe(0);
    expect(flapped).toBe(0);
    expect(lines.filter((l) => /fall back/.test(l.msg))).toEqual([]);
    // Every token came from the one bucket: no slack above it.
    expect(total).toBeLessThanOrEqual(most);
    expect(total).toBeGreaterThanOrEqual(0.8 * least);
  });

  it('starts a fallback bucket at the level Redis last reported for the key (not full); a key never asked about starts full', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    let now = 5_000_000;
    const control = { delay: () => 0, fail: false };
    const n = await node(keys, { perTokenPerSec: 2, perHomePerSec: 2, burst: 5 }, { clock: () => now, fallbackRetryMs: 60_000 }, control);
    let admitted = 0;
    for (let i = 0; i < 10; i++) if ((await resolved(n.limiter.takeHome('hot', now))).ok) admitted++;
    expect(admitted).toBe(5);
    expect(n.limiter.perHome.held('hot', now)).toBe(0);
    // 600 ms on (1.2 tokens refilled at 2/s), Redis fails: three errors in a row and the node decides alone.
    now += 600;
    control.fail = true;
    const hot = [];
    for (let i = 0; i < 5; i++) hot.push((await resolved(n.limiter.takeHome('hot', now))).ok);
    // Not 5 (a full bucket): what Redis last said (0) plus the refill since.
    expect(hot).toEqual([true, false, false, false, false]);
    const cold = [];
    for (let i = 0; i < 6; i++) cold.push((await resolved(n.limiter.takeHome('cold', now))).ok);
    expect(cold).toEqual([true, true, true, true, true, false]);
    expect(await metric(n.registry, 'iot_http_rate_limit_fallback_active')).toBe(1);
    expect(await metric(n.registry, 'iot_http_rate_limit_grants_total', { result: 'failed' })).toBe(3);
  });

  it('logs a flapping fallback once a minute each way, not on every switch', async () => {
    const keys = new KeyLayout(`${redis.cluster}s${seq++}`);
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const control = { delay: () => 0, fail: false };
    const n = await node(keys, { perTokenPerSec: 1_000, perHomePerSec: 1_000, burst: 1_000 }, { logger, fallbackRetryMs: 20 }, control);
    let k = 0;
    for (let round = 0; round < 3; round++) {
      control.fail = true;
      for (let i = 0; i < 3; i++) await resolved(n.limiter.takeHome(`k${k++}`, Date.now()));
      expect(await metric(n.registry, 'iot_http_rate_limit_fallback_active')).toBe(1);
      control.fail = false;
      await vi.waitFor(
        async () => {
          await resolved(n.limiter.takeHome(`k${k++}`, Date.now()));
          expect(await metric(n.registry, 'iot_http_rate_limit_fallback_active')).toBe(0);
        },
        { timeout: 2_000, interval: 30 },
      );
    }
    expect(lines.filter((l) => l.level === 40 && /fall back/.test(l.msg))).toHaveLength(1);
    expect(lines.filter((l) => l.level === 30 && /shared through Redis again/.test(l.msg))).toHaveLength(1);
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
        const main = createRedisClient(rc.url, { failFast: true, commandTimeoutMs: 2_000 });
        main.on('error', () => {});
        await connectRedis(main);
        open.push(main);
        // The second "node" as start-node wires it: grants on a duplicate of its connection.
        const client = i === 0 ? main : await openGrantConnection(main, silentLogger);
        if (client !== main) open.push(client);
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
