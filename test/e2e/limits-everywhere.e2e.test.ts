/**
 * Limits everywhere: three real node processes on one private redis-server, an app's requests
 * spread over all three (as a load balancer would). A home's rate limit and an app token's hold
 * for the cluster, not per node: the 200s stay within what one bucket admits over the run
 * (burst + rate × elapsed) and reach at least 90 % of it.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { maxHeldOf } from '../../edge-api/http/shared-rate-limiter.ts';
import { clusterTestFile, metric, type Api, type TestCluster } from '../support/cluster-harness.ts';

const ADMIN = 'admin-token-for-limits-tests';
const file = clusterTestFile({ adminToken: ADMIN, shards: 16, tag: 'l' });

/**
 * Small limits: a run of a few seconds admits ~80 requests, so counting is quick, a few ms of
 * jitter is under 1 %, and the test's requests outnumber what the limits admit several times
 * over also on two busy shared cores (the lower bound needs demand above the limit).
 */
const LIMITS = { perHome: 10, perToken: 15, burst: 20 };
const NODE_ENV = {
  RATE_LIMIT_PER_HOME: String(LIMITS.perHome),
  RATE_LIMIT_PER_TOKEN: String(LIMITS.perToken),
  RATE_LIMIT_BURST: String(LIMITS.burst),
  ACCESS_LOG: 'false',
  // The default grant timeout (250 ms): a slow grant is waited for, only three failures in a row
  // fall back — which this test counts as a failure (expectSharedThroughRedis).
};
const NODES = ['node-a', 'node-b', 'node-c'];
const RUN_MS = 5_000;
/** Requests in flight per node. */
const LOOPS_PER_NODE = 4;
/** Three nodes started one by one on busy cores, then RUN_MS of requests. */
const TEST_TIMEOUT_MS = 120_000;

async function threeNodes(): Promise<TestCluster> {
  const cluster = file.newCluster();
  // One after the other: three source nodes starting at once on two shared cores can outlast the start timeout.
  for (const id of NODES) await cluster.start(id, NODE_ENV);
  await cluster.settled(NODES[0]!, NODES);
  return cluster;
}

/** An admin call that waits out the admin token's own rate limit (each node's own bucket, as small as the others here). */
async function admin(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  for (;;) {
    const r = await api(method, path, ADMIN, body);
    if (r.status === 429) {
      await new Promise((res) => setTimeout(res, 200));
      continue;
    }
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

interface Tally {
  /** 200s by node. */
  readonly admitted: number[];
  readonly limitedHome: number;
  readonly limitedToken: number;
  /** Anything else (must be none). */
  readonly other: string[];
  /** Ms from the first request sent to the last answer. */
  readonly elapsedMs: number;
  /** Ms from the first request sent to the last request sent. */
  readonly sendingMs: number;
}

/** Sends `request(n)` (the nth request's path and token) from LOOPS_PER_NODE loops per node, each waiting for its answer, for RUN_MS. */
async function hammer(apis: Api[], request: (n: number) => { path: string; token: string }): Promise<Tally> {
  const admitted = apis.map(() => 0);
  let limitedHome = 0;
  let limitedToken = 0;
  const other: string[] = [];
  let n = 0;
  const start = Date.now();
  let lastSent = start;
  await Promise.all(
    apis.flatMap((api, i) =>
      Array.from({ length: LOOPS_PER_NODE }, async () => {
        while (Date.now() - start < RUN_MS) {
          const { path, token } = request(n++);
          lastSent = Date.now();
          const r = await api('GET', path, token);
          if (r.status === 200) admitted[i]!++;
          else if (r.status === 429 && r.body?.error?.code === 'rate_limited') {
            const message = String(r.body.error.message);
            if (/this home/.test(message)) limitedHome++;
            else if (/this token/.test(message)) limitedToken++;
            else other.push(message);
            expect(Number(r.body.error.details?.retryAfterSeconds)).toBeGreaterThanOrEqual(1);
          } else other.push(`${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    ),
  );
  return { admitted, limitedHome, limitedToken, other, elapsedMs: Date.now() - start, sendingMs: lastSent - start };
}

/**
 * Checks the 200s against one bucket of `ratePerSec` and LIMITS.burst: at most its admission over
 * the run plus `heldBefore` (tokens nodes may hold from requests before the run: grants are fetched
 * ahead), at least 90 % of it over the time requests were sent.
 */
function expectOneBucket(what: string, t: Tally, ratePerSec: number, heldBefore = 0): void {
  const total = t.admitted.reduce((a, b) => a + b, 0);
  const most = LIMITS.burst + (ratePerSec * t.elapsedMs) / 1000 + heldBefore;
  const least = LIMITS.burst + (ratePerSec * t.sendingMs) / 1000;
  console.log(
    `${what}: ${total} admitted (${t.admitted.join('/')} by node) of at most ${most.toFixed(1)} ` +
      `(${((100 * total) / most).toFixed(1)} %; per-node buckets would allow ${(3 * most).toFixed(0)}), ` +
      `429s: ${t.limitedHome} home, ${t.limitedToken} token, over ${t.elapsedMs} ms`,
  );
  expect(t.other).toEqual([]);
  expect(total).toBeLessThanOrEqual(most);
  expect(total).toBeGreaterThanOrEqual(0.9 * least);
  // The load balancer's spread reached every node, and every node admitted some.
  for (const a of t.admitted) expect(a).toBeGreaterThan(0);
}

/**
 * Every node drew its tokens from Redis, on a connection of its own, and never fell back to its
 * own buckets (which would admit per node): a fallback here is a failure to look at, not noise.
 */
async function expectSharedThroughRedis(cluster: TestCluster, kind: 'home' | 'token'): Promise<void> {
  const probe = new Redis(file.redis.url);
  try {
    const names = String(await probe.call('CLIENT', 'LIST'))
      .split('\n')
      .map((line) => /\bname=(\S*)/.exec(line)?.[1]);
    for (const id of NODES) expect(names.filter((n) => n === `iot:${id}:rate-limits`)).toHaveLength(1);
  } finally {
    probe.disconnect();
  }
  for (const id of NODES) {
    const api = cluster.api(id);
    const grants = await metric(api, ADMIN, 'iot_http_rate_limit_grants_total', `kind="${kind}",result="granted"`);
    const late = await metric(api, ADMIN, 'iot_http_rate_limit_grants_total', `kind="${kind}",result="late"`);
    const fallback =
      (await metric(api, ADMIN, 'iot_http_rate_limit_fallback_total', 'kind="home"')) +
      (await metric(api, ADMIN, 'iot_http_rate_limit_fallback_total', 'kind="token"'));
    console.log(`${id}: ${grants} ${kind} grants from Redis (${late} late), ${fallback} decisions by its own buckets`);
    expect(grants).toBeGreaterThan(0);
    expect(fallback).toBe(0);
  }
}

describe('limits everywhere (three real node processes, one private redis-server)', () => {
  it("holds a home's rate limit when its requests are spread over three nodes", { timeout: TEST_TIMEOUT_MS }, async () => {
    const cluster = await threeNodes();
    const apis = NODES.map((id) => cluster.api(id));
    const home = 'limits-home';
    await admin(apis[0]!, 'PUT', `/v1/homes/${home}`, { name: 'Limited home', timezone: 'Europe/Berlin' });
    // Six tokens, so that the home's limit binds, not one token's.
    const tokens: string[] = [];
    for (let i = 0; i < 6; i++) tokens.push((await admin(apis[i % 3]!, 'POST', '/v1/tokens', { homes: [home], scopes: ['read'] })).token);

    const tally = await hammer(apis, (n) => ({ path: `/v1/homes/${home}`, token: tokens[n % tokens.length]! }));
    // The admin's PUT on node-a took the home's bucket: node-a may still hold what it fetched ahead then.
    expectOneBucket(`home limit ${LIMITS.perHome}/s, burst ${LIMITS.burst}`, tally, LIMITS.perHome, maxHeldOf(LIMITS.burst));
    expect(tally.limitedHome).toBeGreaterThan(0);
    await expectSharedThroughRedis(cluster, 'home');
  });

  it(
    "holds an app token's rate limit within 10 % when its requests are spread over three nodes",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const cluster = await threeNodes();
      const apis = NODES.map((id) => cluster.api(id));
      // Four homes, so that each home sees a quarter of the token's requests: the token's limit binds.
      const homes = ['limits-t0', 'limits-t1', 'limits-t2', 'limits-t3'];
      for (const h of homes) await admin(apis[0]!, 'PUT', `/v1/homes/${h}`, { name: `Home ${h}`, timezone: 'Europe/Berlin' });
      const { token } = await admin(apis[1]!, 'POST', '/v1/tokens', { homes, scopes: ['read'] });

      const tally = await hammer(apis, (n) => ({ path: `/v1/homes/${homes[n % homes.length]}`, token }));
      expectOneBucket(`token limit ${LIMITS.perToken}/s, burst ${LIMITS.burst}`, tally, LIMITS.perToken);
      expect(tally.limitedToken).toBeGreaterThan(0);
      expect(tally.limitedHome).toBe(0);
      await expectSharedThroughRedis(cluster, 'token');
      // The token's bucket is named by its digest: the token itself is nowhere in Redis's key space.
      const probe = new Redis(file.redis.url);
      try {
        const bucketKeys = await probe.keys(`${cluster.opts.cluster}:rl:*`);
        expect(bucketKeys.some((k) => k.includes(':rl:token:'))).toBe(true);
        expect(bucketKeys.filter((k) => k.includes(token))).toEqual([]);
      } finally {
        probe.disconnect();
      }
    },
  );
});
