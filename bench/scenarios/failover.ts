/**
 * Failover under load, several times in one run: `--nodes` nodes (default 3), hubs streaming
 * numbered reports to all of them and apps sending commands; `--kills` times (default 5, 1 in
 * smoke runs) a node is SIGKILLed — the oldest one but k1, the bench's stable admin entry point
 * (any live node takes a dead one out of the ring) — and once every home is served again and the ring has
 * settled on the survivors, a replacement node with a new id (started beforehand, AUTO_JOIN=false)
 * is added through the ops API and the ring settles again before the next kill. Hubs on a killed
 * node reconnect to the survivors and re-send what was not acked; new streams and app POSTs go to
 * the live nodes only, as behind a load balancer. Measures, per kill, the time from SIGKILL until
 * every home is served again (the first ack covering a report produced after the kill) and until
 * the ring settled, with p50 / p99 / max over the kills; lost / duplicated reports and commands over
 * the whole run; the timeline per 100 ms. And, in the same run on the same Redis (with a replica):
 * durable ingest with REDIS_WAIT_REPLICAS=1 next to 0.
 */
import { summarize } from '../harness/hdr.ts';
import { BenchCluster, finishAfterChange, nodeIds, numberedLoadPlan, ownerOf, startSteadyLoad } from '../harness/cluster-bench.ts';
import { LoadPool } from '../harness/load-client.ts';
import { ADMIN_TOKEN, call, clusterStatus, waitSettled } from '../harness/node-api.ts';
import { startRedisReplica } from '../harness/redis-replica.ts';
import type { Figure, Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, fmt, round, sleep, target, timed, versus } from '../harness/scenario-kit.ts';
import { eventSeries } from '../harness/timeline.ts';
import { WaitIngest, waitIngestPlan, type WaitIngestRun } from './support/wait-replicas-ingest.ts';

const TARGET_MS = 3_000;
/** How long a kill may take to be served again before the run gives up waiting and reports it. */
const SERVED_PATIENCE_MS = 60_000;

/** What one kill took. */
interface Kill {
  readonly victim: string;
  /** Load homes the victim owned when it was killed. */
  readonly homes: number;
  readonly killAt: number;
  /** Ms until every home was served again (the patience when one never was: see `unserved`). */
  readonly everyServedMs: number;
  /** Ms until the victim's own homes were served again (undefined: it owned none of the load's homes). */
  readonly ownServedMs: number | undefined;
  /** Per home, ms until served again. */
  readonly samples: readonly number[];
  readonly unserved: readonly string[];
  readonly settledMs: number;
  readonly settledAt: number;
  /** The replacement added after the kill, and ms from its POST until the ring settled with it. */
  readonly replacement?: { readonly id: string; readonly settledMs: number; readonly settledAt: number };
}

/** Wall time per phase of the run, for its notes (where the run's minutes go). */
class PhaseClock {
  private last = performance.now();
  private readonly laps: string[] = [];

  lap(name: string): void {
    const now = performance.now();
    this.laps.push(`${name} ${((now - this.last) / 1000).toFixed(1)} s`);
    this.last = now;
  }

  summary(): string {
    return this.laps.join(', ');
  }
}

/** The nearest-rank percentile (0..100) of `values`. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

/** POST /v1/admin/ring, retried while another change still moves shards (409) for up to 30 s. */
async function addNode(admin: string, id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await call(admin, 'POST', '/v1/admin/ring', { add: [{ id, weight: 1 }] }, ADMIN_TOKEN);
      return;
    } catch (err) {
      if (!String(err).includes(': 409') || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

function waitFigures(runs: readonly WaitIngestRun[], rate: number): Figure[] {
  const [off, on] = [runs.find((r) => r.waitReplicas === 0)!, runs.find((r) => r.waitReplicas === 1)!];
  return [
    versus('durable ingest with REDIS_WAIT_REPLICAS=1 (1 replica), window full', on.perSec, 'reports/s', {
      name: 'REDIS_WAIT_REPLICAS=0, same Redis and replica',
      value: off.perSec,
    }),
    versus(`ack p99 at ${fmt(rate)} reports/s with REDIS_WAIT_REPLICAS=1`, on.latency.p99, 'ms', {
      name: 'REDIS_WAIT_REPLICAS=0',
      value: off.latency.p99,
    }),
  ];
}

export const failoverScenario: Scenario = {
  name: 'failover',
  description:
    'SIGKILL nodes of a cluster under load one after another, each replaced by a new node: time until served again per kill (p50/p99/max), nothing lost or duplicated; ingest with REDIS_WAIT_REPLICAS=1 vs 0',
  async run(ctx: ScenarioContext) {
    const n = Math.max(2, ctx.nodes);
    // One kill in smoke runs: CI runs every scenario's smoke, and each kill costs the heartbeat TTL and more.
    const killCount = Math.max(1, ctx.kills ?? (ctx.smoke ? 1 : 5));
    const kills = `${killCount} kill${killCount === 1 ? '' : 's'}`;
    const loadPlan = numberedLoadPlan(ctx);
    const { hubs, rate } = loadPlan;
    const ids = nodeIds('k', n);
    // A replacement joins after every kill but the last: k{n+1}, k{n+2}, … (k1 is never killed: it is the bench's stable admin entry point).
    const spares = Array.from({ length: killCount - 1 }, (_, i) => `k${n + i + 1}`);
    const ingestPlan = waitIngestPlan(ctx);
    const cleanups = new Cleanups();
    try {
      // Everything starts at once (start-up is slow on a small machine; idle processes cost next to nothing):
      // the cluster, the load processes, the spares and, once the replica is in sync, the two ingest nodes.
      const phases = new PhaseClock();
      const cluster = await BenchCluster.start(cleanups, ctx.smoke ? 64 : 1024, 'failover');
      const replicaThenIngest = cleanups
        .track(startRedisReplica(cluster.redis.url), (r) => r.stop())
        .then(async (replica) => ({
          replica,
          ingest: await WaitIngest.start(cleanups, cluster.redis.url, `${cluster.redis.cluster}failover`, ingestPlan, ctx.smoke ? 64 : 256),
        }));
      const [pool, { replica, ingest }] = await Promise.all([
        cleanups.track(LoadPool.start(loadPlan.workers), (p) => p.stop()),
        replicaThenIngest,
        ...[...ids, ...spares].map((id) => cluster.startNode(id, spares.includes(id) ? { AUTO_JOIN: 'false' } : {})),
      ]);
      const admin = cluster.http([ids[0]!])[0]!;
      const loaded = { cluster, pool, admin, status: await waitSettled(admin, ids) };
      phases.lap(`start-up (${ids.length + spares.length} nodes, 2 ingest nodes, Redis replica, ${pool.size} load processes)`);
      const waitRuns = await ingest.measure(ctx, pool);
      phases.lap('ingest with REDIS_WAIT_REPLICAS 0 and 1');

      const load = await startSteadyLoad(ctx, 'failover', loaded, ids, loadPlan);
      phases.lap('provisioning and steady load');
      const done: Kill[] = [];
      let live = [...ids];
      const pauseMs = ctx.smoke ? 200 : Math.min(2_000, loadPlan.seconds * 1000);
      for (let k = 0; k < killCount; k++) {
        const ring = await clusterStatus(admin);
        const entry = [...live].sort()[0]!;
        const victim = live.find((id) => id !== entry)!;
        const survivors = live.filter((id) => id !== victim);
        const victimHomes = new Set(load.specs.filter((s) => ownerOf(ring, s.homeId) === victim).map((s) => s.homeId));

        const killAt = Date.now();
        await load.mark(killAt);
        cluster.node(victim).child.kill('SIGKILL');
        // As a load balancer does once its health check fails: new streams and POSTs go to the survivors.
        await load.retarget(cluster.grpc(survivors), cluster.http(survivors));
        const served = await timed(ctx, `failover: kill ${k + 1} of ${killCount} (${victim})`, 3, waitServed(load, k));
        await waitSettled(admin, survivors, 120_000, 100);
        const settledAt = Date.now();
        const own = served.hubs.filter((h) => victimHomes.has(h.homeId)).map((h) => h.ms);
        const kill: Kill = {
          victim,
          homes: victimHomes.size,
          killAt,
          everyServedMs: Math.max(0, ...served.hubs.map((h) => h.ms)),
          ownServedMs: own.length > 0 ? Math.max(...own) : undefined,
          samples: served.hubs.map((h) => h.ms),
          unserved: served.unserved,
          settledMs: settledAt - killAt,
          settledAt,
        };
        live = survivors;
        let replacement: Kill['replacement'];
        if (k < killCount - 1) {
          const id = spares[k]!;
          const postedAt = Date.now();
          await addNode(admin, id);
          await waitSettled(admin, [...survivors, id], 120_000, 100);
          const joinedAt = Date.now();
          replacement = { id, settledMs: joinedAt - postedAt, settledAt: joinedAt };
          live = [...survivors, id];
          await load.retarget(cluster.grpc(live), cluster.http(live));
          await sleep(pauseMs); // a steady moment before the next kill
        }
        done.push({ ...kill, ...(replacement ? { replacement } : {}) });
        ctx.log(
          `  kill ${k + 1}/${killCount}: SIGKILL ${victim} (owned ${victimHomes.size} of ${hubs} homes): every home served after ${kill.everyServedMs} ms` +
            `${kill.ownServedMs === undefined ? '' : `, its own after ${kill.ownServedMs} ms`}, ring settled on ${survivors.join(', ')} after ${kill.settledMs} ms` +
            `${replacement ? `; ${replacement.id} added, settled after ${replacement.settledMs} ms` : ''}`,
        );
      }

      phases.lap(kills);
      const first = done[0]!;
      const last = done.at(-1)!;
      const out = await finishAfterChange(ctx, load, loadPlan, {
        label: 'failover: load after the last kill',
        changeAt: first.killAt,
        settledAt: last.settledAt,
        http: cluster.http(live),
        before: 'before the first kill',
        during: 'from the first kill to the last take-over',
      });
      phases.lap('load after the last kill, integrity check');
      const served = done.map((d) => d.everyServedMs);
      const settled = done.map((d) => d.settledMs);
      const joins = done.flatMap((d) => (d.replacement ? [d.replacement.settledMs] : []));
      const p99 = percentile(served, 99);
      const unserved = done.flatMap((d) => d.unserved);
      const { steady, during } = out;
      return {
        scenario: 'failover',
        figures: [
          {
            name: `SIGKILL → every home served again, p50 over ${kills} (${n} nodes)`,
            value: percentile(served, 50),
            unit: 'ms',
          },
          {
            name: `SIGKILL → every home served again, p99 over ${kills}`,
            value: p99,
            unit: 'ms',
            ...target(p99, '≤', TARGET_MS, 'ms'),
          },
          { name: `SIGKILL → every home served again, max over ${kills}`, value: Math.max(...served), unit: 'ms' },
          { name: 'SIGKILL → ring settled on the survivors, p50', value: percentile(settled, 50), unit: 'ms' },
          { name: 'SIGKILL → ring settled on the survivors, max', value: Math.max(...settled), unit: 'ms' },
          ...(joins.length > 0 ? [{ name: 'replacement added → ring settled, p50', value: percentile(joins, 50), unit: 'ms' }] : []),
          versus('acked reports/s from the first kill to the last take-over', during.perSec, 'reports/s', {
            name: 'before the first kill',
            value: steady.perSec,
          }),
          ...waitFigures(waitRuns, ingestPlan.rate),
        ].map((f) => ({ ...f, value: round(f.value) })),
        latencies: [
          ...out.latencies,
          summarize(
            `SIGKILL → served again, per home and kill (${kills} × ${hubs} homes)`,
            done.flatMap((d) => d.samples),
          ),
          ...waitRuns.map((r) => r.latency),
        ],
        series: [
          ...out.series,
          ...done.flatMap((d) => [
            eventSeries(`SIGKILL ${d.victim}`, load.since(d.killAt)),
            eventSeries(`ring settled without ${d.victim}`, load.since(d.settledAt)),
            ...(d.replacement ? [eventSeries(`${d.replacement.id} joined`, load.since(d.replacement.settledAt))] : []),
          ]),
        ],
        integrity: out.integrity,
        notes: [
          `${kills} of 1 of ${n} nodes each (the oldest but k1, the bench's entry point), each but the last followed by a new node added through POST /v1/admin/ring; load ${rate} reports/s from ${hubs} hubs, apps sending commands`,
          ...done.map(
            (d, i) =>
              `kill ${i + 1}: ${d.victim} owned ${d.homes} of ${hubs} homes; every home served after ${d.everyServedMs} ms` +
              `${d.ownServedMs === undefined ? '' : ` (its own after ${d.ownServedMs} ms)`}, ring settled after ${d.settledMs} ms` +
              `${d.replacement ? `; ${d.replacement.id} added, settled after ${d.replacement.settledMs} ms` : ''}`,
          ),
          ...(unserved.length > 0
            ? [
                `never served again within ${SERVED_PATIENCE_MS} ms of their kill (counted as ${SERVED_PATIENCE_MS} ms): ${unserved.join(', ')}`,
              ]
            : []),
          `throughput before the first kill ${round(steady.perSec, 0)}/s, from the first kill to the last take-over ${round(during.perSec, 0)}/s`,
          `ingest: ${ingestPlan.hubs} hubs × 10 devices, batches of 50, window ${ingest.window} per hub, ${ingestPlan.seconds} s per phase, one node per setting on the same Redis (appendfsync always) with one replica (${replica.url}); ` +
            waitRuns
              .map(
                (r) =>
                  `REDIS_WAIT_REPLICAS=${r.waitReplicas}: ${fmt(r.waitCalls)} WAIT calls on the master, ${r.errors} errors, paced phase achieved ${fmt(r.achieved)}/s`,
              )
              .join('; '),
          ...(waitRuns.find((r) => r.waitReplicas === 1)?.waitCalls === 0
            ? [
                'the node with REDIS_WAIT_REPLICAS=1 issued no WAIT: the two ingest runs measured the same thing (the node does not apply the setting)',
              ]
            : []),
          'the Redis replica stays attached through the kills: every write of the cluster replicates too',
          `wall time: ${phases.summary()}`,
          ...out.notes,
        ],
      };
    } finally {
      await cleanups.run();
    }
  },
};

/** Polls the load until every hub is served again after mark `mark`, for up to SERVED_PATIENCE_MS. */
async function waitServed(
  load: { served(mark: number): Promise<{ homeId: string; servedAfterMs: number | null }[]> },
  mark: number,
): Promise<{ hubs: { homeId: string; ms: number }[]; unserved: string[] }> {
  const deadline = Date.now() + SERVED_PATIENCE_MS;
  for (;;) {
    const hubs = await load.served(mark);
    const waiting = hubs.filter((h) => h.servedAfterMs === null);
    if (waiting.length === 0 || Date.now() > deadline)
      return {
        hubs: hubs.map((h) => ({ homeId: h.homeId, ms: h.servedAfterMs ?? SERVED_PATIENCE_MS })),
        unserved: waiting.map((h) => `${h.homeId} (kill ${mark + 1})`),
      };
    await sleep(50);
  }
}
