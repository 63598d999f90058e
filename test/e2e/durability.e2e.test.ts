/**
 * Durability end to end: real node processes on a private real Redis. A node killed mid-stream,
 * Redis restarted mid-stream, Redis down under the HTTP edge — no acked report is lost, none is
 * applied twice, and the node comes back by itself.
 */
import { afterEach, describe, expect, it, onTestFailed, vi } from 'vitest';
import { HubClient, type HelloDevice, type HubReport } from '../../tools/hub-client/hub-client.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';

const ADMIN = 'admin-token-for-durability-tests';
/** Each test's bound; the hub gives up (with what it saw) well before it. */
const TEST_TIMEOUT_MS = 60_000;
const RUN_DEADLINE_MS = 40_000;
const DEVICE_COUNT = 10;
const devices: HelloDevice[] = Array.from({ length: DEVICE_COUNT }, (_, i) => ({ deviceId: `d${i}`, type: 'plug', capabilities: ['n'] }));

/** Report `seq` goes to device d(seq % 10) and sets n = seq: every applied report bumps that device's version by one. */
const numbered = (seq: number): HubReport => ({
  seq,
  device: `d${seq % DEVICE_COUNT}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

/** Cleanups of the running test, run last-in first-out after it whatever happened. */
let cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const fn of pending) await fn().catch(() => {});
});

async function privateRedis(): Promise<TestRedis> {
  const redis = await startTestRedis();
  cleanups.push(() => redis.stop());
  return redis;
}

/** SIGTERM, then SIGKILL if the node has not exited within 10 s; resolves the exit code. */
async function stopNode(node: NodeProcess): Promise<number | null> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return node.child.exitCode;
  const force = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
  try {
    return await node.stop('SIGTERM');
  } finally {
    clearTimeout(force);
  }
}

async function startDurableNode(redis: TestRedis, nodeId: string): Promise<NodeProcess> {
  const node = await startNodeProcess({ REDIS_URL: redis.url, CLUSTER: redis.cluster, ADMIN_TOKEN: ADMIN, NODE_ID: nodeId, SHARDS: '64' });
  cleanups.push(() => stopNode(node));
  onTestFailed(() => console.error(`node ${nodeId} (pid ${node.child.pid}) output, last 4000 characters:\n${node.output().slice(-4_000)}`));
  expect(node.store).toBe('redis');
  return node;
}

/** The HTTP edge of one node. */
function edge(node: NodeProcess) {
  const base = `http://127.0.0.1:${node.httpPort}`;
  return async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    // Bodies are checked field by field by the tests.
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}
type Edge = ReturnType<typeof edge>;

/** A home, its hub (secret) and an app token for it, over HTTP as an operator would. */
async function provision(api: Edge, homeId: string): Promise<{ secret: string; appToken: string }> {
  expect((await api('PUT', `/v1/homes/${homeId}`, ADMIN, { name: 'Durable flat', timezone: 'Europe/Berlin' })).status).toBeLessThan(300);
  const hub = await api('POST', `/v1/homes/${homeId}/hubs`, ADMIN, { hubId: 'hub1' });
  expect(hub.status).toBe(201);
  const token = await api('POST', '/v1/tokens', ADMIN, { homes: [homeId], scopes: ['read', 'control'] });
  expect(token.status).toBe(201);
  return { secret: hub.body.secret as string, appToken: token.body.token as string };
}

/** Every device saw exactly its reports: version = reports sent to it, value = its highest seq. */
async function expectEveryReportAppliedOnce(api: Edge, homeId: string, appToken: string, total: number): Promise<void> {
  const seen = [];
  for (const d of devices) {
    const r = await api('GET', `/v1/homes/${homeId}/devices/${d.deviceId}`, appToken);
    expect(r.status).toBe(200);
    seen.push({ device: d.deviceId, version: r.body.version as number, n: r.body.reported?.n?.value as number });
  }
  const expected = devices.map((d) => ({ device: d.deviceId, version: 0, n: 0 }));
  for (let seq = 1; seq <= total; seq++) {
    const e = expected[seq % DEVICE_COUNT]!;
    e.version++;
    e.n = seq;
  }
  expect(seen).toEqual(expected);
}

describe('durability on Redis (real node processes, private redis-server)', () => {
  it(
    'a node SIGKILLed mid-stream loses no acked report and applies none twice after a restart',
    async () => {
      const redis = await privateRedis();
      let node = await startDurableNode(redis, 'durable-node');
      const homeId = 'kill-home';
      const { secret, appToken } = await provision(edge(node), homeId);

      let address = `127.0.0.1:${node.grpcPort}`;
      let killed: { ack: number; sentUpTo: number; exit: Promise<number | null> } | undefined;
      const hub: ResilientHub = new ResilientHub({
        address: () => address,
        secret,
        hubId: 'hub1',
        homeId,
        devices,
        total: 10_000,
        report: numbered,
        onAck: (ack) => {
          if (killed || ack < 3_000) return;
          // Inside the ack handler, once the hub has refilled its window: reports are in flight.
          killed = { ack, sentUpTo: hub.streams.at(-1)!.sentUpTo, exit: node.stop('SIGKILL') };
        },
      });
      const streaming = hub.run(RUN_DEADLINE_MS);
      streaming.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      cleanups.push(async () => hub.stop());

      await vi.waitFor(() => expect(killed, hub.describe()).toBeDefined(), { timeout: RUN_DEADLINE_MS, interval: 10 });
      expect(await killed!.exit).toBeNull(); // died of the signal
      expect(killed!.sentUpTo).toBeGreaterThan(killed!.ack); // reports were in flight

      // Same NODE_ID, REDIS_URL and CLUSTER: the hub secret and the app token come from Redis.
      node = await startDurableNode(redis, 'durable-node');
      address = `127.0.0.1:${node.grpcPort}`;
      await streaming;

      expect(hub.highestAck).toBe(10_000);
      expect(hub.errors).toEqual([]);
      const first = hub.streams[0]!;
      const resumed = hub.streams.find((c) => c.welcome !== undefined && c !== first);
      expect(resumed, hub.describe()).toBeDefined();
      const lastDurable = Number(resumed!.welcome!.last_durable_seq);
      // The new node cannot claim durable a report the killed one never received.
      expect(lastDurable).toBeLessThanOrEqual(first.sentUpTo);
      expect(lastDurable).toBeLessThanOrEqual(10_000);
      expect(resumed!.resumedAfter).toBeGreaterThanOrEqual(killed!.ack);

      const api = edge(node);
      await expectEveryReportAppliedOnce(api, homeId, appToken, 10_000);
      expect(await stopNode(node)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'Redis restarted mid-stream: the node recovers by itself, the hub resumes, nothing acked is lost or applied twice',
    async () => {
      const redis = await privateRedis();
      const node = await startDurableNode(redis, 'restart-node');
      const api = edge(node);
      const homeId = 'redis-restart-home';
      const { secret, appToken } = await provision(api, homeId);

      // /readyz is probed every 20 ms from the moment the restart begins until it answers 503 (or every report is acked).
      const probes: number[] = [];
      let probing: Promise<void> | undefined;
      let restarted: Promise<void> | undefined;
      let stopProbing = false;
      cleanups.push(async () => (stopProbing = true));
      const hub: ResilientHub = new ResilientHub({
        address: () => `127.0.0.1:${node.grpcPort}`,
        secret,
        hubId: 'hub1',
        homeId,
        devices,
        total: 5_000,
        // Paced (about 2.5 s in all), so the restart at ack 1,500 lands mid-stream however fast the node is.
        ratePerSec: 2_000,
        report: numbered,
        onAck: (ack) => {
          if (restarted || ack < 1_500) return;
          restarted = redis.restart();
          probing = vi.waitFor(
            async () => {
              const status = await api('GET', '/readyz').then(
                (r) => r.status,
                () => 0,
              );
              probes.push(status);
              if (status !== 503 && !hub.done && !stopProbing) throw new Error(`/readyz answered ${status}`);
            },
            { timeout: RUN_DEADLINE_MS, interval: 20 },
          );
        },
      });
      const streaming = hub.run(RUN_DEADLINE_MS);
      streaming.catch(() => {});
      cleanups.push(async () => hub.stop());

      await vi.waitFor(() => expect(restarted, hub.describe()).toBeDefined(), { timeout: RUN_DEADLINE_MS, interval: 10 });
      await restarted;
      await streaming;
      await probing;

      expect(hub.highestAck).toBe(5_000);
      expect(hub.errors).toEqual([]);
      expect(node.child.exitCode).toBeNull(); // the node lived through it
      // Not ready while Redis was away (at least 100 ms: ioredis' first reconnect delay), ready again by itself.
      expect(probes).toContain(503);
      await vi.waitFor(async () => expect((await api('GET', '/readyz')).status).toBe(200), { timeout: 15_000, interval: 50 });
      await expectEveryReportAppliedOnce(api, homeId, appToken, 5_000);
      expect(await stopNode(node)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'Redis down under the edge: a write answers 503 unavailable and /readyz 503; when Redis is back the node recovers by itself',
    async () => {
      const redis = await privateRedis();
      const node = await startDurableNode(redis, 'edge-node');
      const api = edge(node);
      const homeId = 'redis-down-home';
      const { secret, appToken } = await provision(api, homeId);

      // The device exists once its hub has announced it and it has reported.
      const hub = new HubClient(`127.0.0.1:${node.grpcPort}`, secret);
      cleanups.push(async () => hub.close());
      hub.hello('hub1', homeId, devices.slice(0, 1));
      await hub.welcome();
      hub.reports([{ seq: 1, device: 'd0', attributes: { n: 1 } }]);
      await hub.ackAtLeast(1);
      const before = await api('GET', `/v1/homes/${homeId}/devices/d0`, appToken);
      expect(before.status).toBe(200);
      expect((await api('GET', '/readyz')).status).toBe(200);

      redis.kill();
      await vi.waitFor(async () => expect((await api('GET', '/readyz')).status).toBe(503), { timeout: 10_000, interval: 50 });
      const patch = { desired: { n: 42 } };
      const refused = await api('PATCH', `/v1/homes/${homeId}/devices/d0`, appToken, patch);
      expect(refused).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
      expect(typeof refused.body.error.message).toBe('string');
      // The admin token needs no credential lookup: this write reaches the device actor, and its store write fails.
      const failedWrite = await api('PATCH', `/v1/homes/${homeId}/devices/d0`, ADMIN, patch);
      expect(failedWrite).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });

      await redis.start();
      // Ready again by itself: no request but the probe until it says so (a load balancer sends nothing to a 503 node).
      await vi.waitFor(async () => expect((await api('GET', '/readyz')).status).toBe(200), { timeout: 20_000, interval: 100 });
      await vi.waitFor(
        async () => {
          const r = await api('PATCH', `/v1/homes/${homeId}/devices/d0`, appToken, patch);
          expect(r.status).toBe(200);
        },
        { timeout: 20_000, interval: 100 },
      );
      const after = await api('GET', `/v1/homes/${homeId}/devices/d0`, appToken);
      expect(after.body).toMatchObject({ desired: { n: 42 }, reported: { n: { value: 1 } } });
      // The write refused while Redis was down left no trace: exactly one change since.
      expect(after.body.version).toBe(before.body.version + 1);
      expect(await stopNode(node)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
