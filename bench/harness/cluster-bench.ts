/**
 * What the resize and failover scenarios share: a cluster of real node processes on a private
 * redis-server, resident actors to move, and a numbered hub load (with apps sending commands)
 * whose timeline, latencies and lost / duplicated counts come back when it finishes, cut into the
 * phases before and during the change each scenario makes.
 */
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { shardOfHome } from '../../cluster/shard-of.ts';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { LatencyRecorder } from './hdr.ts';
import { checkIntegrity } from './integrity.ts';
import { LoadPool } from './load-client.ts';
import type { HubSpec, NumberedHubResult } from './load-protocol.ts';
import { ADMIN_TOKEN, grpcAddress, httpBase, LIFTED_LIMITS, provisionHomes, waitSettled, type ClusterStatus } from './node-api.ts';
import type { LatencySummary, ScenarioContext, Series } from './scenario.ts';
import { given, sleep, timed, type Cleanups } from './scenario-kit.ts';
import { mergeTimelines, timelineSeries, type MergedBucket } from './timeline.ts';

export const BUCKET_MS = 100;

export class BenchCluster {
  readonly nodes = new Map<string, NodeProcess>();

  private constructor(
    readonly redis: TestRedis,
    private readonly env: Record<string, string>,
    private readonly cleanups: Cleanups,
  ) {}

  static async start(cleanups: Cleanups, shards: number, tag: string): Promise<BenchCluster> {
    const redis = await startTestRedis();
    cleanups.add(() => redis.stop());
    const env = {
      ...LIFTED_LIMITS,
      REDIS_URL: redis.url,
      CLUSTER: `${redis.cluster}${tag}`,
      ADMIN_TOKEN,
      SHARDS: String(shards),
      LOG_LEVEL: 'warn',
      PASSIVATE_AFTER_MS: '3600000',
    };
    return new BenchCluster(redis, env, cleanups);
  }

  async startNode(id: string, extra: Record<string, string> = {}): Promise<NodeProcess> {
    const node = await startNodeProcess({ ...this.env, NODE_ID: id, ...extra }, 30_000);
    this.nodes.set(id, node);
    this.cleanups.add(() => node.stop('SIGKILL'));
    return node;
  }

  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  http(ids: readonly string[]): string[] {
    return ids.map((id) => httpBase(this.node(id)));
  }

  grpc(ids: readonly string[]): string[] {
    return ids.map((id) => grpcAddress(this.node(id)));
  }
}

export interface LoadedCluster {
  readonly cluster: BenchCluster;
  readonly pool: LoadPool;
  /** The first node's HTTP base: where the ops API is asked. */
  readonly admin: string;
  /** The settled ring. */
  readonly status: ClusterStatus;
}

/** Node ids `${prefix}1` … `${prefix}${n}`. */
export const nodeIds = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

/** Nodes `ids` on a private Redis (64 shards in smoke runs, else 1024) and `workers` load processes, started together; resolves once the ring is settled. */
export async function startLoadedCluster(
  ctx: ScenarioContext,
  cleanups: Cleanups,
  tag: string,
  ids: readonly string[],
  workers: number,
): Promise<LoadedCluster> {
  const cluster = await BenchCluster.start(cleanups, ctx.smoke ? 64 : 1024, tag);
  const starting = cleanups.track(LoadPool.start(workers), (p) => p.stop());
  await Promise.all(ids.map((id) => cluster.startNode(id)));
  const pool = await starting;
  const admin = cluster.http([ids[0]!])[0]!;
  return { cluster, pool, admin, status: await waitSettled(admin, ids) };
}

/** The node that owns `homeId` by the ring in `status`. */
export function ownerOf(status: ClusterStatus, homeId: string): string {
  const nodes = status.nodes.filter((n) => n.state === 'active').map((n) => ({ id: n.id, weight: n.weight, state: 'active' as const }));
  const table = buildShardTable({ epoch: status.epoch, shardCount: status.shardCount, nodes });
  return table.owners[shardOfHome(homeId, status.shardCount)]!;
}

/**
 * Makes about `actors` actors resident: homes of `devices` devices each (plus the home and hub
 * actors), every device reporting once through a hub connected to the home's owner.
 */
export async function preloadResident(
  ctx: ScenarioContext,
  cluster: BenchCluster,
  pool: LoadPool,
  ids: readonly string[],
  status: ClusterStatus,
  actors: number,
  devices: number,
): Promise<string> {
  const homes = Math.max(1, Math.round(actors / (devices + 2)));
  const t0 = performance.now();
  const bar = ctx.progress('resident actors: provisioning homes', homes);
  const specs = await provisionHomes({
    http: cluster.http(ids),
    grpc: cluster.grpc(ids),
    homeIds: Array.from({ length: homes }, (_, i) => `resident-${i}`),
    firstAddress: (homeId) => ids.indexOf(ownerOf(status, homeId)),
    onProgress: (n) => bar.update(n),
  });
  bar.stop();
  const filled = await pool.all('fill', (i) => ({ hubs: pool.share(specs, i), devices, concurrency: 25 }));
  const acked = filled.reduce((a, f) => a + f.acked, 0);
  const errors = filled.reduce((a, f) => a + f.errors, 0);
  const line = `${homes * (devices + 2)} resident actors (${homes} homes × (${devices} devices + home + hub)) in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${acked} reports acked, ${errors} errors`;
  ctx.log(`  ${line}`);
  return line;
}

export interface LoadOutcome {
  readonly buckets: readonly MergedBucket[];
  readonly series: Series[];
  readonly latency: LatencySummary;
  readonly hubs: readonly NumberedHubResult[];
  readonly integrity: Record<string, number>;
  readonly notes: string[];
}

/** A numbered hub load across `pool`, started at `t0` (epoch ms, x = 0 of the timeline). */
export class NumberedLoad {
  readonly t0 = Date.now();

  private constructor(
    private readonly pool: LoadPool,
    readonly specs: readonly HubSpec[],
  ) {}

  static async start(
    pool: LoadPool,
    specs: readonly HubSpec[],
    opts: { rate: number; http: readonly string[]; commandsPerSec: number },
  ): Promise<NumberedLoad> {
    const load = new NumberedLoad(pool, specs);
    await pool.all('numbered.start', (i) => ({
      hubs: pool.share(specs, i),
      perHubPerSec: opts.rate / specs.length,
      batch: 20,
      t0: load.t0,
      bucketMs: BUCKET_MS,
      http: [...opts.http],
      commandsPerSec: opts.commandsPerSec / pool.size,
    }));
    return load;
  }

  /** Seconds since t0. */
  since(at = Date.now()): number {
    return (at - this.t0) / 1000;
  }

  async mark(at: number): Promise<void> {
    await this.pool.all('numbered.mark', () => ({ at }));
  }

  /** The hubs' next streams go to `grpc`, the apps' next POSTs to `http` (what a load balancer does once a node is gone or joined). */
  async retarget(grpc: readonly string[], http: readonly string[]): Promise<void> {
    await this.pool.all('numbered.retarget', () => ({ grpc: [...grpc], http: [...http] }));
  }

  /** Per hub, ms from mark `mark` (0 = the first) until it was served again; null: not yet. */
  async served(mark: number): Promise<{ homeId: string; servedAfterMs: number | null }[]> {
    const parts = await this.pool.all('numbered.served', () => ({ mark }));
    return parts.flatMap((p) => p.hubs);
  }

  /** Stops the load, waits for every report to be acked and every command delivered (up to `commandWaitMs`), checks shadows via `http`. */
  async finish(commandWaitMs: number, http: readonly string[]): Promise<LoadOutcome> {
    const parts = await this.pool.all('numbered.finish', () => ({ timeoutMs: 30_000, commandWaitMs }));
    const hubs = parts.flatMap((p) => p.hubs);
    const buckets = mergeTimelines(parts.map((p) => p.timeline));
    const latency = LatencyRecorder.merge(parts.map((p) => p.latency)).summary('report → ack at hub, whole run');
    const { integrity, notes } = await checkIntegrity(
      http,
      this.specs,
      hubs,
      parts.map((p) => p.commands),
    );
    const commands = parts.map((p) => p.commands);
    const sum = (f: (c: (typeof commands)[number]) => number): number => commands.reduce((a, c) => a + f(c), 0);
    notes.unshift(
      `${hubs.length} hubs, ${hubs.reduce((a, h) => a + h.produced, 0)} reports (${hubs.reduce((a, h) => a + h.reportsSent - h.produced, 0)} re-sent), ` +
        `${sum((c) => c.accepted)} app commands accepted (${sum((c) => c.resent)} needed a retry, ${sum((c) => c.refused)} never accepted), ${sum((c) => c.deliveries)} command deliveries`,
    );
    return { buckets, series: timelineSeries(buckets, BUCKET_MS), latency, hubs, integrity: { ...integrity }, notes };
  }
}

/** Acked reports/s and the ack latency of a stretch of the timeline. */
export interface LoadWindow {
  readonly perSec: number;
  readonly latency: LatencySummary;
}

/** Acked reports/s and the ack latency of the buckets within [from, to) seconds. */
export function window(buckets: readonly MergedBucket[], from: number, to: number): LoadWindow {
  const inside = buckets.filter((b) => b.t >= from && b.t < to);
  const rec = LatencyRecorder.create({ digits: 2 });
  for (const b of inside) rec.add(b.latency);
  const seconds = Math.max(inside.length * (BUCKET_MS / 1000), BUCKET_MS / 1000);
  return {
    perSec: inside.reduce((a, b) => a + b.count, 0) / seconds,
    latency: rec.summary(`ack latency ${from.toFixed(1)}–${to.toFixed(1)} s`),
  };
}

/**
 * The numbered load of the change-under-load scenarios (resize, failover): `hubs` homes (`--hubs`,
 * default 3 in smoke runs, else 30) sending `rate` reports/s in all (`--rate`, 150 / 2,000) from
 * `workers` load processes; each phase (before and after the change) lasts `seconds`.
 */
export interface NumberedLoadPlan {
  readonly hubs: number;
  readonly rate: number;
  readonly seconds: number;
  readonly workers: number;
}

export function numberedLoadPlan(ctx: ScenarioContext): NumberedLoadPlan {
  const hubs = given(ctx, 'hubs', ctx.smoke ? 3 : 30);
  const rate = given(ctx, 'rate', ctx.smoke ? 150 : 2_000);
  return { hubs, rate, seconds: ctx.duration, workers: ctx.smoke ? 1 : Math.min(2, hubs) };
}

/**
 * Provisions homes `load-0` … (a hub and an app token each) on the nodes `ids`, starts the numbered
 * load on them with apps sending commands (5/s in smoke runs, else 10/s) and runs it for the steady
 * phase of `plan.seconds`.
 */
export async function startSteadyLoad(
  ctx: ScenarioContext,
  tag: string,
  { cluster, pool }: LoadedCluster,
  ids: readonly string[],
  plan: NumberedLoadPlan,
): Promise<NumberedLoad> {
  const specs = await provisionHomes({
    http: cluster.http(ids),
    grpc: cluster.grpc(ids),
    homeIds: Array.from({ length: plan.hubs }, (_, i) => `load-${i}`),
    tokens: true,
  });
  const load = await NumberedLoad.start(pool, specs, { rate: plan.rate, http: cluster.http(ids), commandsPerSec: ctx.smoke ? 5 : 10 });
  await timed(ctx, `${tag}: steady load`, plan.seconds, sleep(plan.seconds * 1000));
  return load;
}

export interface ChangeOutcome extends LoadOutcome {
  /** The `seconds` before the change. */
  readonly steady: LoadWindow;
  /** From the change until 100 ms after it settled. */
  readonly during: LoadWindow;
  /** Ack latency before the change, during it, and over the whole run. */
  readonly latencies: LatencySummary[];
}

export interface AfterChange {
  /** The progress label of the phase after the change. */
  readonly label: string;
  /** When the change was made and when it had settled (epoch ms). */
  readonly changeAt: number;
  readonly settledAt: number;
  /** The nodes whose shadows are checked at the end. */
  readonly http: readonly string[];
  /** The phases as the latency names say them: `ack latency ${before}`, e.g. 'before the kill'. */
  readonly before: string;
  readonly during: string;
}

/**
 * Runs `load` for `plan.seconds` more after the change, finishes it (waiting up to 3 s in smoke
 * runs, else 10 s, for commands to be delivered) and cuts the windows before and during the change.
 */
export async function finishAfterChange(
  ctx: ScenarioContext,
  load: NumberedLoad,
  plan: NumberedLoadPlan,
  after: AfterChange,
): Promise<ChangeOutcome> {
  await timed(ctx, after.label, plan.seconds, sleep(plan.seconds * 1000));
  const out = await load.finish(ctx.smoke ? 3_000 : 10_000, after.http);
  const changeAt = load.since(after.changeAt);
  const steady = window(out.buckets, Math.max(0, changeAt - plan.seconds), changeAt);
  const during = window(out.buckets, changeAt, load.since(after.settledAt) + 0.1);
  const latencies = [
    { ...steady.latency, name: `ack latency ${after.before}` },
    { ...during.latency, name: `ack latency ${after.during}` },
    { ...out.latency, name: 'ack latency, whole run' },
  ];
  return { ...out, steady, during, latencies };
}
