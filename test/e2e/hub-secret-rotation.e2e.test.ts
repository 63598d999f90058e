/**
 * Hub secret rotation against streams already open, on two node processes over Redis: the home
 * (and hub actor) live on node-a, the hub's stream on node-b. A rotation without grace ends the
 * open stream on the old secret with UNAUTHENTICATED at once; a rotation with grace ends it when
 * the grace period is over, and not before. The end travels from the hub actor to the stream's
 * node on the `hub.session` channel.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { homesOn, provisionHome, TestCluster } from '../support/cluster-harness.ts';

const ADMIN = 'admin-token-for-hub-rotation-tests';
const devices: HelloDevice[] = [{ deviceId: 'light1', type: 'light', capabilities: ['on'] }];
const RETIRED = { code: status.UNAUTHENTICATED, details: 'the hub secret of this stream was rotated out' };

let redis: TestRedis;
let cluster: TestCluster;
let homes: string[];
const clients: HubClient[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  cluster = new TestCluster({ redisUrl: redis.url, cluster: `${redis.cluster}rotation`, adminToken: ADMIN, shards: 16 });
  await Promise.all([cluster.start('node-a'), cluster.start('node-b')]);
  homes = homesOn(await cluster.settled('node-a', ['node-a', 'node-b']), 'node-a', 2, 'rotation');
}, 60_000);

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await cluster?.close();
  await redis?.stop();
});

/** A stream of hub1 of `homeId` on node-b (its hub actor is on node-a), welcomed and acking. */
async function openOnNodeB(homeId: string, secret: string): Promise<HubClient> {
  const hub = new HubClient(cluster.grpc('node-b'), secret);
  clients.push(hub);
  hub.hello('hub1', homeId, devices);
  expect(await hub.welcome()).toMatchObject({ node_id: 'node-b' });
  hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
  expect(await hub.ackAtLeast(1)).toBe(1);
  return hub;
}

async function rotate(homeId: string, graceSeconds: number): Promise<{ secret: string; previousValidUntil: number }> {
  const r = await cluster.api('node-a')('POST', `/v1/homes/${homeId}/hubs/hub1/secret`, ADMIN, { graceSeconds });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { secret: string; previousValidUntil: number };
}

describe('hub secret rotation over open streams (two node processes over Redis)', () => {
  it('ends the stream on the old secret with UNAUTHENTICATED at once when rotated without grace; the new secret connects', async () => {
    onTestFailed(() => console.error(cluster.outputs()));
    const homeId = homes[0]!;
    const { secret: old } = await provisionHome(cluster.api('node-a'), ADMIN, homeId);
    const hub = await openOnNodeB(homeId, old);
    const { secret } = await rotate(homeId, 0);
    expect(await hub.ended(10_000)).toMatchObject(RETIRED);
    await openOnNodeB(homeId, secret);
  });

  it('ends the stream on the old secret with UNAUTHENTICATED when the grace period ends, not before', async () => {
    onTestFailed(() => console.error(cluster.outputs()));
    const homeId = homes[1]!;
    const { secret: old } = await provisionHome(cluster.api('node-a'), ADMIN, homeId);
    const hub = await openOnNodeB(homeId, old);
    const { previousValidUntil } = await rotate(homeId, 3);
    const ended = await hub.ended(15_000);
    expect(ended).toMatchObject(RETIRED);
    // Both node processes run on this machine's clock; a timer may fire a millisecond early.
    expect(Date.now()).toBeGreaterThanOrEqual(previousValidUntil - 5);
  });
});
