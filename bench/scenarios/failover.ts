/**
 * Failover under load: `--nodes` nodes (default 3), hubs streaming numbered reports to all of them
 * and apps sending commands; one node (the last: not the coordinator) is SIGKILLed. Its hubs
 * reconnect to the next node and re-send what was not acked; its shards are taken over once its
 * heartbeat expires. Measures the time until its homes are served again (the first ack covering a
 * report sent after the kill), until the ring settles, the timeline per 100 ms, and lost /
 * duplicated reports and commands.
 */
import { finishAfterChange, nodeIds, numberedLoadPlan, ownerOf, startLoadedCluster, startSteadyLoad } from '../harness/cluster-bench.ts';
import { waitSettled } from '../harness/node-api.ts';
import type { Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, round, timed, versus } from '../harness/scenario-kit.ts';
import { eventSeries } from '../harness/timeline.ts';

export const failoverScenario: Scenario = {
  name: 'failover',
  description: 'SIGKILL one node of a cluster under load: time until its homes are served again, timeline, nothing lost or duplicated',
  async run(ctx: ScenarioContext) {
    const n = Math.max(2, ctx.nodes);
    const loadPlan = numberedLoadPlan(ctx);
    const { hubs, rate } = loadPlan;
    const ids = nodeIds('k', n);
    const victim = ids.at(-1)!;
    const survivors = ids.slice(0, -1);
    const cleanups = new Cleanups();
    try {
      const loaded = await startLoadedCluster(ctx, cleanups, 'failover', ids, loadPlan.workers);
      const { cluster, admin, status: before } = loaded;
      const load = await startSteadyLoad(ctx, 'failover', loaded, ids, loadPlan);
      const specs = load.specs;
      const victimHomes = new Set(specs.filter((s) => ownerOf(before, s.homeId) === victim).map((s) => s.homeId));
      const onVictim = specs.filter((s) => s.first === ids.indexOf(victim)).length;

      const killAt = Date.now();
      await load.mark(killAt);
      cluster.node(victim).child.kill('SIGKILL');
      const after = await timed(ctx, 'failover: taking over', 10, waitSettled(admin, survivors, 120_000, 100));
      const settledAt = Date.now();
      const settledMs = settledAt - killAt;
      ctx.log(`  SIGKILL ${victim}: ring settled on ${survivors.join(', ')} after ${settledMs} ms`);
      const out = await finishAfterChange(ctx, load, loadPlan, {
        label: 'failover: load after the take-over',
        changeAt: killAt,
        settledAt,
        http: cluster.http(survivors),
        before: 'before the kill',
        during: 'during the take-over',
      });
      const served = out.hubs.map((h) => ({ home: h.homeId, ms: h.servedAfterMs[0] ?? null }));
      const never = served.filter((s) => s.ms === null).length;
      const worst = (list: typeof served): number => Math.max(0, ...list.map((s) => s.ms ?? Number.POSITIVE_INFINITY));
      const victimServed = worst(served.filter((s) => victimHomes.has(s.home)));
      const allServed = worst(served);
      const { steady, during } = out;
      const lastServedAt = killAt + (Number.isFinite(allServed) ? allServed : settledMs);
      return {
        scenario: 'failover',
        figures: [
          { name: `SIGKILL 1 of ${n} nodes: its homes served again after`, value: victimServed, unit: 'ms' },
          { name: 'every home served again after', value: allServed, unit: 'ms' },
          { name: 'ring settled on the survivors after', value: settledMs, unit: 'ms' },
          versus('acked reports/s during the take-over', during.perSec, 'reports/s', { name: 'before the kill', value: steady.perSec }),
        ],
        latencies: out.latencies,
        series: [
          ...out.series,
          eventSeries(`SIGKILL ${victim}`, load.since(killAt)),
          eventSeries('every home served again', load.since(lastServedAt)),
          eventSeries('ring settled', load.since(settledAt)),
        ],
        integrity: out.integrity,
        notes: [
          `${victimHomes.size} of ${hubs} homes were owned by ${victim}, ${onVictim} hubs were connected to it; load ${rate} reports/s`,
          `served again after the kill (ms), the victim's homes: ${
            served
              .filter((s) => victimHomes.has(s.home))
              .map((s) => s.ms ?? 'never')
              .join(', ') || 'none'
          }`,
          `${after.nodes.find((x) => x.id === victim)?.state ?? 'gone'} in the ring after the take-over; throughput before ${round(steady.perSec, 0)}/s, during ${round(during.perSec, 0)}/s`,
          ...(never > 0 ? [`${never} hubs were never served again before the run ended`] : []),
          ...out.notes,
        ],
      };
    } finally {
      await cleanups.run();
    }
  },
};
