/** `npm run ring`: the ops CLI run as a process against a local HTTP server that records what it is sent. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../support/run-cli.ts';

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

const requests: Recorded[] = [];
/** How the server answers each request; tests replace it. */
let respond: (req: Recorded) => Reply;
let server: Server;
let url: string;

const clusterStatus = {
  epoch: 3,
  shardCount: 16,
  nodes: [{ id: 'n1', address: '127.0.0.1:8080', state: 'active', weight: 1, alive: true, shardsAssigned: 16, shardsOwned: 16 }],
  handoffs: { pending: 0, done: 16, inFlight: false },
};

const defaultRespond = (req: Recorded): Reply => {
  if (req.method === 'GET' && req.path === '/v1/admin/cluster') return { status: 200, body: clusterStatus };
  if (req.method === 'POST' && req.path === '/v1/admin/ring/plan')
    return { status: 200, body: { epoch: 3, moving: 4, flows: [{ from: 'x', to: 'n1', shards: 4 }] } };
  if (req.method === 'POST' && req.path === '/v1/admin/ring') return { status: 202, body: { epoch: 4, moving: 4 } };
  return { status: 404, body: { error: { code: 'not_found', message: `no route ${req.method} ${req.path}` } } };
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: Recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: text === '' ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      const reply = respond(recorded);
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests.length = 0;
  respond = defaultRespond;
});

/** Runs the CLI as `npm run ring` does, without the ADMIN_TOKEN of the environment unless `env` gives one. */
const ring = (args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> =>
  runCli('tools/ring-cli.ts', args, { ADMIN_TOKEN: undefined, ...env }, 20_000);

const TOKEN = 'ops-admin-token';
const withServer = (...args: string[]): string[] => [...args, '--url', url, '--token', TOKEN];

describe('ring CLI (tools/ring-cli.ts)', () => {
  it('status: GETs the cluster status with the admin token and prints it', async () => {
    const r = await ring(withServer('status'));
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toEqual([
      { method: 'GET', path: '/v1/admin/cluster', authorization: `Bearer ${TOKEN}`, contentType: undefined, body: undefined },
    ]);
    expect(JSON.parse(r.stdout)).toEqual(clusterStatus);
  });

  it('plan drain x: POSTs the dry run of draining x', async () => {
    const r = await ring(withServer('plan', 'drain', 'x'));
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toEqual([
      {
        method: 'POST',
        path: '/v1/admin/ring/plan',
        authorization: `Bearer ${TOKEN}`,
        contentType: 'application/json',
        body: { drain: ['x'] },
      },
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ moving: 4 });
  });

  it('plan add y --weight 2: the dry run of an addition carries the weight', async () => {
    const r = await ring(withServer('plan', 'add', 'y', '--weight', '2'));
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toMatchObject([{ method: 'POST', path: '/v1/admin/ring/plan', body: { add: [{ id: 'y', weight: 2 }] } }]);
  });

  it.each<[string[], unknown]>([
    [['add', 'y', '--weight', '2'], { add: [{ id: 'y', weight: 2 }] }],
    [['add', 'y'], { add: [{ id: 'y', weight: 1 }] }],
    [['drain', 'x'], { drain: ['x'] }],
    [['remove', 'z'], { remove: ['z'] }],
    [['reweight', 'y', '3'], { weights: { y: 3 } }],
  ])('%j: POSTs the change to /v1/admin/ring and prints the answer', async (args, change) => {
    const r = await ring(withServer(...args));
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toEqual([
      { method: 'POST', path: '/v1/admin/ring', authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: change },
    ]);
    expect(JSON.parse(r.stdout)).toEqual({ epoch: 4, moving: 4 });
  });

  it('takes the token from ADMIN_TOKEN when --token is absent', async () => {
    const r = await ring(['status', '--url', url], { ADMIN_TOKEN: 'from-env' });
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toMatchObject([{ authorization: 'Bearer from-env' }]);
  });

  it('exits 2 with a message naming the token when there is none, sending nothing', async () => {
    const r = await ring(['status', '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/admin token is needed: --token or ADMIN_TOKEN/);
    expect(requests).toEqual([]);
  });

  it.each<[string[], RegExp]>([
    [['add', 'y', '--weight', '0'], /--weight 0 must be a positive number/],
    [['reweight', 'y', 'heavy'], /reweight needs a positive weight, got heavy/],
    [['drain'], /drain needs a node id/],
    [['evict', 'x'], /unknown change evict/],
  ])('exits 2 for a bad command %j, sending nothing', async (args, message) => {
    const r = await ring(withServer(...args));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(requests).toEqual([]);
  });

  it('exits 1 with the status and error body when the server refuses', async () => {
    const busy = {
      error: { code: 'failed_precondition', message: 'a ring change is still moving shards (3 pending): retry when it is done' },
    };
    respond = () => ({ status: 409, body: busy });
    const r = await ring(withServer('drain', 'x'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HTTP 409');
    expect(r.stderr).toContain('still moving shards');
    expect(r.stdout).toBe('');
  });

  it('exits 1 on a server error', async () => {
    respond = () => ({ status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
    const r = await ring(withServer('status'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HTTP 500');
  });

  it('exits 1 with a message when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const r = await ring(['status', '--url', deadUrl, '--token', TOKEN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach ${deadUrl}`);
  });

  it('--wait polls the status after a change until no handoff is in flight', async () => {
    let polls = 0;
    respond = (req) => {
      if (req.path !== '/v1/admin/cluster') return defaultRespond(req);
      polls++;
      return {
        status: 200,
        body: {
          ...clusterStatus,
          handoffs: polls < 2 ? { pending: 4, done: 12, inFlight: true } : { pending: 0, done: 16, inFlight: false },
        },
      };
    };
    const r = await ring(withServer('remove', 'z', '--wait'));
    expect(r.code, r.stderr).toBe(0);
    expect(requests.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/admin/ring', 'GET /v1/admin/cluster', 'GET /v1/admin/cluster']);
    expect(r.stdout).toContain('moving… 4 handoffs pending');
    expect(r.stdout).toContain('done: every moved shard is served');
  });
  /** Answers the status polls with `statusAt(poll)` (poll counts from 1), everything else as by default. */
  const pollsAnswer = (statusAt: (poll: number) => unknown): void => {
    let polls = 0;
    respond = (req) => (req.path === '/v1/admin/cluster' ? { status: 200, body: statusAt(++polls) } : defaultRespond(req));
  };
  const twoNodes = (n2: { alive: boolean; state: string; shardsAssigned: number; shardsOwned: number }) => [
    { id: 'n1', address: '127.0.0.1:8081', state: 'active', weight: 1, alive: true, shardsAssigned: 12, shardsOwned: 8 },
    { id: 'n2', address: '127.0.0.1:8082', weight: 1, ...n2 },
  ];

  it('--wait gives up after --timeout while shards still move: exit 1 naming the pending count and what to do', async () => {
    // Progress every poll (pending goes down and up), so only the timeout can end the wait.
    pollsAnswer((poll) => ({ ...clusterStatus, handoffs: { pending: 4 + (poll % 2), done: 12 + poll, inFlight: true } }));
    const r = await ring(withServer('drain', 'n2', '--wait', '--timeout', '1.5'));
    expect(r.code, r.out).toBe(1);
    expect(r.stdout).toContain('moving… 4 handoffs pending');
    expect(r.stderr).toMatch(/the resize did not finish: still moving after --timeout 1\.5 s \(waiting since \d\d:\d\d:\d\d UTC/);
    expect(r.stderr).toMatch(/epoch 3: [45] handoffs pending, \d+ done/);
    expect(r.stderr).toContain('The change stays applied');
    expect(r.stderr).toContain('npm run ring -- wait --timeout');
    expect(r.stderr.trim().split('\n').length, 'one message, on stderr only').toBeLessThan(8);
  });

  it('--wait gives up when nothing moved for --stall seconds: exit 1 naming the stuck nodes, the count and the advice', async () => {
    pollsAnswer(() => ({
      ...clusterStatus,
      nodes: twoNodes({ alive: true, state: 'active', shardsAssigned: 4, shardsOwned: 4 }),
      handoffs: { pending: 4, done: 12, inFlight: true },
    }));
    const started = Date.now();
    const r = await ring(withServer('add', 'n2', '--wait', '--stall', '1.5'));
    console.log(`stall path: gave up after ${Date.now() - started} ms (--stall 1.5, including tsx start-up)`);
    expect(r.code, r.out).toBe(1);
    expect(r.stderr).toMatch(/the resize did not finish: nothing moved for \d+ s \(/);
    expect(r.stderr).toContain('epoch 3: 4 handoffs pending, 12 done');
    expect(r.stderr).toContain('n1 (alive, active) holds 8 of the 12 shards the ring gives it');
    expect(r.stderr).not.toContain('n2 (alive');
    expect(r.stderr).toContain('npm run doctor');
    expect(r.stderr).toContain('npm run ring -- wait');
    expect(r.stdout.match(/moving…/g), 'an unchanged progress line is printed once').toHaveLength(1);
  });

  it('--wait gives up when a node that is down still holds shards in the ring, naming it and how to take it out', async () => {
    // The live nodes make progress, so only the dead holder can end the wait (after min(10 s, --stall)).
    pollsAnswer((poll) => ({
      ...clusterStatus,
      nodes: twoNodes({ alive: false, state: 'draining', shardsAssigned: 0, shardsOwned: 0 }),
      handoffs: { pending: 4 + (poll % 2), done: 12 + poll, inFlight: true },
    }));
    const r = await ring(withServer('drain', 'n2', '--wait', '--stall', '1'));
    expect(r.code, r.out).toBe(1);
    expect(r.stdout).toContain('(down: n2)');
    expect(r.stderr).toContain('the resize did not finish: a node that holds shards is down');
    expect(r.stderr).toMatch(/n2 is down since \d\d:\d\d:\d\d UTC or earlier, still draining in the ring/);
    expect(r.stderr).toContain('HEARTBEAT_TTL_MS');
    expect(r.stderr).toContain('npm run doctor');
    expect(r.stderr).toContain('`npm run ring -- remove n2`');
  });

  it('--wait exits 0 when the cluster takes out a dead node by itself and the moved shards are served', async () => {
    pollsAnswer((poll) =>
      poll < 3
        ? {
            ...clusterStatus,
            nodes: twoNodes({ alive: false, state: 'active', shardsAssigned: 4, shardsOwned: 0 }),
            handoffs: { pending: 4, done: 12, inFlight: true },
          }
        : {
            ...clusterStatus,
            nodes: twoNodes({ alive: false, state: 'left', shardsAssigned: 0, shardsOwned: 0 }),
            handoffs: { pending: 0, done: 16, inFlight: false },
          },
    );
    const r = await ring(withServer('add', 'n3', '--wait', '--stall', '5'));
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toContain('moving… 4 handoffs pending (down: n2)');
    expect(r.stdout).toContain('done: every moved shard is served');
    expect(r.stderr).toBe('');
  });

  it('wait: waits for a change already applied, sending no change', async () => {
    pollsAnswer((poll) => ({ ...clusterStatus, handoffs: poll < 2 ? { pending: 2, done: 14, inFlight: true } : clusterStatus.handoffs }));
    const r = await ring(withServer('wait'));
    expect(r.code, r.out).toBe(0);
    expect(requests.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /v1/admin/cluster', 'GET /v1/admin/cluster']);
    expect(r.stdout).toContain('done: every moved shard is served');
  });

  it.each<[string[], RegExp]>([
    [['wait', '--timeout', '0'], /--timeout 0 must be a positive number of seconds/],
    [['drain', 'x', '--wait', '--stall', 'soon'], /--stall soon must be a positive number of seconds/],
  ])('exits 2 for a bad wait option %j, sending nothing', async (args, message) => {
    const r = await ring(withServer(...args));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(requests).toEqual([]);
  });
});
