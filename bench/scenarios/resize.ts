/**
 * Resize under load: `--nodes` nodes (default 3) holding about 100,000 resident actors, hubs
 * streaming numbered reports and apps sending commands; one more node is added through the ops API
 * (POST /v1/admin/ring). Measures the time until every moved shard is served (GET
 * /v1/admin/cluster: handoffs not in flight, every node owning what it is assigned), throughput and
 * ack latency per 100 ms, and counts lost / duplicated reports (shadow versions) and commands
 * (command ids seen at the hubs).
 */
import {
  finishAfterChange,
  nodeIds,
  numberedLoadPlan,
  preloadResident,
  startLoadedCluster,
  startSteadyLoad,
} from '../harness/cluster-bench.ts';
import { ADMIN_TOKEN, call, waitSettled } from '../harness/node-api.ts';
import type { Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, round, target, timed, versus } from '../harness/scenario-kit.ts';
import { eventSeries } from '../harness/timeline.ts';

const RESIDENT_ACTORS = 100_000;
const RESIDENT_DEVICES = 198;
const TARGET_MS = 5_000;

export const resizeScenario: Scenario = {
  name: 'resize',
  description:
    'add a node to a cluster under load with ~100,000 resident actors: time until every moved shard is served, timeline, nothing lost or duplicated',
  async run(ctx: ScenarioContext) {
    const n = Math.max(1, ctx.nodes);
    const loadPlan = numberedLoadPlan(ctx);
    const { hubs, rate } = loadPlan;
    const resident = ctx.smoke ? 0 : RESIDENT_ACTORS;
    const ids = nodeIds('n', n);
    const joining = `n${n + 1}`;
    const cleanups = new Cleanups();
    try {
      const loaded = await startLoadedCluster(ctx, cleanups, 'resize', ids, loadPlan.workers);
      const { cluster, pool, admin, status: before } = loaded;
      const notes: string[] = [];
      if (resident > 0) notes.push(await preloadResident(ctx, cluster, pool, ids, before, resident, RESIDENT_DEVICES));
      // Started now, joined later: its start-up is not part of the measured change.
      await cluster.startNode(joining, { AUTO_JOIN: 'false' });

      const load = await startSteadyLoad(ctx, 'resize', loaded, ids, loadPlan);

      const changeAt = Date.now();
      const plan = await call<{ epoch: number; moving: number }>(
        admin,
        'POST',
        '/v1/admin/ring',
        { add: [{ id: joining, weight: 1 }] },
        ADMIN_TOKEN,
      );
      const after = await timed(ctx, 'resize: moving shards', 5, waitSettled(admin, [...ids, joining], 120_000, 50));
      const settledAt = Date.now();
      const handoffMs = settledAt - changeAt;
      ctx.log(`  ${n} → ${n + 1} nodes: ${plan.moving} of ${after.shardCount} shards moved, all served after ${handoffMs} ms`);
      const out = await finishAfterChange(ctx, load, loadPlan, {
        label: 'resize: load after the move',
        changeAt,
        settledAt,
        http: cluster.http([...ids, joining]),
        before: 'before the change',
        during: 'while shards move',
      });
      const { steady, during: moving } = out;
      const joined = after.nodes.find((x) => x.id === joining);
      return {
        scenario: 'resize',
        figures: [
          {
            name: `${n} → ${n + 1} nodes${resident ? `, ${resident.toLocaleString('en-US')} resident actors` : ''}: all moved shards served after`,
            value: handoffMs,
            unit: 'ms',
            ...target(handoffMs, '≤', TARGET_MS, 'ms'),
          },
          versus('acked reports/s while shards move', moving.perSec, 'reports/s', { name: 'before the change', value: steady.perSec }),
          versus('ack p99 while shards move', moving.latency.p99, 'ms', { name: 'before the change', value: steady.latency.p99 }),
          { name: 'shards moved', value: plan.moving, unit: 'shards' },
        ],
        latencies: out.latencies,
        series: [
          ...out.series,
          eventSeries(`POST /v1/admin/ring (add ${joining})`, load.since(changeAt)),
          eventSeries('every moved shard served', load.since(settledAt)),
        ],
        integrity: out.integrity,
        notes: [
          ...notes,
          `${plan.moving} of ${after.shardCount} shards moved to ${joining} (it owns ${joined?.shardsOwned ?? '?'}); load ${rate} reports/s from ${hubs} hubs spread over the first ${n} nodes`,
          `throughput before ${round(steady.perSec, 0)}/s, while moving ${round(moving.perSec, 0)}/s; ack p99 before ${steady.latency.p99} ms, while moving ${moving.latency.p99} ms`,
          ...out.notes,
        ],
      };
    } finally {
      await cleanups.run();
    }
  },
};
