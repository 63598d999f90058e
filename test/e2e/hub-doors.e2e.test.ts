/**
 * The hub doors on real node processes: a hub that never reads is ended with RESOURCE_EXHAUSTED
 * while the node's memory stays bounded and another hub keeps its acks; TLS on the hub port; and,
 * on two nodes over Redis, a hub that moves to another node supersedes its older stream (ABORTED)
 * and its commands reach the newer one.
 */
import { credentials, status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { edge, provisionHome, stopNode, TestCluster } from '../support/cluster-harness.ts';
import { SilentHub } from '../support/silent-hub.ts';
import { makeTestPki } from '../support/test-certificates.ts';

const ADMIN = 'admin-token-for-hub-door-tests';
const devices: HelloDevice[] = [{ deviceId: 'light1', type: 'light', capabilities: ['on'] }];

/** Cleanups of the running test, run last-in first-out after it whatever happened. */
let cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const fn of pending)
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
});

async function startNode(env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = await startNodeProcess({ NODE_ID: 'doors', ADMIN_TOKEN: ADMIN, ...env });
  cleanups.push(() => stopNode(node, 5_000));
  onTestFailed(() => console.error(node.output().slice(-3_000)));
  return node;
}

/** Resident set size of a process, MB (Linux). */
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('hub doors (real node processes)', () => {
  it('ends a hub that sends only bad seqs and never reads with RESOURCE_EXHAUSTED; memory stays bounded; another hub keeps its acks', async () => {
    const node = await startNode();
    const api = edge(node);
    const offender = await provisionHome(api, ADMIN, 'door-offender');
    const bystander = await provisionHome(api, ADMIN, 'door-bystander');
    const grpc = `127.0.0.1:${node.grpcPort}`;
    const pid = node.child.pid!;

    const good = new HubClient(grpc, bystander.secret);
    cleanups.push(() => good.close());
    good.hello('hub1', 'door-bystander', devices);
    await good.welcome();

    const before = rssMb(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 50);
    cleanups.push(() => clearInterval(sampler));
    // The bystander reports all along; each report must be acked, and its ack latency is recorded.
    let seq = 0;
    let stop = false;
    const latenciesMs: number[] = [];
    const bystanderLoop = (async () => {
      while (!stop) {
        const sentAt = performance.now();
        good.reports([{ seq: ++seq, device: 'light1', attributes: { on: seq % 2 === 0 } }]);
        await good.ackAtLeast(seq, 15_000);
        latenciesMs.push(performance.now() - sentAt);
      }
    })();

    const silent = new SilentHub(grpc, offender.secret);
    cleanups.push(() => silent.close());
    silent.hello('hub1', 'door-offender', 'light1');
    // Batches of 200 repeated or invalid seqs: every one answered with an error the hub never reads.
    const items = Array.from({ length: 200 }, () => ({ seq: '0', device_id: 'light1', ts_ms: '1', attributes: {} }));
    const end = await silent.flood(() => items, 30_000);
    stop = true;
    await bystanderLoop;
    clearInterval(sampler);

    expect(end).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    // The issue saw +380 MB in 15 s; the bound is generous for a loaded machine.
    expect(peak - before, `RSS ${before.toFixed(0)} MB → peak ${peak.toFixed(0)} MB`).toBeLessThan(150);
    expect(seq).toBeGreaterThan(0);
    // Other hubs keep their ack latency: a regression guard with a bound generous for a loaded
    // 2-core machine (acks take milliseconds when idle), not a benchmark.
    const sorted = [...latenciesMs].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    const [p50, p99, max] = [at(0.5), at(0.99), sorted[sorted.length - 1]!];
    console.info(
      `bystander acks during the attack: ${sorted.length}, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );
    expect(sorted.length).toBeGreaterThan(0);
    expect(p99, `bystander ack latency p99 (p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms)`).toBeLessThan(2_000);
    // The bystander's stream is untouched and still acked after the offender is gone.
    good.reports([{ seq: ++seq, device: 'light1', attributes: { on: true } }]);
    expect(await good.ackAtLeast(seq)).toBe(seq);
    expect(good.status).toBeUndefined();
  });

  it('serves hubs over TLS with HUB_TLS_CERT/KEY; a plaintext hub is refused', async () => {
    const pki = makeTestPki();
    cleanups.push(() => pki.remove());
    const node = await startNode({ HUB_TLS_CERT: pki.server.cert, HUB_TLS_KEY: pki.server.key });
    expect(node.output()).not.toContain('plaintext gRPC');
    const { secret } = await provisionHome(edge(node), ADMIN, 'door-tls');
    const grpc = `127.0.0.1:${node.grpcPort}`;
    const hub = new HubClient(grpc, secret, { credentials: credentials.createSsl(pki.read(pki.ca)) });
    cleanups.push(() => hub.close());
    hub.hello('hub1', 'door-tls', devices);
    await hub.welcome();
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    const plain = new HubClient(grpc, secret);
    cleanups.push(() => plain.close());
    plain.hello('hub1', 'door-tls', devices);
    expect(await plain.ended()).toMatchObject({ code: status.UNAVAILABLE });
  });

  it('warns at start when the hub port serves plaintext on a non-loopback address', async () => {
    const node = await startNode({ HOST: '0.0.0.0' });
    await vi.waitFor(() => expect(node.output()).toContain('the hub ingress serves plaintext gRPC on a non-loopback address'));
  });
});

describe('hub supersede across nodes (two node processes over Redis)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a hub that connects to node B while its stream on node A is open: the older stream ends with ABORTED and commands reach the newer one', async () => {
    const cluster = new TestCluster({ redisUrl: redis.url, cluster: `${redis.cluster}doors`, adminToken: ADMIN, shards: 16 });
    cleanups.push(() => cluster.close());
    onTestFailed(() => console.error(cluster.outputs()));
    await Promise.all([cluster.start('node-a'), cluster.start('node-b')]);
    await cluster.settled('node-a', ['node-a', 'node-b']);
    const { secret, appToken } = await provisionHome(cluster.api('node-a'), ADMIN, 'door-moves');

    const older = new HubClient(cluster.grpc('node-a'), secret);
    cleanups.push(() => older.close());
    older.hello('hub1', 'door-moves', devices);
    expect(await older.welcome()).toMatchObject({ node_id: 'node-a' });
    const newer = new HubClient(cluster.grpc('node-b'), secret);
    cleanups.push(() => newer.close());
    newer.hello('hub1', 'door-moves', devices);
    expect(await newer.welcome()).toMatchObject({ node_id: 'node-b' });

    expect(await older.ended(10_000)).toMatchObject({ code: status.ABORTED });
    const sent = await cluster.api('node-a')('POST', '/v1/homes/door-moves/devices/light1/commands', appToken, {
      name: 'set',
      params: { on: true },
      ttlMs: 30_000,
    });
    expect(sent.status).toBe(202);
    const command = await newer.waitFor(
      (m) => (m.command?.command_id === sent.body.commandId ? m.command : undefined),
      'the command',
      10_000,
    );
    expect(command).toMatchObject({ device_id: 'light1', name: 'set' });
    expect(newer.status).toBeUndefined();
    expect(older.messages.some((m) => m.command !== undefined)).toBe(false);
  });
});
