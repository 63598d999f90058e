/**
 * Timers: durable reminders at scale on one node (Redis store, compiled build, real processes).
 * N homes (default 10,000) with ten schedule rules each hold 10·N pending reminders:
 *  1. memory per pending reminder in the node, heap after forced GCs read through the node's
 *     inspector: a node restarted with them vs a fresh node without them, and the same node before
 *     and after the rules were put (homes passivated) — next to a bare ReminderScheduler holding the
 *     same members in a process of its own;
 *  2. loading a shard's reminders at takeover: `RedisStore.loadReminders` timed per shard against
 *     the node's Redis (next to a raw ZRANGE of the same index), and the node SIGKILLed and
 *     restarted under the same id until every reminder is scheduled again;
 *  3. firing lateness: one rule per home becomes a cron every P seconds (10 s: N/10 firings a
 *     second) commanding the light of the home's hub; each hub times the command against the cron
 *     boundary it answers (HDR), next to a bare ReminderScheduler given the same due times. */
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';
import { LatencyRecorder } from '../harness/hdr.ts';
import type { HubSpec } from '../harness/load-protocol.ts';
import { ADMIN_TOKEN, call, grpcAddress, httpBase, LIFTED_LIMITS, mapLimit, provisionHomes, waitSettled } from '../harness/node-api.ts';
import type { Figure, LatencySummary, Scenario, ScenarioContext, ScenarioResult } from '../harness/scenario.ts';
import { Cleanups, figure, fmt, given, round, sleep } from '../harness/scenario-kit.ts';
import { MEMORY_NODE_ARGS, runWorker } from '../harness/worker-process.ts';
import { INSPECTABLE_NODE_ARGS, metricSum, sampleNodeHeap, scrapeMetrics, waitForMetrics } from './support/node-probe.ts';
import type {
  ReminderLoadInput,
  ReminderLoadOutput,
  SchedulerFireInput,
  SchedulerFireOutput,
  SchedulerMemoryInput,
  SchedulerMemoryOutput,
} from './support/reminder-worker.ts';
import { TimerHubPool } from './support/timer-hub-pool.ts';
import type { TimerHubSpec } from './support/timer-hub-worker.ts';
import { cronRule, farRule, RULES_PER_HOME } from './support/timer-rules.ts';

const REMINDER_WORKER = 'bench/scenarios/support/reminder-worker.ts';
const TARGET_P99_MS = 50;
const TARGET_BYTES = 200;
/** Homes per hub process. */
const HOMES_PER_PROCESS = 2_500;

export interface TimersScenarioOptions {
  /** Homes (each one hub, ten schedule rules). Default `--hubs` if given, else 10,000 (smoke 20). */
  readonly homes?: number;
  /** Seconds between a home's cron firings in the lateness phase (a divisor of 60). Default 10 (smoke 2). */
  readonly periodS?: number;
  /** Idle ms before the first node passivates an actor, so the memory samples hold no home. Default 2,000 (smoke 500). */
  readonly passivateMs?: number;
}

/** Polls until the node's resident actors stop falling (every home passivated); resolves the count. */
async function waitPassivated(node: NodeProcess, passivateMs: number): Promise<number> {
  let last = Infinity;
  let steady = 0;
  const deadline = performance.now() + 20 * passivateMs + 120_000;
  for (;;) {
    const resident = metricSum(await scrapeMetrics(node), 'iot_actor_resident');
    if (resident === 0) return 0;
    steady = resident >= last ? steady + 1 : 0;
    last = Math.min(last, resident);
    if (steady >= 3 || performance.now() > deadline) return resident;
    await sleep(passivateMs);
  }
}

export function createTimersScenario(options: TimersScenarioOptions = {}): Scenario {
  return {
    name: 'timers',
    description:
      'Durable reminders: memory per pending reminder, loading a shard’s reminders at takeover, firing lateness due → command at the hub (Redis store)',
    async run(ctx: ScenarioContext): Promise<ScenarioResult> {
      const homes = options.homes ?? given(ctx, 'hubs', ctx.smoke ? 20 : 10_000);
      const periodS = options.periodS ?? (ctx.smoke ? 2 : 10);
      const periodMs = periodS * 1000;
      const periods = Math.max(1, Math.round(given(ctx, 'duration', ctx.smoke ? periodS : 60) / periodS));
      const passivateMs = options.passivateMs ?? (ctx.smoke ? 500 : 2_000);
      const shards = ctx.smoke ? 64 : 1024;
      const expected = homes * RULES_PER_HOME;
      const cleanups = new Cleanups();
      try {
        const redis = await startTestRedis();
        cleanups.add(() => redis.stop());
        const cluster = `${redis.cluster}tm`;
        const env = {
          ADMIN_TOKEN,
          ...LIFTED_LIMITS,
          NODE_ID: 'bench-timers',
          REDIS_URL: redis.url,
          CLUSTER: cluster,
          LOG_LEVEL: 'warn',
          SHARDS: String(shards),
        };
        // Homes and hubs, and a few warm-up homes with their rules (the rules' code paths run before any sample).
        const node0 = await cleanups.track(startNodeProcess(env, 60_000), (n) => n.stop('SIGKILL'));
        const warmHomes = Math.max(5, Math.ceil(homes / 100));
        const bar = ctx.progress('timers: provisioning homes', homes + warmHomes);
        const provisioned = await provisionHomes({
          http: [httpBase(node0)],
          grpc: [grpcAddress(node0)],
          homeIds: [...Array.from({ length: homes }, (_, i) => `tm-${i}`), ...Array.from({ length: warmHomes }, (_, i) => `tm-warm-${i}`)],
          tokens: true,
          onProgress: (n) => bar.update(n),
        });
        bar.stop();
        const specs = provisioned.slice(0, homes);
        const warm = provisioned.slice(homes);
        const put = (
          node: NodeProcess,
          homesToPut: readonly HubSpec[],
          rules: (i: number) => Record<string, unknown>[],
          label: string,
        ): Promise<unknown> => {
          const jobs = homesToPut.flatMap((s, i) => rules(i).map((rule) => ({ s, rule })));
          const b = ctx.progress(label, jobs.length);
          let done = 0;
          return mapLimit(jobs, 32, async ({ s, rule }) => {
            await call(httpBase(node), 'PUT', `/v1/homes/${s.homeId}/rules/${String(rule.id)}`, rule, s.appToken);
            b.update(++done);
          }).finally(() => b.stop());
        };
        const farRules = (): Record<string, unknown>[] => Array.from({ length: RULES_PER_HOME }, (_, k) => farRule(k));
        const warmPending = warmHomes * RULES_PER_HOME;
        const total = expected + warmPending;
        const pendingOf = async (node: NodeProcess): Promise<number> => metricSum(await scrapeMetrics(node), 'iot_reminders_pending');
        /** A node started afresh (inspectable), once it serves every shard and has scheduled `pending` reminders. */
        const fresh = async (
          pending: number,
          extra: Record<string, string> = {},
        ): Promise<{ node: NodeProcess; startedMs: number; loadedMs: number }> => {
          const t0 = performance.now();
          const node = await cleanups.track(startNodeProcess({ ...env, ...extra }, 60_000, { nodeArgs: INSPECTABLE_NODE_ARGS }), (n) =>
            n.stop('SIGKILL'),
          );
          const startedMs = performance.now() - t0;
          await waitForMetrics(
            node,
            (t) => metricSum(t, 'iot_reminders_pending') >= pending,
            `${pending} reminders scheduled`,
            300_000,
            20,
          );
          const loadedMs = performance.now() - t0;
          await waitSettled(httpBase(node), [node.nodeId], 120_000);
          return { node, startedMs, loadedMs };
        };
        await put(node0, warm, farRules, 'timers: warm-up rules');
        await node0.stop('SIGKILL');

        // 1a. Memory, fresh nodes: a node holding only the warm-up reminders, then (after the rules are put) a node holding all.
        const { node: node1 } = await fresh(warmPending, { PASSIVATE_AFTER_MS: String(passivateMs) });
        const freshBefore = await sampleNodeHeap(node1);
        const freshPendingBefore = await pendingOf(node1);

        // 1b. Memory, live: the same node before and after the rules are put, every home passivated in both samples.
        await put(node1, warm, farRules, 'timers: warm-up rules again');
        const residentBefore = await waitPassivated(node1, passivateMs);
        const pendingBefore = await pendingOf(node1);
        const before = await sampleNodeHeap(node1);
        await put(node1, specs, farRules, 'timers: far-future rules');
        await waitForMetrics(node1, (t) => metricSum(t, 'iot_reminders_pending') >= total, `${total} pending reminders`, 120_000);
        const residentAfter = await waitPassivated(node1, passivateMs);
        const after = await sampleNodeHeap(node1);
        const pending = (await pendingOf(node1)) - pendingBefore;
        const heapPer = (after.heapUsed - before.heapUsed) / pending;
        const rssPer = (after.rss - before.rss) / pending;
        const bare = await runWorker<SchedulerMemoryOutput>(
          REMINDER_WORKER,
          { mode: 'memory', homeIds: specs.map((s) => s.homeId), rulesPerHome: RULES_PER_HOME, shards } satisfies SchedulerMemoryInput,
          { timeoutMs: 300_000, nodeArgs: MEMORY_NODE_ARGS },
        );

        // 2. Takeover: every shard's index read as a node taking it over reads it, then a real restart.
        const load = await runWorker<ReminderLoadOutput>(
          REMINDER_WORKER,
          { mode: 'load', redisUrl: redis.url, cluster, shards } satisfies ReminderLoadInput,
          { timeoutMs: 600_000 },
        );
        const storeLoad = LatencyRecorder.decode(load.storeHistogram).summary(`loadReminders per shard (${shards} shards)`);
        const rawLoad = LatencyRecorder.decode(load.rawHistogram).summary('raw ZRANGE WITHSCORES per shard');
        const per1000 = load.reminders > 0 ? (load.storeTotalMs / load.reminders) * 1000 : NaN;
        const rawPer1000 = load.reminders > 0 ? (load.rawTotalMs / load.reminders) * 1000 : NaN;
        await node1.stop('SIGKILL');
        const { node: second, startedMs, loadedMs: restartMs } = await fresh(total);
        const loadedText = await scrapeMetrics(second);
        const freshAfter = await sampleNodeHeap(second);
        const freshPending = (await pendingOf(second)) - freshPendingBefore;
        const freshHeapPer = (freshAfter.heapUsed - freshBefore.heapUsed) / freshPending;
        ctx.log(
          `  memory: ${fmt(pending)} pending reminders, heap per reminder: ${round(freshHeapPer)} B restarted node vs fresh node without them, ${round(heapPer)} B live (RSS ${round(rssPer)} B, resident actors ${residentBefore} → ${residentAfter}); bare ReminderScheduler ${round(bare.heapPerReminder)} B`,
        );
        const inNodeCount = metricSum(loadedText, 'iot_reminders_load_seconds_count');
        const inNodeMeanMs = inNodeCount > 0 ? (metricSum(loadedText, 'iot_reminders_load_seconds_sum') / inNodeCount) * 1000 : NaN;
        ctx.log(
          `  takeover: loadReminders per shard p50 ${storeLoad.p50} p99 ${storeLoad.p99} ms (raw ZRANGE p99 ${rawLoad.p99} ms), ${round(per1000)} ms per 1,000 reminders; restart → all ${fmt(total)} scheduled ${fmt(restartMs)} ms (process up after ${fmt(startedMs)} ms)`,
        );

        // 3. Lateness: hubs connected, then rule 0 of every home becomes the cron.
        const pool = await cleanups.track(TimerHubPool.start(Math.ceil(homes / HOMES_PER_PROCESS)), (p) => p.stop());
        const hubs: TimerHubSpec[] = specs.map((s, index) => ({ ...s, addresses: [grpcAddress(second)], first: 0, index }));
        await pool.all('connect', (i) => ({ hubs: pool.share(hubs, i), periodS, concurrency: 200 }));
        await put(second, specs, (i) => [cronRule(i, periodS)], 'timers: cron rules');
        const firedBefore = metricSum(await scrapeMetrics(second), 'iot_reminders_fired_total');
        // One whole period (and at least 3 s, for the baseline's process to start) after the last rule was put, so every home fires in every recorded period.
        const from = Math.ceil((Date.now() + Math.max(periodMs, 3_000)) / periodMs) * periodMs;
        const to = from + periods * periodMs;
        const graceMs = Math.min(5_000, periodMs - 500);
        const bar3 = ctx.progress(`timers: lateness at ${fmt(homes / periodS)} firings/s`, Math.ceil((to + graceMs - Date.now()) / 250));
        const ticker = setInterval(() => bar3.update(Math.max(0, Math.ceil((Date.now() - from) / 250))), 250);
        // The bare scheduler times the same due times in a process of its own, under the same machine load.
        const bareFiring = runWorker<SchedulerFireOutput>(
          REMINDER_WORKER,
          { mode: 'fire', homes, periodS, from, to } satisfies SchedulerFireInput,
          { timeoutMs: to + 60_000 - Date.now() },
        );
        const [recorded, bareFired] = await Promise.all([pool.all('record', () => ({ from, to, graceMs })), bareFiring]).finally(() => {
          clearInterval(ticker);
          bar3.stop();
        });
        const endText = await scrapeMetrics(second);
        await pool.all('close', () => ({}));
        const lateness = LatencyRecorder.merge(recorded.map((r) => r.lateness)).summary(
          `firing lateness: cron due → command at the hub (${fmt(homes / periodS)} firings/s)`,
        );
        const floor = LatencyRecorder.merge(recorded.map((r) => r.timerFloor)).summary('a setTimeout in the hub processes (every 10 ms)');
        const bareLateness = LatencyRecorder.decode(bareFired.lateness).summary(
          'the same due times in a bare ReminderScheduler (own process)',
        );
        const received = recorded.reduce((a, r) => a + r.received, 0);
        const missing = recorded.reduce((a, r) => a + r.missing, 0);
        const doubled = recorded.reduce((a, r) => a + r.doubled, 0);
        const ended = recorded.reduce((a, r) => a + r.ended, 0);
        const windowS = (to - from) / 1000;
        const rate = (received - doubled) / windowS;
        const pendingWhileFiring = metricSum(endText, 'iot_reminders_pending');
        ctx.log(
          `  lateness: p50 ${lateness.p50} p99 ${lateness.p99} max ${lateness.max} ms over ${fmt(lateness.count)} firings (${round(rate)}/s); bare scheduler p50 ${bareLateness.p50} p99 ${bareLateness.p99} ms, hub process timer p99 ${floor.p99} ms${missing + doubled > 0 ? `; ${missing} missing, ${doubled} doubled` : ''}`,
        );

        const figures: Figure[] = [
          figure({
            name: 'memory per pending reminder in the node, heap (a restarted node holding them vs a fresh node without)',
            value: freshHeapPer,
            unit: 'bytes',
            baseline: { name: 'a bare ReminderScheduler holding the same reminders', value: bare.heapPerReminder },
            target: { text: `≤ ${TARGET_BYTES} bytes`, met: (v) => v <= TARGET_BYTES },
          }),
          figure({
            name: 'memory per pending reminder in the node, heap (the same node before and after the rules were put, homes passivated)',
            value: heapPer,
            unit: 'bytes',
            baseline: { name: 'a bare ReminderScheduler holding the same reminders', value: bare.heapPerReminder },
            target: { text: `≤ ${TARGET_BYTES} bytes`, met: (v) => v <= TARGET_BYTES },
          }),
          figure({
            name: `loading one shard's reminders at takeover, p99 (${round(load.reminders / shards)} per shard)`,
            value: storeLoad.p99,
            unit: 'ms',
            baseline: { name: 'raw ZRANGE WITHSCORES of the same index, p99', value: rawLoad.p99 },
          }),
          figure({
            name: 'loading reminders at takeover, per 1,000 reminders',
            value: per1000,
            unit: 'ms',
            baseline: { name: 'raw ZRANGE WITHSCORES, per 1,000 reminders', value: rawPer1000 },
          }),
          figure({
            name: `node SIGKILLed and restarted → all ${fmt(total)} reminders scheduled`,
            value: restartMs,
            unit: 'ms',
            baseline: { name: `every shard's reminders loaded one shard after another (${shards} shards)`, value: load.storeTotalMs },
          }),
          figure({
            name: `firing lateness p99, due → command at the hub, ${fmt(homes / periodS)} firings/s`,
            value: lateness.p99,
            unit: 'ms',
            baseline: { name: 'the same due times in a bare ReminderScheduler, p99', value: bareLateness.p99 },
            target: { text: `≤ ${TARGET_P99_MS} ms`, met: (v) => v <= TARGET_P99_MS },
          }),
          figure({
            name: `firing lateness p50, due → command at the hub, ${fmt(homes / periodS)} firings/s`,
            value: lateness.p50,
            unit: 'ms',
            baseline: { name: 'the same due times in a bare ReminderScheduler, p50', value: bareLateness.p50 },
          }),
          figure({
            name: 'firings delivered to hubs',
            value: rate,
            unit: 'firings/s',
            baseline: { name: 'firings scheduled', value: homes / periodS },
          }),
        ];
        const latencies: LatencySummary[] = [lateness, bareLateness, floor, storeLoad, rawLoad];
        return {
          scenario: 'timers',
          figures,
          latencies,
          integrity: {
            'scheduled firings that reached no hub': missing,
            'firings delivered more than once': doubled,
            'hub streams that ended during the run': ended,
          },
          notes: [
            `${fmt(homes)} homes, one hub each (its light declared in the hello), ${RULES_PER_HOME} schedule rules per home (cron; each holds one pending reminder \`at.<rule>.0\`), ${shards} shards, one node with the Redis store (private redis-server, AOF fsync always), hubs in ${pool.size} processes.`,
            `Memory, first figure: two nodes started afresh (inspector on loopback, nothing else touched: no HTTP call but /metrics and the cluster status), one before the rules were put (holding the ${fmt(warmPending)} reminders of ${warmHomes} warm-up homes) and one restarted after (holding ${fmt(freshPending)} more), each sampled once it served every shard: heap after 4 full GCs (HeapProfiler.collectGarbage through the inspector) ${fmt(freshBefore.heapUsed)} → ${fmt(freshAfter.heapUsed)} B, ÷ the extra pending reminders: what a pending reminder costs a node that took it over.`,
            `Memory, second figure: the first of those nodes (PASSIVATE_AFTER_MS=${passivateMs}) before and after ${fmt(expected)} far-future rules (a cron on 1 January) were put through it, once every home had passivated (resident actors ${residentBefore} before, ${residentAfter} after; the warm-up homes' rules were put again first, so the code paths ran before the first sample): heap ${fmt(before.heapUsed)} → ${fmt(after.heapUsed)} B ÷ ${fmt(pending)} new pending reminders — the scheduler's entry plus whatever else putting a timed rule leaves in the node. RSS ${fmt(before.rss)} → ${fmt(after.rss)} B (${round(rssPer)} B per reminder; RSS moves in pages and is left out of the figures).`,
            `Memory baseline: a ReminderScheduler alone holding the same members (fresh flat strings) in a process of its own (--expose-gc): the scheduler's own share.`,
            `Takeover: RedisStore.loadReminders (ZSCAN in chunks) timed for each of the ${shards} shards, one after another, against the node's Redis (${fmt(load.reminders)} reminders, largest shard ${fmt(load.largestShard)}); total ${fmt(load.storeTotalMs)} ms vs raw ZRANGE ${fmt(load.rawTotalMs)} ms. Inside the restarted node (every shard loaded concurrently as its lease is taken): ${fmt(inNodeCount)} loads, mean ${round(inNodeMeanMs)} ms each (iot_reminders_load_seconds). Restart: SIGKILL, a new process under the same node id (its own leases are taken at once), ${fmt(startedMs)} ms until it listened, ${fmt(restartMs)} ms until iot_reminders_pending reached ${fmt(total)} (polled every 20 ms). The restarted node keeps its inspector port open, with no client, for the lateness phase.`,
            `Lateness: rule t0 of home i becomes the cron \`<i mod ${periodS}>-59/${periodS} * * * * *\` (every ${periodS} s at second i mod ${periodS}: ${fmt(homes / periodS)} firings each second, due at the whole second), commanding the light; the hub acknowledges each command at once. Recorded over ${periods} period(s) (${windowS} s) starting one period after the last rule was put; a command counts against the latest boundary of its home's cron before its receipt (exact while lateness < ${periodS} s), late ones awaited ${graceMs} ms. ${fmt(received)} commands, ${fmt(lateness.count)} timed; reminders fired in the node during the phase: ${fmt(metricSum(endText, 'iot_reminders_fired_total') - firedBefore)}; pending at the end ${fmt(pendingWhileFiring)}.`,
            `Baseline: a ReminderScheduler alone in a process of its own, given every due time of the window up front (${fmt(bareFired.fired)} fired), each callback timed against its due time: the timer itself, without the home's step, its Redis write or the gRPC delivery. Also shown: a setTimeout chain in each hub process aimed at every 10 ms instant of the window (how late the hub side can notice anything).`,
            'Sizes are counts, not durations: --duration sets the recorded lateness window (rounded to whole periods; default 60 s).',
          ],
        };
      } finally {
        await cleanups.run();
      }
    },
  };
}

export const timersScenario: Scenario = createTimersScenario();
