/**
 * Desired state reaches the hub across nodes: real `node/main.ts` processes sharing a private
 * redis-server, the home's devices on one node and the hub's stream on the other (then the other
 * way round after a reconnect). An app's PATCH is sent down; a hub that reconnects gets the delta it
 * missed once per connect and none after it reported matching values; a command result's map shows
 * on the command's status from either node.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { homesOn, ownerOfHome, provisionHome, TestCluster, type Api } from '../support/cluster-harness.ts';
import { HubClient, type Desired, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

const ADMIN = 'admin-token-for-desired-tests';
const devices: HelloDevice[] = [
  { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
  { deviceId: 'plug1', type: 'plug', capabilities: ['on'] },
];

let redis: TestRedis;
let cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const fn of cleanups.reverse())
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
  cleanups = [];
});

const desiredFor = (hub: HubClient, deviceId: string): Desired[] => hub.desired().filter((d) => d.device_id === deviceId);
const waitDesired = (hub: HubClient, deviceId: string): Promise<Desired> =>
  hub.waitFor((m) => (m.desired?.device_id === deviceId ? m.desired : undefined), `desired for ${deviceId}`, 10_000);

describe('desired state across nodes (real node processes)', () => {
  it('reaches the hub on the other node on PATCH and after each reconnect, once, and stops once the hub matched it', async () => {
    const cluster = new TestCluster({ redisUrl: redis.url, cluster: `${redis.cluster}d0`, adminToken: ADMIN, shards: 32 });
    cleanups.push(() => cluster.close());
    onTestFailed(() => console.error(cluster.outputs()));
    await Promise.all([cluster.start('node-a'), cluster.start('node-b')]);
    const status = await cluster.settled('node-a', ['node-a', 'node-b']);
    const [homeId] = homesOn(status, 'node-b', 1, 'twin');
    expect(ownerOfHome(status, homeId!)).toBe('node-b');
    const viaA: Api = cluster.api('node-a');
    const viaB: Api = cluster.api('node-b');
    const { secret, appToken } = await provisionHome(viaA, ADMIN, homeId!);
    const light = `/v1/homes/${homeId}/devices/light1`;
    const patch = (api: Api, desired: Record<string, unknown>) => api('PATCH', light, appToken, { desired });
    let seq = 0;
    const connect = async (node: string): Promise<HubClient> => {
      const hub = new HubClient(cluster.grpc(node), secret);
      cleanups.push(() => hub.close());
      hub.hello('hub1', homeId!, devices);
      expect(await hub.welcome(10_000)).toMatchObject({ node_id: node });
      return hub;
    };
    const report = async (hub: HubClient, device: string, attributes: Record<string, boolean | number>) => {
      hub.reports([{ seq: ++seq, device, attributes }]);
      await hub.ackAtLeast(seq, 10_000);
    };
    const offline = async (hub: HubClient) => {
      hub.close();
      await vi.waitFor(async () => expect((await viaB('GET', light, appToken)).body.online).toBe(false), { timeout: 10_000, interval: 50 });
    };

    // The devices live on node-b; the stream is on node-a.
    let hub = await connect('node-a');
    await report(hub, 'light1', { on: false, brightness: 10 });
    await report(hub, 'plug1', { on: false });
    const patched = await patch(viaB, { on: true });
    expect(patched.status).toBe(200);
    expect(await waitDesired(hub, 'light1')).toEqual({
      device_id: 'light1',
      version: String(patched.body.version),
      delta: { on: { kind: 'flag', flag: true } },
    });

    // Missed while away; the hub comes back on node-b this time.
    await offline(hub);
    const latest = await patch(viaA, { brightness: 70 });
    hub = await connect('node-b');
    expect(await waitDesired(hub, 'light1')).toEqual({
      device_id: 'light1',
      version: String(latest.body.version),
      delta: { on: { kind: 'flag', flag: true }, brightness: { kind: 'number', number: 70 } },
    });
    expect(hub.messages[0]?.body).toBe('welcome');

    // The hub applies it and reports: the delta clears; the next connect sends nothing for light1.
    await report(hub, 'light1', { on: true, brightness: 70 });
    expect((await viaA('GET', light, appToken)).body.delta).toEqual({});
    await offline(hub);
    hub = await connect('node-a');
    // A barrier in light1's own order: any desired of light1 on this stream carries only this change.
    await patch(viaB, { brightness: 20 });
    await waitDesired(hub, 'light1');
    for (const d of desiredFor(hub, 'light1')) expect(d.delta).toEqual({ brightness: { kind: 'number', number: 20 } });
    expect(desiredFor(hub, 'plug1')).toEqual([]);

    // A command through node-b, its result (with a map) from the hub on node-a, read on both nodes.
    const sent = await viaB('POST', `${light}/commands`, appToken, { name: 'dim', params: { level: 40 }, ttlMs: 30_000 });
    expect(sent.status).toBe(202);
    const command = await hub.waitFor((m) => (m.command?.command_id === sent.body.commandId ? m.command : undefined), 'command', 10_000);
    hub.commandResult(command.command_id, true, '', { level: 40, clamped: false });
    const path = `/v1/homes/${homeId}/commands/${encodeURIComponent(command.command_id)}`;
    for (const api of [viaA, viaB])
      await vi.waitFor(
        async () =>
          expect((await api('GET', path, appToken)).body).toMatchObject({ status: 'succeeded', result: { level: 40, clamped: false } }),
        { timeout: 10_000, interval: 50 },
      );
    expect(hub.errors()).toEqual([]);
  }, 60_000);
});
