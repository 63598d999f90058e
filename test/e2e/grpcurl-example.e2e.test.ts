/** The README's hand-run example, as written: curl calls over HTTP, then grpcurl's two JSON messages over gRPC. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../tools/hub-client/hub-client.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';

const ADMIN = 'admin-token-for-readme-example';
let node: NodeProcess;

beforeAll(async () => {
  node = await startNodeProcess({ NODE_ID: 'readme-node', ADMIN_TOKEN: ADMIN });
});

afterAll(async () => {
  await node.stop();
});

async function curl(method: string, path: string, token: string, body?: string) {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> & { items?: unknown[] } };
}

describe('README example', () => {
  it('works as written: home, hub, rule, token; hello + report from grpcurl; the app reads the result', async () => {
    expect((await curl('PUT', '/v1/homes/flat-1', ADMIN, '{"name":"Flat","timezone":"Europe/Berlin"}')).status).toBe(201);
    const hub = await curl('POST', '/v1/homes/flat-1/hubs', ADMIN, '{"hubId":"hub1"}');
    expect(hub.json).toMatchObject({ hubId: 'hub1', secret: expect.stringMatching(/^hub_/) });
    const rule =
      '{"name":"Hall light on motion","when":[{"type":"attribute","device":"motion1","attribute":"motion","to":true}],"then":[{"type":"command","device":"light1","name":"set","params":{"on":true}}]}';
    expect((await curl('PUT', '/v1/homes/flat-1/rules/hall-light', ADMIN, rule)).status).toBe(201);
    const token = await curl('POST', '/v1/tokens', ADMIN, '{"homes":["flat-1"],"scopes":["read","control","rules"]}');
    const appToken = token.json.token as string;

    // What grpcurl sends from the README's here-document, then its half-close at end of input.
    const grpcurl = new HubClient(`127.0.0.1:${node.grpcPort}`, hub.json.secret as string);
    grpcurl.send(
      JSON.parse(
        '{"hello": {"hub_id": "hub1", "home_id": "flat-1", "firmware": "1.0", "devices": [{"device_id": "motion1", "type": "motion_sensor", "capabilities": ["motion"]}, {"device_id": "light1", "type": "light", "capabilities": ["on"]}]}}',
      ),
    );
    grpcurl.send(
      JSON.parse(
        '{"reports": {"items": [{"seq": "1", "device_id": "motion1", "ts_ms": "1700000000000", "attributes": {"motion": {"flag": true}}}]}}',
      ),
    );
    grpcurl.end();
    expect((await grpcurl.ended()).code).toBe(0);
    // The report, the rule's step and the light's command share one durable window: the command
    // and the ack are released together, the command first.
    expect(grpcurl.messages.map((m) => m.body)).toEqual(['welcome', 'command', 'ack']);
    expect(grpcurl.messages[1]?.command).toMatchObject({ device_id: 'light1', name: 'set' });
    expect(grpcurl.messages[2]?.ack?.up_to_seq).toBe('1');
    grpcurl.close();

    const shadow = await curl('GET', '/v1/homes/flat-1/devices/motion1', appToken);
    expect(shadow.json).toMatchObject({ reported: { motion: { value: true } } });
    const decisions = await curl('GET', '/v1/homes/flat-1/decisions?limit=5', appToken);
    expect(decisions.json.items?.[0]).toMatchObject({ ruleId: 'hall-light', outcome: 'fired' });
    const command = await curl(
      'POST',
      '/v1/homes/flat-1/devices/light1/commands',
      appToken,
      '{"name":"set","params":{"on":false},"ttlMs":30000}',
    );
    expect(command.status).toBe(202);
    expect(command.json).toMatchObject({ commandId: expect.any(String), status: 'queued' });
  });
});
