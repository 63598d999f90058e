/**
 * Forwarding overhead: two hubs of one home on a cluster, at the same rate and at the same time
 * (warm-up and background work hit them alike) — one connected to the node that owns the home,
 * one to another node, whose reports are forwarded to the owner over the peer stream and acked
 * back. The difference of their ack latencies is what forwarding costs.
 */
import { nodeIds, ownerOf, startLoadedCluster } from '../harness/cluster-bench.ts';
import { LatencyRecorder } from '../harness/hdr.ts';
import type { HubSpec } from '../harness/load-protocol.ts';
import { call } from '../harness/node-api.ts';
import type { Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, given, round, timed, versus } from '../harness/scenario-kit.ts';

const HOME = 'fwd-home';
const DEVICES = 10;
const BATCH = 10;

export const forwardingScenario: Scenario = {
  name: 'forwarding',
  description:
    'forwarding overhead: ack latency of a hub on a node that does not own its home vs a hub of the same home on the owner, same rate, same time',
  async run(ctx: ScenarioContext) {
    const n = Math.max(2, given(ctx, 'nodes', 2));
    const rate = given(ctx, 'rate', ctx.smoke ? 200 : 2_000);
    const seconds = ctx.duration;
    const warmupMs = ctx.smoke ? 300 : 1_000;
    const ids = nodeIds('f', n);
    const cleanups = new Cleanups();
    try {
      // One load process per hub: neither hub's sends wait behind the other's.
      const { cluster, pool, admin, status } = await startLoadedCluster(ctx, cleanups, 'forwarding', ids, 2);
      const owner = ownerOf(status, HOME);
      const other = ids.find((id) => id !== owner)!;
      await call(admin, 'PUT', `/v1/homes/${HOME}`, { name: 'Forwarding bench home', timezone: 'UTC' });
      const specs: HubSpec[] = [];
      for (const [hubId, via] of [
        ['h-local', owner],
        ['h-forwarded', other],
      ] as const) {
        const { secret } = await call<{ secret: string }>(admin, 'POST', `/v1/homes/${HOME}/hubs`, { hubId });
        specs.push({ homeId: HOME, hubId, secret, addresses: cluster.grpc([via]), first: 0 });
      }
      await pool.all('ingest.connect', (i) => ({ hubs: [specs[i]!], devices: DEVICES, batch: BATCH }));
      const perHub = rate / 2;
      await pool.all('ingest.paced', () => ({ perHubPerSec: perHub, durationMs: warmupMs }));
      const r = await timed(
        ctx,
        'forwarding: a local and a forwarded hub',
        seconds,
        pool.all('ingest.paced', () => ({ perHubPerSec: perHub, durationMs: seconds * 1000 })),
      );
      await pool.all('ingest.close', () => ({}));
      const label = `${perHub.toLocaleString('en-US')} reports/s per hub`;
      const local = LatencyRecorder.decode(r[0]!.latency).summary(`report → ack, hub on the owner node (${label})`);
      const forwarded = LatencyRecorder.decode(r[1]!.latency).summary(`report → ack, hub on another node, forwarded (${label})`);
      const achieved = r.map((x) => round(x.acked / (x.elapsedMs / 1000), 0));
      const errors = r.reduce((a, x) => a + x.errors, 0);
      ctx.log(`  local ack p50 ${local.p50} ms p99 ${local.p99} ms | forwarded p50 ${forwarded.p50} ms p99 ${forwarded.p99} ms`);
      return {
        scenario: 'forwarding',
        figures: [
          versus('forwarding overhead, ack p50 (forwarded − local)', forwarded.p50 - local.p50, 'ms', undefined),
          versus('ack p50, hub on a node that does not own its home', forwarded.p50, 'ms', {
            name: 'hub of the same home on the owner',
            value: local.p50,
          }),
          versus('ack p99, hub on a node that does not own its home', forwarded.p99, 'ms', {
            name: 'hub of the same home on the owner',
            value: local.p99,
          }),
        ],
        latencies: [local, forwarded],
        notes: [
          `${n} nodes; home ${HOME} is owned by ${owner}; hub h-local connected to ${owner}, hub h-forwarded to ${other}; both at ${label} in batches of ${BATCH} (${DEVICES} devices), one load process each, ${warmupMs} ms warm-up then ${seconds} s measured at the same time`,
          `achieved ${achieved[0]} (local) and ${achieved[1]} (forwarded) reports/s${errors > 0 ? `; ${errors} errors from the nodes` : ''}`,
        ],
      };
    } finally {
      await cleanups.run();
    }
  },
};
