/**
 * Durable ingest: reports/s with every hub's credit window kept full, against a node on the memory
 * store and a node on Redis (private redis-server, AOF fsync always), and — in the same run, on
 * the same machine — two baselines: a raw grpc-js echo server with the same proto (hub.proto
 * reports in, acks out) driven by the same load hubs, and a raw ioredis pipeline of journal-sized
 * RPUSHes. Then each store paced at a fixed rate for ack latency (report sent → its ack).
 */
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis } from '../../tools/process/redis-server.ts';
import { startEchoServer } from '../harness/echo-server.ts';
import { LatencyRecorder } from '../harness/hdr.ts';
import { LoadPool } from '../harness/load-client.ts';
import type { HubSpec } from '../harness/load-protocol.ts';
import { ADMIN_TOKEN, grpcAddress, httpBase, LIFTED_LIMITS, provisionHomes } from '../harness/node-api.ts';
import { startOtlpSink } from '../harness/otlp-sink.ts';
import type { LatencySummary, Scenario, ScenarioContext } from '../harness/scenario.ts';
import { Cleanups, given, round, target, timed, versus } from '../harness/scenario-kit.ts';

const DEVICES = 10;
const BATCH = 50;
/** Reports in flight across all hubs (the window of each hub is its share). */
const IN_FLIGHT = 40_000;

interface Flood {
  readonly perSec: number;
  readonly errors: number;
}

export const ingestScenario: Scenario = {
  name: 'ingest',
  description:
    'durable reports/s (window full) on the memory and Redis stores vs raw grpc-js echo and raw ioredis pipeline; ack latency at a fixed rate',
  async run(ctx: ScenarioContext) {
    const hubs = given(ctx, 'hubs', ctx.smoke ? 2 : 20);
    const rate = given(ctx, 'rate', ctx.smoke ? 500 : 20_000);
    const seconds = ctx.duration;
    // Smoke runs warm up too: on a loaded machine (CI runs the tests in parallel) a sub-second flood may otherwise end before its first ack.
    const warmupMs = ctx.smoke ? 300 : 2_000;
    const window = Math.max(2 * BATCH, Math.round(IN_FLIGHT / hubs / BATCH) * BATCH);
    const cleanups = new Cleanups();
    try {
      const redis = await startTestRedis();
      cleanups.add(() => redis.stop());
      // --tracing: the nodes export every span (OTLP/protobuf, the production default) to a local
      // sink that discards them, so a run with and one without measure what tracing costs the node.
      const sink = ctx.tracing ? await cleanups.track(startOtlpSink(), (s) => s.close()) : undefined;
      const tracingEnv: Record<string, string> = sink
        ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'iot-bench' }
        : { OTEL_SDK_DISABLED: 'true' }; // off even when this shell has OTEL_* variables set
      const nodeEnv = (store: 'memory' | 'redis'): Record<string, string> => ({
        ADMIN_TOKEN,
        ...LIFTED_LIMITS,
        NODE_ID: `bench-${store}`,
        LOG_LEVEL: 'warn',
        SHARDS: ctx.smoke ? '64' : '256',
        HUB_WINDOW: String(window),
        ...(store === 'redis' ? { REDIS_URL: redis.url, CLUSTER: `${redis.cluster}ingest` } : {}),
        ...tracingEnv,
      });
      // Every process starts at once (start-up is slow on a small machine; idle ones cost next to nothing), then each is measured alone.
      const [pool, echo, memoryNode, redisNode] = await Promise.all([
        cleanups.track(LoadPool.start(Math.min(2, hubs)), (p) => p.stop()),
        cleanups.track(startEchoServer(window), (e) => e.stop()),
        cleanups.track(startNodeProcess(nodeEnv('memory')), (n) => n.stop('SIGKILL')),
        cleanups.track(startNodeProcess(nodeEnv('redis')), (n) => n.stop('SIGKILL')),
      ]);
      const homeIds = Array.from({ length: hubs }, (_, i) => `ingest-${i}`);
      const [memorySpecs, redisSpecs] = await Promise.all(
        [memoryNode, redisNode].map((node) => provisionHomes({ http: [httpBase(node)], grpc: [grpcAddress(node)], homeIds })),
      );

      const flood = async (label: string, specs: HubSpec[]): Promise<Flood> => {
        await pool.all('ingest.connect', (i) => ({ hubs: pool.share(specs, i), devices: DEVICES, batch: BATCH }));
        if (warmupMs > 0) await pool.all('ingest.flood', () => ({ durationMs: warmupMs })); // activations, JIT, connections
        const r = await timed(
          ctx,
          `${label}: window full`,
          seconds,
          pool.all('ingest.flood', () => ({ durationMs: seconds * 1000 })),
        );
        const perSec = r.reduce((a, x) => a + x.acked / (x.elapsedMs / 1000), 0);
        ctx.log(`  ${label.padEnd(22)} window full: ${Math.round(perSec).toLocaleString('en-US')} reports/s`);
        return { perSec, errors: r.reduce((a, x) => a + x.errors, 0) };
      };
      const paced = async (label: string): Promise<{ achieved: number; latency: LatencySummary }> => {
        if (!ctx.smoke) await new Promise((r) => setTimeout(r, 1_000)); // work behind the acks (homes, snapshots) settles
        const r = await timed(
          ctx,
          `${label}: ${rate}/s`,
          seconds,
          pool.all('ingest.paced', () => ({ perHubPerSec: rate / hubs, durationMs: seconds * 1000 })),
        );
        const latency = LatencyRecorder.merge(r.map((x) => x.latency)).summary(
          `${label}: ack latency at ${rate.toLocaleString('en-US')} reports/s`,
        );
        const achieved = r.reduce((a, x) => a + x.acked / (x.elapsedMs / 1000), 0);
        ctx.log(
          `  ${label.padEnd(22)} at ${rate}/s: achieved ${Math.round(achieved)}/s, ack p50 ${latency.p50} ms p99 ${latency.p99} ms max ${latency.max} ms`,
        );
        return { achieved, latency };
      };

      // Baseline 1: the same hubs against a raw grpc-js echo server.
      const echoSpecs = Array.from({ length: hubs }, (_, i): HubSpec => ({
        homeId: `echo-${i}`,
        hubId: 'hub1',
        secret: 'echo',
        addresses: [echo.address],
        first: 0,
      }));
      const echoRun = await flood('raw grpc-js echo', echoSpecs);
      await pool.all('ingest.close', () => ({}));
      await echo.stop();

      // Baseline 2: a raw ioredis pipeline of journal entries, from a load process.
      const pipeMs = (ctx.smoke ? 0.5 : seconds) * 1000;
      const pipe = await timed(
        ctx,
        'raw ioredis pipeline',
        pipeMs / 1000,
        pool.workers[0]!.call('redis.pipeline', { url: redis.url, durationMs: pipeMs, pipeline: 1000 }),
      );
      const pipePerSec = pipe.ops / (pipe.elapsedMs / 1000);
      ctx.log(`  raw ioredis pipeline   ${Math.round(pipePerSec).toLocaleString('en-US')} RPUSH/s`);

      const runStore = async (
        store: 'memory' | 'redis',
        node: NodeProcess,
        specs: HubSpec[],
      ): Promise<{ flood: Flood; paced: { achieved: number; latency: LatencySummary } }> => {
        const f = await flood(`${store} store`, specs);
        const p = await paced(`${store} store`);
        await pool.all('ingest.close', () => ({}));
        await node.stop('SIGKILL'); // measured: its shutdown is not part of the figures
        return { flood: f, paced: p };
      };
      const stores = { memory: await runStore('memory', memoryNode, memorySpecs!), redis: await runStore('redis', redisNode, redisSpecs!) };

      const echoBase = { name: 'raw grpc-js echo, same hubs and messages', value: echoRun.perSec };
      const redisPerSec = stores.redis.flood.perSec;
      const errors = stores.memory.flood.errors + stores.redis.flood.errors;
      return {
        scenario: 'ingest',
        figures: [
          versus(
            'durable ingest (Redis store), window full',
            redisPerSec,
            'reports/s',
            echoBase,
            target(redisPerSec, '≥', 100_000, 'reports/s'),
          ),
          versus('durable ingest (Redis store) vs raw ioredis pipeline', redisPerSec, 'reports/s', {
            name: 'raw ioredis pipeline (RPUSH/s)',
            value: pipePerSec,
          }),
          versus('ingest (memory store), window full', stores.memory.flood.perSec, 'reports/s', echoBase),
          versus('Redis store / memory store', redisPerSec, 'reports/s', { name: 'memory store', value: stores.memory.flood.perSec }),
          versus(`ack p99 at ${rate.toLocaleString('en-US')} reports/s (Redis store)`, stores.redis.paced.latency.p99, 'ms', undefined),
          versus(`ack p99 at ${rate.toLocaleString('en-US')} reports/s (memory store)`, stores.memory.paced.latency.p99, 'ms', undefined),
        ],
        latencies: [stores.memory.paced.latency, stores.redis.paced.latency],
        notes: [
          `${hubs} hubs × ${DEVICES} devices, batches of ${BATCH}, window ${window} per hub, ${seconds} s per phase, load in ${pool.size} processes`,
          `paced phase achieved ${Math.round(stores.memory.paced.achieved)} (memory) and ${Math.round(stores.redis.paced.achieved)} (Redis) reports/s of ${rate}`,
          `raw ioredis pipeline: ${round(pipePerSec, 0)} RPUSH/s of one journal-sized entry, pipelines of 1000, one connection`,
          ...(errors > 0 ? [`${errors} errors from the node during the floods`] : []),
          sink
            ? `tracing ON in both nodes (--tracing): OTLP/protobuf to a local discarding sink, sampler ${process.env['OTEL_TRACES_SAMPLER'] ?? 'parentbased_always_on'}; ${sink.requests} export requests received`
            : 'tracing off (OTEL_SDK_DISABLED=true in the nodes): compare with a --tracing run',
        ],
      };
    } finally {
      await cleanups.run();
    }
  },
};
