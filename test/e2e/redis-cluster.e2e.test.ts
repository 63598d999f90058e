/**
 * The node on a real Redis Cluster (three masters, a replica each, on loopback; started once for
 * the file): script keys in one slot per call, WAIT sent to the master of the shard's slot, ring
 * announcements over a Cluster client's pub/sub, a node SIGKILLed and restarted (nothing acked
 * lost, nothing applied twice, with REDIS_WAIT_REPLICAS=1), and a resize (add, then drain) of
 * real node processes under hub load.
 */
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { RingStore } from '../../cluster/ring-store.ts';
import type { RingDoc } from '../../cluster/cluster-types.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient } from '../../runtime/redis/redis-connection.ts';
import { keySlot, shardConnection } from '../../runtime/redis/replica-wait.ts';
import type { HelloDevice, HubReport } from '../../tools/hub-client/hub-client.ts';
import { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { edge, homesOn, metric, ownerOfHome, provisionHome, stopNode, TestCluster, type Api } from '../support/cluster-harness.ts';
import { LoadHub } from '../support/load-hub.ts';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.ts';

const ADMIN = 'admin-token-for-redis-cluster-tests';
const SHARDS = 32;
const DEVICE_COUNT = 10;
const devices: HelloDevice[] = Array.from({ length: DEVICE_COUNT }, (_, i) => ({ deviceId: `d${i}`, type: 'plug', capabilities: ['n'] }));
/** Report `seq` goes to device d(seq % 10) and sets n = seq: every applied report bumps that device's version by one. */
const numbered = (seq: number): HubReport => ({
  seq,
  device: `d${seq % DEVICE_COUNT}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

let redis: TestRedisCluster;
let seq = 0;
let cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  redis = await startTestRedisCluster({ masters: 3, replicasPerMaster: 1 });
}, 60_000);

afterAll(async () => {
  await redis?.stop();
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const fn of pending)
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
});

const clusterName = (): string => `${redis.cluster}x${seq++}`;

/** Every device of the home saw exactly its reports 1..total: version = reports sent to it, n = its highest seq. */
async function expectEveryReportAppliedOnce(api: Api, homeId: string, appToken: string, total: number): Promise<void> {
  const seen = [];
  for (const d of devices) {
    const r = await api('GET', `/v1/homes/${homeId}/devices/${d.deviceId}`, appToken);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    seen.push({ home: homeId, device: d.deviceId, version: r.body.version as number, n: (r.body.reported?.n?.value ?? 0) as number });
  }
  const expected = devices.map((d) => ({ home: homeId, device: d.deviceId, version: 0, n: 0 }));
  for (let s = 1; s <= total; s++) {
    const e = expected[s % DEVICE_COUNT]!;
    e.version++;
    e.n = s;
  }
  expect(seen).toEqual(expected);
}

async function clusterClient(): Promise<Cluster> {
  const client = createRedisClient(redis.url, { failFast: true, commandTimeoutMs: 5_000 });
  client.on('error', () => {});
  await connectRedis(client);
  cleanups.push(() => client.disconnect());
  return client as Cluster;
}

describe('on a real Redis Cluster (3 masters with a replica each, loopback)', () => {
  it('hashes keys as the Cluster does, and sends each shard’s WAIT to the master of its slot, spread over every master', async () => {
    const client = await clusterClient();
    const keys = new KeyLayout(clusterName());
    for (const key of ['foo', '{iot:3}:fence', 'foo{}{bar}', 'foo{{bar}}zap', keys.journal(17, 'device:h:d1'), keys.node('n1')])
      expect(keySlot(key), key).toBe(await client.cluster('KEYSLOT', key));
    const connOf = shardConnection(client, keys);
    const owners = new Set<number>();
    for (let shard = 0; shard < SHARDS; shard++) {
      const [, , [, masterPort] = ['', -1]] = (await client.cluster('SLOTS')).find(
        ([from, to]) => from <= keySlot(keys.fence(shard)) && keySlot(keys.fence(shard)) <= to,
      )!;
      const conn = connOf(shard) as unknown as { options: { port: number } };
      expect(conn.options.port, `shard ${shard}`).toBe(masterPort);
      owners.add(masterPort);
    }
    expect(owners.size).toBe(3); // the shards of a cluster live on every master: the scenarios below span them
  });

  it('announces ring changes over pub/sub on a Cluster client (no polling needed)', async () => {
    const client = await clusterClient();
    const keys = new KeyLayout(clusterName());
    const store = new RingStore(client, keys, silentLogger);
    await store.create({ shardCount: 4, nodes: [{ id: 'a', weight: 1, state: 'active' }] });
    const seen: RingDoc[] = [];
    // One poll a minute: a change seen within seconds came by the announcement.
    const stop = store.watch((doc) => seen.push(doc), 60_000);
    cleanups.push(stop);
    await vi.waitFor(() => expect(seen.map((d) => d.epoch)).toEqual([1]), { timeout: 5_000, interval: 20 });
    // Subscribed once the duplicate connection is ready; a change before that is found by the read after subscribing.
    await new Promise((r) => setTimeout(r, 300));
    const changed = await store.compareAndSet(1, { nodes: [{ id: 'a', weight: 2, state: 'active' }] });
    expect(changed.ok).toBe(true);
    await vi.waitFor(() => expect(seen.map((d) => d.epoch)).toEqual([1, 2]), { timeout: 5_000, interval: 20 });
  });

  it('a node SIGKILLed mid-stream with REDIS_WAIT_REPLICAS=1 loses no acked report and applies none twice after a restart', async () => {
    const cluster = clusterName();
    const start = async (): Promise<NodeProcess> => {
      const node = await startNodeProcess({
        REDIS_URL: redis.url,
        CLUSTER: cluster,
        ADMIN_TOKEN: ADMIN,
        NODE_ID: 'rc-node',
        SHARDS: String(SHARDS),
        REDIS_WAIT_REPLICAS: '1',
      });
      cleanups.push(() => stopNode(node, 5_000));
      onTestFailed(() => console.error(`node (pid ${node.child.pid}) output:\n${node.output().slice(-4_000)}`));
      expect(node.store).toBe('redis');
      return node;
    };
    let node = await start();
    const homeId = 'rc-kill-home';
    const { secret, appToken } = await provisionHome(edge(node), ADMIN, homeId);
    const TOTAL = 4_000;
    let address = `127.0.0.1:${node.grpcPort}`;
    let killed: { ack: number; exit: Promise<number | null> } | undefined;
    const hub: ResilientHub = new ResilientHub({
      address: () => address,
      secret,
      hubId: 'hub1',
      homeId,
      devices,
      total: TOTAL,
      ratePerSec: 2_000,
      report: numbered,
      onAck: (ack) => {
        if (killed || ack < 1_500) return;
        killed = { ack, exit: node.stop('SIGKILL') };
      },
    });
    const streaming = hub.run(40_000);
    streaming.catch(() => {});
    cleanups.push(() => hub.stop());
    await vi.waitFor(() => expect(killed, hub.describe()).toBeDefined(), { timeout: 30_000, interval: 10 });
    expect(await killed!.exit).toBeNull();
    node = await start();
    address = `127.0.0.1:${node.grpcPort}`;
    await streaming;
    expect(hub.highestAck).toBe(TOTAL);
    expect(hub.errors).toEqual([]);
    expect(hub.streams.length).toBeGreaterThan(1);
    const api = edge(node);
    await expectEveryReportAppliedOnce(api, homeId, appToken, TOTAL);
    // The restarted node's acks waited for replicas: WAITs were sent, none fell short.
    const waits = await metric(api, ADMIN, 'iot_redis_replica_wait_seconds_count');
    const windows = await metric(api, ADMIN, 'iot_redis_replica_wait_windows_total');
    expect(waits).toBeGreaterThan(0);
    expect(await metric(api, ADMIN, 'iot_redis_replica_wait_failures_total', 'reason="short"')).toBe(0);
    console.log(
      `[redis-cluster] restarted node: ${windows} windows confirmed by ${waits} WAITs (${(windows / waits).toFixed(2)} windows per WAIT)`,
    );
    expect(await stopNode(node)).toBe(0);
  }, 60_000);

  it('resizes under hub load (a node added, then one drained): every report acked and applied exactly once', async () => {
    const cluster = new TestCluster({ redisUrl: redis.url, cluster: clusterName(), adminToken: ADMIN, shards: SHARDS });
    cleanups.push(() => cluster.close());
    onTestFailed(() => console.error(cluster.outputs()));
    // n3 starts with the others (starting a node is the slow part here) and waits outside the ring to be added.
    await Promise.all([cluster.start('n1'), cluster.start('n2'), cluster.start('n3', { AUTO_JOIN: 'false' })]);
    const before = await cluster.settled('n1', ['n1', 'n2']);
    const homes = [...homesOn(before, 'n1', 2, 'rc'), ...homesOn(before, 'n2', 2, 'rc')];
    const provisioned = await Promise.all(homes.map((homeId) => provisionHome(cluster.api('n1'), ADMIN, homeId)));
    const hubs = homes.map((homeId, i) => {
      // Each hub on the node that does not own its home: reports cross the peer stream too.
      const other = ownerOfHome(before, homeId) === 'n1' ? 'n2' : 'n1';
      const hub = new LoadHub({
        address: (attempt) => {
          const running = cluster.running();
          return cluster.grpc(attempt === 0 || running.includes(other) ? other : running[attempt % running.length]!);
        },
        secret: provisioned[i]!.secret,
        hubId: 'hub1',
        homeId,
        devices,
        report: numbered,
        ratePerSec: 200,
      });
      cleanups.push(() => hub.stop());
      return hub;
    });
    for (const hub of hubs) hub.start();
    await vi.waitFor(() => expect(hubs.every((h) => h.highestAck >= 200)).toBe(true), { timeout: 15_000, interval: 20 });

    const t0 = performance.now();
    const add = await cluster.api('n1')('POST', '/v1/admin/ring', ADMIN, { add: [{ id: 'n3' }] });
    expect(add.status, JSON.stringify(add.body)).toBe(202);
    await cluster.settled('n1', ['n1', 'n2', 'n3'], 30_000);
    const added = performance.now();
    const drain = await cluster.api('n2')('POST', '/v1/admin/ring', ADMIN, { drain: ['n1'] });
    expect(drain.status, JSON.stringify(drain.body)).toBe(202);
    const after = await cluster.settled('n2', ['n2', 'n3'], 30_000);
    const drained = performance.now();
    expect(after.nodes.find((n) => n.id === 'n1')).toMatchObject({ state: 'draining', shardsOwned: 0 });
    const mark = hubs.map((h) => h.highestAck);
    await vi.waitFor(() => expect(hubs.every((h, i) => h.highestAck >= mark[i]! + 100)).toBe(true), { timeout: 15_000, interval: 20 });
    await Promise.all(hubs.map((h) => h.finish(20_000)));

    const api = cluster.api('n3');
    for (const [i, hub] of hubs.entries()) {
      expect(hub.errors, hub.describe()).toEqual([]);
      expect(hub.highestAck, hub.describe()).toBe(hub.produced);
      await expectEveryReportAppliedOnce(api, homes[i]!, provisioned[i]!.appToken, hub.produced);
    }
    console.log(
      `[redis-cluster] add n3 → settled ${Math.round(added - t0)} ms, drain n1 → settled ${Math.round(drained - added)} ms; ` +
        `${hubs.reduce((s, h) => s + h.produced, 0)} reports from ${hubs.length} hubs, all acked and applied once`,
    );
  }, 90_000);
});
