/**
 * Report → rule → command at the hub, end to end, at fixed total rates: realistic homes (tools/hub-sim
 * devices, the simulator's "hall light on motion when dark" rule) on one node with the Redis
 * store. Each hub reports motion now and then and times until the rule's light command arrives on
 * its stream; its other reports (climate, plug, door, light level) fill the rate. Storm control
 * allows a home about one firing per 2 s for good (30 commands per minute, ≤ 10 firings per 10 s),
 * so the triggers per home are paced below that and the number of homes sets the sample count.
 */
import { simRule } from '../../tools/hub-sim/sim-home.ts';
import { startNodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';
import { LatencyRecorder } from '../harness/hdr.ts';
import { cpuStopwatch } from '../harness/process-cpu.ts';
import { LoadPool } from '../harness/load-client.ts';
import { ADMIN_TOKEN, grpcAddress, httpBase, LIFTED_LIMITS, provisionHomes } from '../harness/node-api.ts';
import type { Figure, LatencySummary, Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, given, round, target, timed } from '../harness/scenario-kit.ts';

const TARGET_RATE = 20_000;
const TARGET_P99_MS = 10;
/** Node CPU (user + system) per acked report with small batches. */
const TARGET_CPU_US = 50;

/** Motion triggers per home per second that storm control lets through for a run of `seconds`, with a margin. */
export function triggerRate(seconds: number, perHubPerSec: number): number {
  const budget = 0.8 * (30 / seconds + 0.5); // 30 tokens up front, 0.5/s refill
  const retrigger = 0.8; // more than 10 firings in 10 s suspends the rule
  const share = 0.125 * perHubPerSec; // motion on/off reports: at most a quarter of the home's reports
  return Math.max(0.05, Math.min(budget, retrigger, share));
}

export const latencyScenario: Scenario = {
  name: 'latency',
  description: 'report → rule → command at the hub, HDR percentiles at fixed total rates (Redis store, realistic homes)',
  async run(ctx: ScenarioContext) {
    const homes = given(ctx, 'hubs', ctx.smoke ? 2 : 200);
    const rates = ctx.explicit === undefined || ctx.explicit.has('rate') ? [ctx.rate] : ctx.smoke ? [200] : [1_000, 5_000, 20_000];
    const seconds = ctx.duration;
    const warmupMs = ctx.smoke ? 300 : 1_000;
    const cleanups = new Cleanups();
    try {
      const redis = await startTestRedis();
      cleanups.add(() => redis.stop());
      const [node, pool] = await Promise.all([
        cleanups.track(
          startNodeProcess({
            ADMIN_TOKEN,
            ...LIFTED_LIMITS,
            NODE_ID: 'bench-latency',
            REDIS_URL: redis.url,
            CLUSTER: `${redis.cluster}lat`,
            LOG_LEVEL: 'warn',
            SHARDS: ctx.smoke ? '64' : '1024',
          }),
          (n) => n.stop('SIGKILL'),
        ),
        cleanups.track(LoadPool.start(ctx.smoke ? 1 : Math.min(2, homes)), (p) => p.stop()),
      ]);

      const bar = ctx.progress('latency: provisioning homes', homes);
      const specs = await provisionHomes({
        http: [httpBase(node)],
        grpc: [grpcAddress(node)],
        homeIds: Array.from({ length: homes }, (_, i) => `lat-${i}`),
        rule: simRule,
        onProgress: (n) => bar.update(n),
      });
      bar.stop();
      await pool.all('sim.connect', (i) => ({ hubs: pool.share(specs, i), seed: 42 + i }));

      const total = rates.length * (seconds + warmupMs / 1000) + 2;
      const figures: Figure[] = [];
      const latencies: LatencySummary[] = [];
      const notes: string[] = [`${homes} homes (5 devices, 1 rule each) on one node with the Redis store; load in ${pool.size} processes`];
      for (const rate of rates) {
        const perHub = rate / homes;
        const every = 1000 / triggerRate(total, perHub);
        await pool.all('sim.run', () => ({ perHubPerSec: perHub, durationMs: warmupMs, motionEveryMs: every, record: false }));
        const cpu = cpuStopwatch(node.child.pid);
        const r = await timed(
          ctx,
          `latency at ${rate}/s`,
          seconds,
          pool.all('sim.run', () => ({ perHubPerSec: perHub, durationMs: seconds * 1000, motionEveryMs: every, record: true })),
        );
        const label = `${rate.toLocaleString('en-US')} reports/s`;
        const command = LatencyRecorder.merge(r.map((x) => x.commandLatency)).summary(`report → rule → command at hub, ${label}`);
        const ack = LatencyRecorder.merge(r.map((x) => x.ackLatency)).summary(`report → ack at hub, ${label}`);
        const achieved = r.reduce((a, x) => a + x.acked / (x.elapsedMs / 1000), 0);
        const missed = r.reduce((a, x) => a + x.missed, 0);
        const cpuSeconds = cpu.stop();
        const acked = r.reduce((a, x) => a + x.acked, 0);
        const cpuPerReport = cpuSeconds === undefined || acked === 0 ? undefined : round((cpuSeconds / acked) * 1e6, 1);
        latencies.push(command, ack);
        const isTarget = rate === TARGET_RATE;
        figures.push({
          name: `report → rule → command p99 at ${label}`,
          value: command.p99,
          unit: 'ms',
          ...(isTarget ? target(command.p99, '≤', TARGET_P99_MS, 'ms') : {}),
        });
        figures.push({ name: `achieved rate at ${label}`, value: round(achieved, 0), unit: 'reports/s' });
        if (cpuPerReport !== undefined) {
          figures.push({
            name: `node CPU per report at ${label} (small batches)`,
            value: cpuPerReport,
            unit: 'µs',
            ...target(cpuPerReport, '≤', TARGET_CPU_US, 'µs'),
          });
        }
        notes.push(
          `${label}: achieved ${Math.round(achieved)} reports/s; ${command.count} commands timed (a motion trigger per home every ${Math.round(every)} ms); ` +
            `command p50 ${command.p50} p99 ${command.p99} p99.9 ${command.p999} max ${command.max} ms; ack p99 ${ack.p99} ms; node CPU ${cpuPerReport ?? '?'} µs per report${missed > 0 ? `; ${missed} triggers got no command within 2 s` : ''}`,
        );
        ctx.log(
          `  ${label}: command p50 ${command.p50} ms p99 ${command.p99} ms (n=${command.count}), ack p99 ${ack.p99} ms, achieved ${Math.round(achieved)}/s, node CPU ${cpuPerReport ?? '?'} µs/report${missed ? `, ${missed} missed` : ''}`,
        );
      }
      await pool.all('sim.close', () => ({}));
      return { scenario: 'latency', figures, latencies, notes };
    } finally {
      await cleanups.run();
    }
  },
};
