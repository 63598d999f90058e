/**
 * The node on a real Redis Sentinel group (a master, two replicas, three Sentinels that require a
 * password, on loopback): the master SIGKILLed mid-stream, a replica promoted, the node follows it
 * and keeps serving; with REDIS_WAIT_REPLICAS=1 every report acked before the kill is in the
 * state after the promotion, and every report is applied exactly once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import type { HelloDevice, HubReport } from '../../tools/hub-client/hub-client.ts';
import { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';
import { startNodeProcess } from '../../tools/process/node-process.ts';
import { edge, metric, provisionHome, stopNode, type Api } from '../support/cluster-harness.ts';
import { startTestRedisSentinel, waitForReplicas, type TestRedisSentinel } from '../support/redis-sentinel.ts';

const ADMIN = 'admin-token-for-redis-sentinel-tests';
const DEVICE_COUNT = 10;
const devices: HelloDevice[] = Array.from({ length: DEVICE_COUNT }, (_, i) => ({ deviceId: `d${i}`, type: 'plug', capabilities: ['n'] }));
/** Report `seq` goes to device d(seq % 10) and sets n = seq: every applied report bumps that device's version by one. */
const numbered = (seq: number): HubReport => ({
  seq,
  device: `d${seq % DEVICE_COUNT}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

let redis: TestRedisSentinel;
let cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  redis = await startTestRedisSentinel({ replicas: 2, sentinelPassword: 'sentinel-only-secret' });
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

/** What every device of the home holds: version = reports applied to it, n = the highest seq applied. */
async function deviceStates(api: Api, homeId: string, appToken: string): Promise<{ device: string; version: number; n: number }[]> {
  const seen = [];
  for (const d of devices) {
    const r = await api('GET', `/v1/homes/${homeId}/devices/${d.deviceId}`, appToken);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    seen.push({ device: d.deviceId, version: r.body.version as number, n: (r.body.reported?.n?.value ?? 0) as number });
  }
  return seen;
}

/** The device states after reports 1..total, each applied once. */
function expectedStates(total: number): { device: string; version: number; n: number }[] {
  const expected = devices.map((d) => ({ device: d.deviceId, version: 0, n: 0 }));
  for (let s = 1; s <= total; s++) {
    const e = expected[s % DEVICE_COUNT]!;
    e.version++;
    e.n = s;
  }
  return expected;
}

describe('on a real Redis Sentinel group (master, 2 replicas, 3 Sentinels with a password; loopback)', () => {
  it('the master SIGKILLed mid-stream: the node follows the promotion, keeps acking, and with REDIS_WAIT_REPLICAS=1 loses no acked report', async () => {
    expect(redis.url).toContain('?sentinelPassword=');
    const node = await startNodeProcess({
      REDIS_URL: redis.url,
      CLUSTER: redis.cluster,
      ADMIN_TOKEN: ADMIN,
      NODE_ID: 'sentinel-node',
      SHARDS: '16',
      REDIS_WAIT_REPLICAS: '1',
    });
    cleanups.push(() => stopNode(node, 5_000));
    onTestFailed(() => console.error(`node output:\n${node.output().slice(-6_000)}`));
    expect(node.store).toBe('redis');
    const api = edge(node);
    const homeId = 'sentinel-home';
    const { secret, appToken } = await provisionHome(api, ADMIN, homeId);

    const TOTAL = 4_000;
    const oldMaster = await redis.masterPort();
    let kill: { at: number; ack: number; done: Promise<void> } | undefined;
    let firstAckAfterKill: number | undefined;
    const hub: ResilientHub = new ResilientHub({
      address: () => `127.0.0.1:${node.grpcPort}`,
      secret,
      hubId: 'hub1',
      homeId,
      devices,
      total: TOTAL,
      ratePerSec: 1_000,
      report: numbered,
      onAck: (ack) => {
        if (kill && firstAckAfterKill === undefined && ack > kill.ack) firstAckAfterKill = performance.now();
        if (kill || ack < 1_000) return;
        kill = { at: performance.now(), ack, done: redis.kill(oldMaster) };
      },
    });
    const streaming = hub.run(45_000);
    streaming.catch(() => {});
    cleanups.push(() => hub.stop());

    await vi.waitFor(() => expect(kill, hub.describe()).toBeDefined(), { timeout: 20_000, interval: 10 });
    await kill!.done;
    const newMaster = await redis.promoted(oldMaster);
    const promotedAt = performance.now();
    const ackAtPromotion = hub.highestAck;
    // Until a replica follows the new master, every window fails its WAIT (nothing is acked meanwhile).
    await waitForReplicas(newMaster, 1);
    const replicatedAt = performance.now();
    await streaming;

    expect(hub.highestAck).toBe(TOTAL);
    expect(hub.highestAck).toBeGreaterThan(ackAtPromotion); // acks went on after the promotion
    expect(hub.errors).toEqual([]);
    expect(node.child.exitCode).toBeNull();
    expect(newMaster).not.toBe(oldMaster);
    // Every report is in the state the new master holds, each once: none acked before the kill was lost.
    expect(await deviceStates(api, homeId, appToken)).toEqual(expectedStates(TOTAL));
    const short = await metric(api, ADMIN, 'iot_redis_replica_wait_failures_total', 'reason="short"');
    const unknown = await metric(api, ADMIN, 'iot_redis_replica_wait_failures_total', 'reason="unknown"');
    const waits = await metric(api, ADMIN, 'iot_redis_replica_wait_seconds_count');
    console.log(
      `[redis-sentinel] master :${oldMaster} SIGKILLed at ack ${kill!.ack}; :${newMaster} promoted ${Math.round(promotedAt - kill!.at)} ms later, ` +
        `with a replica ${Math.round(replicatedAt - kill!.at)} ms after the kill; ` +
        `first new ack ${firstAckAfterKill === undefined ? 'never' : `${Math.round(firstAckAfterKill - kill!.at)} ms`} after the kill; ` +
        `${hub.streams.length} hub stream(s); ${waits} WAITs; not acked for want of a replica: ${short}, for a WAIT that failed: ${unknown}`,
    );
    expect(await stopNode(node)).toBe(0);
    // What the node logged through the failover (warnings and errors: LOG_LEVEL=warn), by message.
    const logged = new Map<string, number>();
    for (const line of node.output().split('\n')) {
      const msg = /"msg":"([^"]{0,90})/.exec(line)?.[1];
      if (msg !== undefined) logged.set(msg, (logged.get(msg) ?? 0) + 1);
    }
    console.log(`[redis-sentinel] node log lines: ${[...logged].map(([m, n]) => `${n}× ${m}`).join(' | ')}`);
  }, 60_000);
});
