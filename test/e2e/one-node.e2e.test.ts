/** End to end against `node/main.ts` in its own process: real HTTP, real gRPC, the hub contract and the app API. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HubClient } from '../../tools/hub-client/hub-client.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';

let node: NodeProcess;
let base: string;
let grpc: string;
const ADMIN = 'admin-token-for-e2e-tests';

async function api(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const devices = [
  { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
  { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
];

async function provision(homeId: string): Promise<{ secret: string; appToken: string }> {
  expect((await api('PUT', `/v1/homes/${homeId}`, ADMIN, { name: 'Flat', timezone: 'Europe/Berlin' })).status).toBeLessThan(300);
  const hub = await api('POST', `/v1/homes/${homeId}/hubs`, ADMIN, { hubId: 'hub1' });
  expect(hub.status).toBe(201);
  const token = await api('POST', '/v1/tokens', ADMIN, { homes: [homeId], scopes: ['read', 'control', 'rules'] });
  expect(token.status).toBe(201);
  const rule = {
    id: 'hall-light',
    name: 'Hall light on motion when dark',
    when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
    if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
    then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
  };
  expect((await api('PUT', `/v1/homes/${homeId}/rules/hall-light`, token.body.token, rule)).status).toBeLessThan(300);
  return { secret: hub.body.secret, appToken: token.body.token };
}

beforeAll(async () => {
  node = await startNodeProcess({ NODE_ID: 'e2e-node', ADMIN_TOKEN: ADMIN });
  base = `http://127.0.0.1:${node.httpPort}`;
  grpc = `127.0.0.1:${node.grpcPort}`;
});

afterAll(async () => {
  expect(await node.stop('SIGTERM')).toBe(0);
});

describe('one node, end to end', () => {
  it('motion → rule → command at the hub → result → the app sees it, and a re-send after reconnect applies once', async () => {
    const { secret, appToken } = await provision('e2e-home');
    const hub = new HubClient(grpc, secret);
    hub.hello('hub1', 'e2e-home', devices);
    expect(await hub.welcome()).toMatchObject({ node_id: 'e2e-node', last_durable_seq: '0' });

    const motion = { seq: 1, device: 'motion1', attributes: { motion: true, illuminance: 12 }, event: 'motion_detected' };
    hub.reports([motion]);
    expect(await hub.ackAtLeast(1)).toBeGreaterThanOrEqual(1);
    const command = await hub.waitFor((m) => m.command, 'command');
    expect(command).toMatchObject({ device_id: 'light1', name: 'set', params: { on: { flag: true }, brightness: { number: 60 } } });

    hub.send({ command_result: { command_id: command.command_id, ok: true, error: '' } });
    hub.reports([{ seq: 2, device: 'light1', attributes: { on: true, brightness: 60 } }]);
    await hub.ackAtLeast(2);

    const status = `/v1/homes/e2e-home/commands/${encodeURIComponent(command.command_id)}`;
    await vi.waitFor(async () => expect((await api('GET', status, appToken)).body).toMatchObject({ status: 'succeeded' }));
    const light = await api('GET', '/v1/homes/e2e-home/devices/light1', appToken);
    expect(light.status).toBe(200);
    expect(light.body.reported).toMatchObject({ on: { value: true }, brightness: { value: 60 } });
    const decisions = await api('GET', '/v1/homes/e2e-home/decisions?limit=10', appToken);
    expect(decisions.body.items[0]).toMatchObject({ ruleId: 'hall-light', outcome: 'fired' });

    const motionBefore = (await api('GET', '/v1/homes/e2e-home/devices/motion1', appToken)).body;
    hub.close();

    // The hub lost its stream before it saw some acks: it reconnects and re-sends them.
    const again = new HubClient(grpc, secret);
    again.hello('hub1', 'e2e-home', devices);
    expect(Number((await again.welcome()).last_durable_seq)).toBeLessThanOrEqual(2);
    again.reports([motion, { seq: 2, device: 'light1', attributes: { on: true, brightness: 60 } }]);
    await again.ackAtLeast(2);
    const motionAfter = (await api('GET', '/v1/homes/e2e-home/devices/motion1', appToken)).body;
    expect(motionAfter.version).toBe(motionBefore.version);
    const decisionsAfter = await api('GET', '/v1/homes/e2e-home/decisions?limit=10', appToken);
    expect(decisionsAfter.body.items).toHaveLength(1); // the rule did not fire a second time
    expect(again.messages.filter((m) => m.command)).toHaveLength(0);
    again.close();
  });

  it('an app command reaches the hub and its status follows the lifecycle', async () => {
    const { secret, appToken } = await provision('e2e-home-2');
    const hub = new HubClient(grpc, secret);
    hub.hello('hub1', 'e2e-home-2', devices);
    await hub.welcome();
    const sent = await api('POST', '/v1/homes/e2e-home-2/devices/light1/commands', appToken, {
      name: 'set',
      params: { on: false },
      ttlMs: 10_000,
    });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ status: 'sent' });
    const command = await hub.waitFor((m) => m.command, 'command');
    expect(command.command_id).toBe(sent.body.commandId);
    hub.send({ command_result: { command_id: command.command_id, ok: false, error: 'device unreachable' } });
    await vi.waitFor(async () =>
      expect((await api('GET', `/v1/homes/e2e-home-2/commands/${encodeURIComponent(sent.body.commandId)}`, appToken)).body).toMatchObject({
        status: 'failed',
        error: 'device unreachable',
      }),
    );
    hub.close();
  });

  it('refuses a wrong hub secret with UNAUTHENTICATED while other hubs and apps keep working', async () => {
    const { secret, appToken } = await provision('e2e-home-3');
    const intruder = new HubClient(grpc, 'hub_not-a-real-secret');
    intruder.hello('hub1', 'e2e-home-3', devices);
    expect((await intruder.ended()).code).toBe(16); // UNAUTHENTICATED
    intruder.close();
    const hub = new HubClient(grpc, secret);
    hub.hello('hub1', 'e2e-home-3', devices);
    await hub.welcome();
    hub.reports([{ seq: 1, device: 'motion1', attributes: { motion: false } }]);
    await hub.ackAtLeast(1);
    expect((await api('GET', '/v1/homes/e2e-home-3/devices/motion1', appToken)).status).toBe(200);
    expect((await api('GET', '/v1/homes/e2e-home-3/devices/motion1', 'app_wrong')).status).toBe(401);
    hub.close();
  });
});
