/**
 * `npm run bench:ingest`: durable ingest through real processes — hubs (this process) → node
 * (child process) → Redis (private redis-server) — against the memory store and a raw ioredis
 * pipeline measured in the same run. Reports reports/s with the window kept full, and ack
 * latency p50/p99 at a fixed rate.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startNodeProcess } from '../test/support/node-process.ts';
import { startTestRedis } from '../test/support/redis-server.ts';
import { BenchHub } from './ingest/bench-hub.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    hubs: { type: 'string', default: '20' },
    devices: { type: 'string', default: '10' },
    batch: { type: 'string', default: '50' },
    rate: { type: 'string', default: '20000' },
    out: { type: 'string', default: 'bench/results' },
    'node-args': { type: 'string', default: '' },
  },
});
const seconds = Number(values.duration);
const hubs = Number(values.hubs);
const devices = Number(values.devices);
const batch = Number(values.batch);
const rate = Number(values.rate);
const ADMIN = 'bench-admin-token-0123456789';

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function rawPipeline(url: string): Promise<number> {
  const client = new Redis(url);
  const entry = JSON.stringify({ seq: 1, at: Date.now(), msg: { type: 'report', seq: 1, tsMs: Date.now(), attributes: { temperature: 21.5 } } });
  const until = performance.now() + seconds * 1000;
  let ops = 0;
  const started = performance.now();
  while (performance.now() < until) {
    const p = client.pipeline();
    for (let i = 0; i < 1000; i++) p.rpush(`raw:{${i % 64}}:j`, entry);
    await p.exec();
    ops += 1000;
    if (ops % 50_000 === 0) await client.del(...Array.from({ length: 64 }, (_, i) => `raw:{${i}}:j`));
  }
  const perSec = ops / ((performance.now() - started) / 1000);
  await client.flushall();
  client.disconnect();
  return perSec;
}

async function api(base: string, method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

interface StoreResult {
  store: string;
  floodReportsPerSec: number;
  pacedRate: number;
  pacedAchievedPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
  errors: number;
}

async function runStore(store: 'memory' | 'redis', redisUrl: string, cluster: string): Promise<StoreResult> {
  const env: Record<string, string> = { ADMIN_TOKEN: ADMIN, NODE_ID: `bench-${store}`, LOG_LEVEL: 'warn', SHARDS: '256', HUB_WINDOW: '2000' };
  if (store === 'redis') Object.assign(env, { REDIS_URL: redisUrl, CLUSTER: cluster });
  const node = await startNodeProcess(env, 20_000, values['node-args'] ? values['node-args'].split(' ') : []);
  try {
    const base = `http://127.0.0.1:${node.httpPort}`;
    const clients: BenchHub[] = [];
    for (let i = 0; i < hubs; i++) {
      const homeId = `bench-${i}`;
      await api(base, 'PUT', `/v1/homes/${homeId}`, { name: `Bench ${i}`, timezone: 'UTC' });
      const hub = await api(base, 'POST', `/v1/homes/${homeId}/hubs`, { hubId: 'hub1' });
      clients.push(new BenchHub({ address: `127.0.0.1:${node.grpcPort}`, homeId, hubId: 'hub1', secret: hub.secret as string, devices, batch }));
    }
    await Promise.all(clients.map((c) => c.connect()));
    // Warm-up: activations, JIT, connection set-up.
    await Promise.all(clients.map((c) => c.flood(performance.now() + 2_000)));
    await Promise.all(clients.map((c) => c.drain()));

    const before = clients.reduce((a, c) => a + c.acked, 0);
    const t0 = performance.now();
    await Promise.all(clients.map((c) => c.flood(t0 + seconds * 1000)));
    const flood = (clients.reduce((a, c) => a + c.acked, 0) - before) / ((performance.now() - t0) / 1000);
    await Promise.all(clients.map((c) => c.drain()));
    await new Promise((r) => setTimeout(r, 1_000)); // let work behind the acks (homes, snapshots) settle

    for (const c of clients) c.recording = true;
    const pacedBefore = clients.reduce((a, c) => a + c.acked, 0);
    const t1 = performance.now();
    await Promise.all(clients.map((c) => c.paced(rate / hubs, t1 + seconds * 1000)));
    await Promise.all(clients.map((c) => c.drain()));
    const achieved = (clients.reduce((a, c) => a + c.acked, 0) - pacedBefore) / ((performance.now() - t1) / 1000);
    const lat = clients.flatMap((c) => c.latenciesMs).sort((a, b) => a - b);
    const errors = clients.reduce((a, c) => a + c.errors, 0);
    for (const c of clients) c.close();
    return {
      store,
      floodReportsPerSec: Math.round(flood),
      pacedRate: rate,
      pacedAchievedPerSec: Math.round(achieved),
      ackP50Ms: +pct(lat, 50).toFixed(2),
      ackP99Ms: +pct(lat, 99).toFixed(2),
      ackMaxMs: +(lat.at(-1) ?? NaN).toFixed(2),
      errors,
    };
  } finally {
    await node.stop('SIGTERM');
  }
}

async function main(): Promise<void> {
  const redis = await startTestRedis();
  try {
    process.stdout.write(`durable ingest: ${hubs} hubs × ${devices} devices, batches of ${batch}, ${seconds}s per phase\n`);
    const raw = await rawPipeline(redis.url);
    process.stdout.write(`raw ioredis pipeline (RPUSH of one journal entry): ${Math.round(raw)} ops/s\n`);
    const results: StoreResult[] = [];
    for (const store of ['memory', 'redis'] as const) {
      const r = await runStore(store, redis.url, `${redis.cluster}${store}`);
      results.push(r);
      process.stdout.write(
        `${store.padEnd(7)} flood ${r.floodReportsPerSec} reports/s | at ${r.pacedRate}/s: achieved ${r.pacedAchievedPerSec}/s, ack p50 ${r.ackP50Ms} ms p99 ${r.ackP99Ms} ms max ${r.ackMaxMs} ms | errors ${r.errors}\n`,
      );
    }
    const redisRun = results.find((r) => r.store === 'redis')!;
    const memoryRun = results.find((r) => r.store === 'memory')!;
    process.stdout.write(
      `ratios: redis/memory ${(redisRun.floodReportsPerSec / memoryRun.floodReportsPerSec).toFixed(2)}, redis/raw-pipeline ${(redisRun.floodReportsPerSec / raw).toFixed(2)}\n`,
    );
    mkdirSync(values.out, { recursive: true });
    const file = join(values.out, `durable-ingest-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify({ machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, params: { seconds, hubs, devices, batch, rate }, rawPipelineOpsPerSec: Math.round(raw), results }, null, 2),
    );
    process.stdout.write(`written ${file}\n`);
  } finally {
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
