/** The doctor's probes of a node over HTTP and of registered ports over TCP, against servers in this process; and the checks from the admin API alone. */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../../cluster/cluster-admin.ts';
import { fail, ok } from '../../tools/doctor/check-result.ts';
import { doctorMain, EXIT } from '../../tools/doctor/doctor-main.ts';
import { askNode } from '../../tools/doctor/node-api-check.ts';
import { portsCheck } from '../../tools/doctor/ports-check.ts';
import { handoffsFromStatus, heartbeatsFromStatus, portTargetsFromStatus, ringFromStatus } from '../../tools/doctor/status-checks.ts';

const TOKEN = 'doctor-probe-admin-token';
const status: ClusterStatus = {
  epoch: 7,
  shardCount: 4,
  nodes: [
    { id: 'n1', address: '127.0.0.1:8081', state: 'active', weight: 1, alive: true, shardsAssigned: 2, shardsOwned: 2 },
    { id: 'n2', address: '127.0.0.1:8082', state: 'active', weight: 1, alive: true, shardsAssigned: 2, shardsOwned: 2 },
  ],
  handoffs: { pending: 0, done: 4, inFlight: false },
  owners: ['n1', 'n2', 'n1', 'n2'],
};

/** How the fake node answers a path; tests replace entries. */
let routes: Record<string, (auth: string | undefined) => [number, string]>;
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const route = routes[req.url ?? ''];
    const [code, body] = route ? route(req.headers.authorization) : [404, '{"error":{"code":"not_found"}}'];
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

const admin =
  (body: string) =>
  (auth: string | undefined): [number, string] =>
    auth === `Bearer ${TOKEN}` ? [200, body] : [401, '{"error":{"code":"unauthenticated"}}'];

beforeEach(() => {
  routes = {
    '/healthz': () => [200, '{"status":"ok"}'],
    '/readyz': () => [200, '{"status":"ready"}'],
    '/v1/admin/cluster': admin(JSON.stringify(status)),
    '/metrics': admin('# TYPE iot_cluster_handoff_oldest_seconds gauge\niot_cluster_handoff_oldest_seconds 3\n'),
  };
});

describe('doctor node check (--url)', () => {
  it('ok with probes and the admin API answering; reads the cluster status and the oldest handoff', async () => {
    const r = await askNode(base, TOKEN);
    expect(r.check).toEqual({
      check: 'node',
      level: 'ok',
      finding: `${base}: /healthz and /readyz ok; admin API: epoch 7, 2/2 nodes alive`,
    });
    expect(r.status?.epoch).toBe(7);
    expect(r.oldestHandoffSeconds).toBe(3);
  });

  it('fails when the token is refused, saying so', async () => {
    const r = await askNode(base, 'wrong-token');
    expect(r.check).toMatchObject({ level: 'fail', finding: `${base} refused the admin token (HTTP 401)` });
    expect(r.status).toBeUndefined();
  });

  it('fails when the node is live but not ready, with its answer', async () => {
    routes['/readyz'] = () => [503, '{"status":"starting"}'];
    expect((await askNode(base, TOKEN)).check).toMatchObject({
      level: 'fail',
      finding: `${base} is live but not ready (/readyz HTTP 503: {"status":"starting"})`,
    });
  });

  it('fails (does not crash) when the admin API answers 200 with something that is not a cluster status', async () => {
    for (const body of ['<html>login</html>', '{"hello":"proxy"}', 'null']) {
      routes['/v1/admin/cluster'] = admin(body);
      const r = await askNode(base, TOKEN);
      expect(r.check).toMatchObject({
        level: 'fail',
        finding: `${base}/v1/admin/cluster answered HTTP 200 with something that is not a cluster status: ${body}`,
      });
      expect(r.status).toBeUndefined();
    }
  });

  it('warns without a token, after the probes', async () => {
    expect((await askNode(base, undefined)).check).toMatchObject({
      level: 'warn',
      finding: `${base}: /healthz and /readyz ok; admin API not asked (no token)`,
    });
  });

  it('fails with the reason when nothing listens at --url', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    expect((await askNode(dead, TOKEN)).check).toMatchObject({ level: 'fail', finding: `cannot reach ${dead}: ECONNREFUSED` });
  });
});

describe('doctor ports check', () => {
  it('ok when every address accepts; fails naming the node, kind and address that refuse; warns for a wildcard', async () => {
    const listening = createTcpServer((s) => s.destroy());
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const open = `127.0.0.1:${(listening.address() as AddressInfo).port}`;
    const closedServer = createTcpServer();
    await new Promise<void>((resolve) => closedServer.listen(0, '127.0.0.1', resolve));
    const closed = `127.0.0.1:${(closedServer.address() as AddressInfo).port}`;
    await new Promise((resolve) => closedServer.close(resolve));
    try {
      expect(await portsCheck([{ node: 'n1', kind: 'http', address: open }])).toMatchObject({
        level: 'ok',
        finding: '1 registered address accepts connections (n1)',
      });
      expect(
        await portsCheck([
          { node: 'n1', kind: 'http', address: open },
          { node: 'n2', kind: 'peer', address: closed },
        ]),
      ).toMatchObject({ level: 'fail', finding: `1/2 registered addresses refuse connections: n2 peer ${closed} (ECONNREFUSED)` });
      expect(await portsCheck([{ node: 'n3', kind: 'grpc', address: '0.0.0.0:50051' }])).toMatchObject({
        level: 'warn',
        action: 'set ADVERTISE_HOST to the name other nodes reach this one at',
      });
    } finally {
      await new Promise((resolve) => listening.close(resolve));
    }
  });
});

describe('doctor checks from the admin API alone', () => {
  it('ok for a healthy status; a ring node not alive fails naming it; handoffs in flight warn', () => {
    expect(heartbeatsFromStatus(status).level).toBe('ok');
    expect(ringFromStatus(status)).toMatchObject({ level: 'ok', finding: expect.stringContaining('epoch 7, 2 active (n1, n2)') });
    expect(handoffsFromStatus(status).level).toBe('ok');
    const n2Dead = { ...status, nodes: status.nodes.map((n) => (n.id === 'n2' ? { ...n, alive: false } : n)) };
    expect(heartbeatsFromStatus(n2Dead)).toMatchObject({
      level: 'fail',
      finding: 'n2 in the ring without a heartbeat: down or cut off from Redis',
    });
    expect(handoffsFromStatus({ ...status, handoffs: { pending: 3, done: 1, inFlight: true } })).toMatchObject({
      level: 'warn',
      finding: 'in flight: 3 pending, 1 done',
    });
    expect(portTargetsFromStatus(status)).toEqual([
      { node: 'n1', kind: 'http', address: '127.0.0.1:8081' },
      { node: 'n2', kind: 'http', address: '127.0.0.1:8082' },
    ]);
  });
});

describe('doctor exit codes', () => {
  const capture = () => {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
  };
  const env = { REDIS_URL: 'redis://127.0.0.1:1' };

  it('0 when nothing failed, 1 when a check failed, 2 for bad usage', async () => {
    const a = capture();
    expect(await doctorMain([], env, a.io, () => Promise.resolve([ok('redis', 'fine')]))).toBe(EXIT.ok);
    expect(a.out.stdout).toBe('ok    redis: fine\n');
    expect(await doctorMain([], env, capture().io, () => Promise.resolve([fail('ring', 'gone', 'fix it')]))).toBe(EXIT.failed);
    expect(await doctorMain(['--nope'], env, capture().io)).toBe(EXIT.usage);
  });

  it('3, with the error on stderr and nothing on stdout, when doctor itself breaks', async () => {
    const c = capture();
    const code = await doctorMain([], env, c.io, () => Promise.reject(new TypeError('Cannot read properties of undefined')));
    expect(code).toBe(3);
    expect(EXIT.internal).toBe(3);
    expect(c.out.stdout).toBe('');
    expect(c.out.stderr).toMatch(/^doctor: internal error, no verdict on the cluster: TypeError: Cannot read properties of undefined/);
  });
});
