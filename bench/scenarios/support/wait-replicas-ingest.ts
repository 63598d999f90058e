/**
 * The failover scenario's ingest comparison: durable reports/s (every hub's credit window full)
 * and ack latency at a fixed rate on two one-node clusters sharing the benchmark's Redis, which
 * has a replica — one node with `REDIS_WAIT_REPLICAS=0` (a window is acked once the master has
 * it) and one with `REDIS_WAIT_REPLICAS=1` (once a replica has it too). The same load hubs drive
 * each node alone, one after the other; the master's count of WAIT calls says whether the second
 * node waited at all.
 */
import { startNodeProcess, type NodeProcess } from '../../../tools/process/node-process.ts';
import { LatencyRecorder } from '../../harness/hdr.ts';
import type { LoadPool } from '../../harness/load-client.ts';
import type { HubSpec } from '../../harness/load-protocol.ts';
import { ADMIN_TOKEN, grpcAddress, httpBase, LIFTED_LIMITS, provisionHomes } from '../../harness/node-api.ts';
import { waitCalls } from '../../harness/redis-replica.ts';
import type { LatencySummary, ScenarioContext } from '../../harness/scenario.ts';
import { fmt, sleep, timed, type Cleanups } from '../../harness/scenario-kit.ts';

const DEVICES = 10;
const BATCH = 50;
/** Reports in flight across all hubs (each hub's window is its share). */
const IN_FLIGHT = 20_000;

export const WAIT_SETTINGS = [0, 1] as const;

/** What one node (one REDIS_WAIT_REPLICAS setting) did. */
export interface WaitIngestRun {
  readonly waitReplicas: number;
  /** Acked reports/s with every window full. */
  readonly perSec: number;
  readonly errors: number;
  /** Reports/s achieved in the paced phase, and its ack latency. */
  readonly achieved: number;
  readonly latency: LatencySummary;
  /** WAIT commands the Redis master ran while this node was measured. */
  readonly waitCalls: number;
}

export interface WaitIngestPlan {
  readonly hubs: number;
  /** Reports/s of the paced phase. */
  readonly rate: number;
  readonly seconds: number;
}

/** 2 hubs at 500/s in smoke runs, else 10 hubs at 5,000/s; `ctx.duration` per phase. */
export const waitIngestPlan = (ctx: ScenarioContext): WaitIngestPlan => ({
  hubs: ctx.smoke ? 2 : 10,
  rate: ctx.smoke ? 500 : 5_000,
  seconds: ctx.duration,
});

export class WaitIngest {
  private constructor(
    private readonly redisUrl: string,
    private readonly plan: WaitIngestPlan,
    private readonly nodes: readonly { readonly waitReplicas: number; readonly node: NodeProcess; readonly specs: HubSpec[] }[],
    readonly window: number,
  ) {}

  /** Starts a node per setting on `redisUrl` (clusters `${clusterPrefix}wait<n>`) and provisions its homes. */
  static async start(
    cleanups: Cleanups,
    redisUrl: string,
    clusterPrefix: string,
    plan: WaitIngestPlan,
    shards: number,
  ): Promise<WaitIngest> {
    const window = Math.max(2 * BATCH, Math.round(IN_FLIGHT / plan.hubs / BATCH) * BATCH);
    const homeIds = Array.from({ length: plan.hubs }, (_, i) => `wait-${i}`);
    const nodes = await Promise.all(
      WAIT_SETTINGS.map(async (waitReplicas) => {
        const node = await cleanups.track(
          startNodeProcess(
            {
              ADMIN_TOKEN,
              ...LIFTED_LIMITS,
              NODE_ID: `bench-wait${waitReplicas}`,
              LOG_LEVEL: 'warn',
              SHARDS: String(shards),
              HUB_WINDOW: String(window),
              REDIS_URL: redisUrl,
              CLUSTER: `${clusterPrefix}wait${waitReplicas}`,
              REDIS_WAIT_REPLICAS: String(waitReplicas),
              OTEL_SDK_DISABLED: 'true',
            },
            30_000,
          ),
          (n) => n.stop('SIGKILL'),
        );
        const specs = await provisionHomes({ http: [httpBase(node)], grpc: [grpcAddress(node)], homeIds });
        return { waitReplicas, node, specs };
      }),
    );
    return new WaitIngest(redisUrl, plan, nodes, window);
  }

  /** Measures each node alone (window full, then paced), stopping each once measured. */
  async measure(ctx: ScenarioContext, pool: LoadPool): Promise<WaitIngestRun[]> {
    const { seconds, rate, hubs } = this.plan;
    const runs: WaitIngestRun[] = [];
    for (const { waitReplicas, node, specs } of this.nodes) {
      const label = `REDIS_WAIT_REPLICAS=${waitReplicas}`;
      const callsBefore = await waitCalls(this.redisUrl);
      await pool.all('ingest.connect', (i) => ({ hubs: pool.share(specs, i), devices: DEVICES, batch: BATCH }));
      // Warm-up (activations, JIT, connections); smoke runs too: a sub-second flood may otherwise end before its first ack.
      await pool.all('ingest.flood', () => ({ durationMs: ctx.smoke ? 300 : 2_000 }));
      const flood = await timed(
        ctx,
        `failover: ingest ${label}, window full`,
        seconds,
        pool.all('ingest.flood', () => ({ durationMs: seconds * 1000 })),
      );
      const perSec = flood.reduce((a, x) => a + x.acked / (x.elapsedMs / 1000), 0);
      if (!ctx.smoke) await sleep(1_000); // work behind the acks settles
      const paced = await timed(
        ctx,
        `failover: ingest ${label}, ${rate}/s`,
        seconds,
        pool.all('ingest.paced', () => ({ perHubPerSec: rate / hubs, durationMs: seconds * 1000 })),
      );
      await pool.all('ingest.close', () => ({}));
      await node.stop('SIGKILL'); // measured: the next node runs alone
      const latency = LatencyRecorder.merge(paced.map((x) => x.latency)).summary(
        `ingest with ${label}: ack latency at ${fmt(rate)} reports/s`,
      );
      const run: WaitIngestRun = {
        waitReplicas,
        perSec,
        errors: flood.reduce((a, x) => a + x.errors, 0) + paced.reduce((a, x) => a + x.errors, 0),
        achieved: paced.reduce((a, x) => a + x.acked / (x.elapsedMs / 1000), 0),
        latency,
        waitCalls: (await waitCalls(this.redisUrl)) - callsBefore,
      };
      ctx.log(
        `  ingest ${label}: ${fmt(perSec)} reports/s window full; at ${rate}/s ack p50 ${latency.p50} ms p99 ${latency.p99} ms; ${fmt(run.waitCalls)} WAIT calls on the master`,
      );
      runs.push(run);
    }
    return runs;
  }
}
