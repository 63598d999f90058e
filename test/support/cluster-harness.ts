/**
 * Multi-node test clusters: real `node/main.ts` processes on one Redis, the admin API, the shard
 * table every node derives from the ring, and a sampler of every shard's lease and fence in Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, onTestFailed, vi } from 'vitest';
import type { RingNode, ShardTable } from '../../cluster/cluster-types.ts';
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { shardOfHome } from '../../cluster/shard-of.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

/** GET /v1/admin/cluster: the admin's own shape. */
export type { ClusterStatus } from '../../cluster/cluster-admin.ts';
import type { ClusterStatus } from '../../cluster/cluster-admin.ts';

export interface ApiResponse {
  readonly status: number;
  // Bodies are checked field by field by the tests.
  readonly body: any;
}

export type Api = (method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>) => Promise<ApiResponse>;

/** The HTTP edge of a node. */
export function edge(node: NodeProcess): Api {
  const base = `http://127.0.0.1:${node.httpPort}`;
  return async (method, path, token, body, headers = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed };
  };
}

/**
 * One sample of a node's /metrics read through `api` (0 when it is not there yet): `name` with
 * `labels` as Prometheus writes them between braces (`kind="home"`), or none. /metrics on the
 * HTTP port needs the admin token.
 */
export async function metric(api: Api, adminToken: string, name: string, labels = ''): Promise<number> {
  const r = await api('GET', '/metrics', adminToken);
  if (r.status !== 200) throw new Error(`GET /metrics: HTTP ${r.status}`);
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = String(r.body)
    .split('\n')
    .find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

/** The shard → node table the nodes derive from the ring a status shows. */
export function tableOf(status: ClusterStatus): ShardTable {
  const nodes: RingNode[] = status.nodes
    .filter((n) => n.state === 'active' || n.state === 'draining')
    .map((n) => ({ id: n.id, weight: n.weight, state: n.state as RingNode['state'] }));
  return buildShardTable({ epoch: status.epoch, shardCount: status.shardCount, nodes });
}

/** The node that serves `homeId` by the ring of `status`. */
export function ownerOfHome(status: ClusterStatus, homeId: string): string {
  return tableOf(status).owners[shardOfHome(homeId, status.shardCount)]!;
}

/** `count` home ids `${prefix}-<n>` that the ring of `status` places on `nodeId`. */
export function homesOn(status: ClusterStatus, nodeId: string, count: number, prefix: string): string[] {
  const table = tableOf(status);
  const homes: string[] = [];
  for (let i = 0; homes.length < count; i++) {
    if (i > 100_000) throw new Error(`no ${count} homes on ${nodeId}`);
    const home = `${prefix}-${i}`;
    if (table.owners[shardOfHome(home, status.shardCount)] === nodeId) homes.push(home);
  }
  return homes;
}

export interface ClusterOptions {
  readonly redisUrl: string;
  readonly cluster: string;
  readonly adminToken: string;
  readonly shards: number;
  /** Extra environment for every node. */
  readonly env?: Record<string, string>;
}

/** SIGTERM, then SIGKILL if the node has not exited within `graceMs`; resolves the exit code (null: killed by a signal). */
export async function stopNode(node: NodeProcess, graceMs = 15_000): Promise<number | null> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return node.child.exitCode;
  const force = setTimeout(() => node.child.kill('SIGKILL'), graceMs);
  try {
    return await node.stop('SIGTERM');
  } finally {
    clearTimeout(force);
  }
}

/** The exit code of a node, once it exited. */
export function exited(node: NodeProcess): Promise<number | null> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return Promise.resolve(node.child.exitCode);
  return new Promise((resolve) => node.child.once('exit', (code) => resolve(code)));
}

/** The nodes of one test cluster; `close` stops every node still running (SIGKILL at the end: cleanup must be bounded). */
export class TestCluster {
  readonly nodes = new Map<string, NodeProcess>();

  constructor(readonly opts: ClusterOptions) {}

  /** Starts a node (AUTO_JOIN=true unless `env` says otherwise) and waits for its start line. */
  async start(nodeId: string, env: Record<string, string> = {}): Promise<NodeProcess> {
    const node = await startNodeProcess({
      REDIS_URL: this.opts.redisUrl,
      CLUSTER: this.opts.cluster,
      ADMIN_TOKEN: this.opts.adminToken,
      NODE_ID: nodeId,
      SHARDS: String(this.opts.shards),
      AUTO_JOIN: 'true',
      ...this.opts.env,
      ...env,
    });
    this.nodes.set(nodeId, node);
    return node;
  }

  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  api(id: string): Api {
    return edge(this.node(id));
  }

  grpc(id: string): string {
    return `127.0.0.1:${this.node(id).grpcPort}`;
  }

  /** Nodes whose process is still running. */
  running(): string[] {
    return [...this.nodes].filter(([, n]) => n.child.exitCode === null && n.child.signalCode === null).map(([id]) => id);
  }

  async status(via: string): Promise<ClusterStatus> {
    const r = await this.api(via)('GET', '/v1/admin/cluster', this.opts.adminToken);
    if (r.status !== 200) throw new Error(`GET /v1/admin/cluster via ${via}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as ClusterStatus;
  }

  /**
   * Waits until the ring's active nodes are exactly `active`, all alive, no handoff is in flight and
   * every active node holds exactly the shards the ring assigns it; returns that status.
   */
  async settled(via: string, active: readonly string[], timeoutMs = 20_000): Promise<ClusterStatus> {
    return vi.waitFor(
      async () => {
        const s = await this.status(via);
        const ring = s.nodes
          .filter((n) => n.state === 'active')
          .map((n) => n.id)
          .sort();
        const what = JSON.stringify(s);
        if (JSON.stringify(ring) !== JSON.stringify([...active].sort()))
          throw new Error(`active nodes ${ring.join(',')} not ${[...active].join(',')}: ${what}`);
        if (s.handoffs.inFlight) throw new Error(`handoffs in flight: ${what}`);
        for (const n of s.nodes.filter((x) => x.state === 'active')) {
          if (!n.alive || n.shardsOwned !== n.shardsAssigned) throw new Error(`node ${n.id} not settled: ${what}`);
        }
        return s;
      },
      { timeout: timeoutMs, interval: 100 },
    );
  }

  /** Stops every running node: SIGTERM with a short grace, then SIGKILL. */
  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => stopNode(n, 5_000).catch(() => null)));
  }

  /** The last `chars` characters each node printed. */
  outputs(chars = 3_000): string {
    return [...this.nodes]
      .map(
        ([id, n]) => `--- node ${id} (pid ${n.child.pid}, exit ${n.child.exitCode ?? n.child.signalCode}) ---\n${n.output().slice(-chars)}`,
      )
      .join('\n');
  }
}

/** A home with one hub (`hub1`) and an app token for it, provisioned over `api` as an operator would. */
export async function provisionHome(
  api: Api,
  adminToken: string,
  homeId: string,
  scopes = ['read', 'control', 'rules'],
): Promise<{ secret: string; appToken: string }> {
  const home = await api('PUT', `/v1/homes/${homeId}`, adminToken, { name: `Home ${homeId}`, timezone: 'Europe/Berlin' });
  if (home.status >= 300) throw new Error(`PUT home ${homeId}: ${home.status} ${JSON.stringify(home.body)}`);
  const hub = await api('POST', `/v1/homes/${homeId}/hubs`, adminToken, { hubId: 'hub1' });
  if (hub.status !== 201) throw new Error(`POST hub of ${homeId}: ${hub.status} ${JSON.stringify(hub.body)}`);
  const token = await api('POST', '/v1/tokens', adminToken, { homes: [homeId], scopes });
  if (token.status !== 201) throw new Error(`POST token for ${homeId}: ${token.status} ${JSON.stringify(token.body)}`);
  return { secret: hub.body.secret as string, appToken: token.body.token as string };
}

/** One look at every shard's lease holder and fence token (read in one MULTI: a consistent snapshot). */
export interface ShardSample {
  readonly at: number;
  readonly holders: readonly (string | null)[];
  readonly fences: readonly (number | null)[];
}

/**
 * Samples every shard's lease holder and fence token from Redis every `everyMs` and checks, sample
 * against sample, that a fence token never decreases and that a shard never changes holder
 * without a new fence token. Violations are collected, not thrown (the sampler runs in the background).
 */
export class ShardSampler {
  readonly samples: ShardSample[] = [];
  readonly violations: string[] = [];
  private readonly client: Redis;
  private readonly keys: KeyLayout;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    redisUrl: string,
    cluster: string,
    private readonly shardCount: number,
  ) {
    this.client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    this.client.on('error', () => {});
    this.keys = new KeyLayout(cluster);
  }

  start(everyMs = 100): void {
    this.timer = setInterval(() => {
      this.inFlight ??= this.sample()
        .then(() => undefined)
        .catch((err: unknown) => void this.violations.push(`sample failed: ${String(err)}`))
        .finally(() => (this.inFlight = undefined));
    }, everyMs);
  }

  async sample(): Promise<ShardSample> {
    const multi = this.client.multi();
    for (let s = 0; s < this.shardCount; s++) multi.get(this.keys.lease(s)).get(this.keys.fence(s));
    const replies = (await multi.exec()) ?? [];
    const holders: (string | null)[] = [];
    const fences: (number | null)[] = [];
    for (let s = 0; s < this.shardCount; s++) {
      const [e1, holder] = replies[2 * s]!;
      const [e2, fence] = replies[2 * s + 1]!;
      const failed = e1 ?? e2;
      if (failed) throw failed;
      holders.push(holder as string | null);
      fences.push(fence === null ? null : Number(fence));
    }
    const sample: ShardSample = { at: Date.now(), holders, fences };
    const prev = this.samples.at(-1);
    if (prev) {
      for (let s = 0; s < this.shardCount; s++) {
        const [f0, f1, h0, h1] = [prev.fences[s] ?? null, fences[s] ?? null, prev.holders[s] ?? null, holders[s] ?? null];
        if (f0 !== null && (f1 === null || f1 < f0)) this.violations.push(`shard ${s}: fence went from ${f0} to ${f1}`);
        if (h0 !== null && h1 !== null && h0 !== h1 && f1 === f0)
          this.violations.push(`shard ${s}: holder ${h0} → ${h1} with the same fence ${f0}`);
      }
    }
    this.samples.push(sample);
    return sample;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    this.client.disconnect();
  }
}

/** What `clusterTestFile` gives a test file. */
export interface ClusterTestFile {
  /** The file's private redis-server (started before its first test). */
  readonly redis: TestRedis;
  /** A fresh cluster (its own CLUSTER name on the file's Redis), stopped after the test; its nodes' output is printed if the test fails. */
  newCluster(): TestCluster;
  /** Runs `fn` after the running test, whatever happened (last registered, first run). */
  cleanup(fn: () => Promise<unknown> | void): void;
}

/**
 * The scaffolding of a multi-node test file: one private redis-server for the file, fresh clusters
 * on it, and per-test cleanups run last-in first-out. Registers the vitest hooks; call it once at
 * the top level of the file. `tag` keeps the clusters of different files apart in names.
 */
export function clusterTestFile(opts: {
  readonly adminToken: string;
  readonly shards: number;
  readonly tag: string;
  readonly outputChars?: number;
}): ClusterTestFile {
  let redis: TestRedis | undefined;
  let seq = 0;
  let cleanups: (() => Promise<unknown> | void)[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
  });
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
  const file: ClusterTestFile = {
    get redis(): TestRedis {
      if (!redis) throw new Error('the redis-server of the file starts before its first test');
      return redis;
    },
    newCluster() {
      const r = file.redis;
      const cluster = new TestCluster({
        redisUrl: r.url,
        cluster: `${r.cluster}${opts.tag}${seq++}`,
        adminToken: opts.adminToken,
        shards: opts.shards,
      });
      cleanups.push(() => cluster.close());
      onTestFailed(() => console.error(cluster.outputs(opts.outputChars)));
      return cluster;
    },
    cleanup(fn) {
      cleanups.push(fn);
    },
  };
  return file;
}
