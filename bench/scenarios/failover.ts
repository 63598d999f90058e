/**
 * Failover under load: `--nodes` nodes (default 3), hubs streaming numbered reports to all of them
 * and apps sending commands; one node (the last: not the coordinator) is SIGKILLed. Its hubs
 * reconnect to the next node and re-send what was not acked; its shards are taken over once its
 * heartbeat expires. Measures the time until its homes are served again (the first ack covering a
 * report sent after the kill), until the ring settles, the timeline per 100 ms, and lost /
 * duplicated reports and commands.
 */
import { NumberedLoad, ownerOf, startLoadedCluster, window } from '../harness/cluster-bench.ts';
import { provisionHomes, waitSettled } from '../harness/node-api.ts';
import type { Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, given, round, sleep, timed, versus } from '../harness/scenario-kit.ts';
import { eventSeries } from '../harness/timeline.ts';

export const failoverScenario: Scenario = {
  name: 'failover',
  description: 'SIGKILL one node of a cluster under load: time until its homes are served again, timeline, nothing lost or duplicated',
  async run(ctx: ScenarioContext) {
    const n = Math.max(2, ctx.nodes);
    const hubs = given(ctx, 'hubs', ctx.smoke ? 3 : 30);
    const rate = given(ctx, 'rate', ctx.smoke ? 150 : 2_000);
    const seconds = ctx.duration;
    const ids = Array.from({ length: n }, (_, i) => `k${i + 1}`);
    const victim = ids.at(-1)!;
    const survivors = ids.slice(0, -1);
    const cleanups = new Cleanups();
    try {
      const {
        cluster,
        pool,
        admin,
        status: before,
      } = await startLoadedCluster(ctx, cleanups, 'failover', ids, ctx.smoke ? 1 : Math.min(2, hubs));

      const specs = await provisionHomes({
        http: cluster.http(ids),
        grpc: cluster.grpc(ids),
        homeIds: Array.from({ length: hubs }, (_, i) => `load-${i}`),
        tokens: true,
      });
      const victimHomes = new Set(specs.filter((s) => ownerOf(before, s.homeId) === victim).map((s) => s.homeId));
      const onVictim = specs.filter((s) => s.first === ids.indexOf(victim)).length;
      const load = await NumberedLoad.start(pool, specs, { rate, http: cluster.http(ids), commandsPerSec: ctx.smoke ? 5 : 10 });
      await timed(ctx, 'failover: steady load', seconds, sleep(seconds * 1000));

      const killAt = Date.now();
      await load.mark(killAt);
      cluster.node(victim).child.kill('SIGKILL');
      const after = await timed(ctx, 'failover: taking over', 10, waitSettled(admin, survivors, 120_000, 100));
      const settledAt = Date.now();
      const settledMs = settledAt - killAt;
      ctx.log(`  SIGKILL ${victim}: ring settled on ${survivors.join(', ')} after ${settledMs} ms`);
      await timed(ctx, 'failover: load after the take-over', seconds, sleep(seconds * 1000));

      const out = await load.finish(ctx.smoke ? 3_000 : 10_000, cluster.http(survivors));
      const served = out.hubs.map((h) => ({ home: h.homeId, ms: h.servedAfterMs[0] ?? null }));
      const never = served.filter((s) => s.ms === null).length;
      const worst = (list: typeof served): number => Math.max(0, ...list.map((s) => s.ms ?? Number.POSITIVE_INFINITY));
      const victimServed = worst(served.filter((s) => victimHomes.has(s.home)));
      const allServed = worst(served);
      const steady = window(out.buckets, Math.max(0, load.since(killAt) - seconds), load.since(killAt));
      const during = window(out.buckets, load.since(killAt), load.since(settledAt) + 0.1);
      const lastServedAt = killAt + (Number.isFinite(allServed) ? allServed : settledMs);
      return {
        scenario: 'failover',
        figures: [
          { name: `SIGKILL 1 of ${n} nodes: its homes served again after`, value: victimServed, unit: 'ms' },
          { name: 'every home served again after', value: allServed, unit: 'ms' },
          { name: 'ring settled on the survivors after', value: settledMs, unit: 'ms' },
          versus('acked reports/s during the take-over', during.perSec, 'reports/s', { name: 'before the kill', value: steady.perSec }),
        ],
        latencies: [steady.latency, during.latency, out.latency].map((l, i) => ({
          ...l,
          name: ['ack latency before the kill', 'ack latency during the take-over', 'ack latency, whole run'][i]!,
        })),
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
