/**
 * Worker for the activation scenario (a child process started with `--expose-gc`):
 *  - `memory`: N resident device actors (attach + one report of five attributes each) in an
 *    ActorHost over a MemoryStore, or over a store that discards writes (the actors alone, as
 *    with Redis out of process), or the same states in a plain Map; RSS and heap delta ÷ N.
 *  - `cold`: pre-writes N (+ warm-up) actors' snapshots and journal tails through a RedisStore,
 *    then reads the same keys with raw ioredis GET+LRANGE, then activates every actor in a fresh
 *    ActorHost over a fresh RedisStore (`shadow.get`, bounded concurrency); rates and HDR latencies.
 */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { deviceBehavior } from '../../../actors/device.ts';
import type { Shadow } from '../../../actors/device-state.ts';
import type { Outcome } from '../../../actors/types.ts';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import type { PersistencePort, Recovered } from '../../../runtime/persistence-port.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { LatencyRecorder } from '../../harness/hdr.ts';
import { runAsWorker, toParent, workerInput } from '../../harness/worker-process.ts';
import { attachOf, CLIMATE_ATTRIBUTES, deviceIdOf, deviceStateOf, reportOf } from './device-fixture.ts';
import { forEachBounded, perItem, sampleMemory, type MemorySample } from './memory.ts';

/** `map-json`: the same states after a JSON round trip, as an actor recovered from a snapshot holds them. */
export type MemoryVariant = 'host-memory-store' | 'host-discard-store' | 'map' | 'map-json';

export interface MemoryInput {
  readonly mode: 'memory';
  readonly variant: MemoryVariant;
  readonly n: number;
  /** Actors activated before the "before" sample (JIT, metric children, one-off tables). */
  readonly warmup: number;
  readonly concurrency: number;
}

export interface MemoryOutput {
  readonly variant: MemoryVariant;
  readonly n: number;
  readonly rssPerActor: number;
  readonly heapPerActor: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly resident: number;
  readonly failures: number;
  readonly seconds: number;
}

export interface ColdInput {
  readonly mode: 'cold';
  readonly redisUrl: string;
  readonly cluster: string;
  readonly shards: number;
  readonly n: number;
  readonly warmup: number;
  readonly concurrency: number;
  /** Journal entries after the snapshot (reports replayed at recovery). */
  readonly tail: number;
}

export interface ColdOutput {
  readonly n: number;
  readonly prewriteSeconds: number;
  readonly activationsPerSec: number;
  readonly activationHistogram: string;
  readonly rawPerSec: number;
  readonly rawHistogram: string;
  readonly failures: number;
  readonly mismatches: number;
  readonly snapshotBytes: number;
  readonly journalEntryBytes: number;
}

/** A store that keeps nothing: the actors' own memory, as when the journal lives in Redis. */
class DiscardStore implements PersistencePort {
  readonly durable = false;
  async recover(): Promise<Recovered> {
    return { events: [] };
  }
  async write(): Promise<void> {}
  async close(): Promise<void> {}
}

const progress = (label: string, total: number) => {
  const every = Math.max(1, Math.floor(total / 50));
  return (done: number): void => {
    if (done % every === 0 || done === total) toParent({ type: 'progress', done, total, label });
  };
};

/** The memory samples around activating `n` actors (or states), and how many stayed resident. */
interface Activated {
  readonly before: MemorySample;
  readonly after: MemorySample;
  readonly resident: number;
  readonly failures: number;
}

/** `map` / `map-json`: the device states alone, in a plain Map. */
async function statesInMap({ n, warmup, variant }: MemoryInput, now: number): Promise<Activated> {
  const stateOf =
    variant === 'map' ? deviceStateOf : (i: number, k: number, at: number): unknown => JSON.parse(JSON.stringify(deviceStateOf(i, k, at)));
  const states = new Map<string, unknown>();
  for (let i = 0; i < warmup; i++) states.set(deviceIdOf(n + i), stateOf(n + i, 1, now));
  const before = await sampleMemory();
  const onDone = progress('states in a Map', n);
  for (let i = 0; i < n; i++) {
    states.set(deviceIdOf(i), stateOf(i, 1, now));
    onDone(i + 1);
  }
  const after = await sampleMemory();
  return { before, after, resident: states.size - warmup, failures: 0 };
}

/** `host-*`: device actors in an ActorHost, each attached and sent one report. */
async function actorsInHost({ n, warmup, concurrency, variant }: MemoryInput, now: number): Promise<Activated> {
  const store = variant === 'host-memory-store' ? new MemoryStore() : new DiscardStore();
  const host = new ActorHost({ behaviors: [deviceBehavior], store, logger: silentLogger, registry: new Registry() });
  let failures = 0;
  const activate = async (i: number): Promise<void> => {
    const id = deviceIdOf(i);
    const attached = host.tell(id, attachOf());
    const reply = await host.ask(id, reportOf(i, 1, now));
    if (!attached.ok || !reply.ok) failures++;
  };
  await forEachBounded(n, n + warmup, concurrency, activate);
  const before = await sampleMemory();
  await forEachBounded(0, n, concurrency, activate, progress('activating device actors', n));
  const after = await sampleMemory();
  const resident = host.residentCount - warmup;
  // Keep the host (and its store) reachable until after the sample.
  host.evict(() => true);
  await host.close();
  return { before, after, resident, failures };
}

async function memory(input: MemoryInput): Promise<MemoryOutput> {
  const { n, variant } = input;
  const started = performance.now();
  const inMap = variant === 'map' || variant === 'map-json';
  const { before, after, resident, failures } = await (inMap ? statesInMap : actorsInHost)(input, Date.now());
  const per = perItem(before, after, n);
  return {
    variant,
    n,
    rssPerActor: per.rss,
    heapPerActor: per.heap,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    resident,
    failures,
    seconds: (performance.now() - started) / 1000,
  };
}

async function cold(input: ColdInput): Promise<ColdOutput> {
  const { n, warmup, concurrency, tail, shards } = input;
  const keys = new KeyLayout(input.cluster);
  const shardOf = shardOfActor(shards);
  const total = n + warmup;
  const now = Date.now();

  // 1. Pre-write every actor through the store: journal (attach, report 1 .. 1 + tail), snapshot at seq 2.
  const writer = createRedisClient(input.redisUrl, { failFast: true, commandTimeoutMs: 60_000, name: 'bench:prewrite' });
  writer.on('error', () => {});
  await connectRedis(writer);
  await writer.mset(...Array.from({ length: shards }, (_, s) => [keys.fence(s), '1']).flat());
  const writeStore = new RedisStore(
    { client: writer, keys, shardOf, fenceToken: () => '1', onFenced: () => {}, registry: new Registry(), logger: silentLogger },
    { maxWindowWrites: 2_000 },
  );
  let snapshotBytes = 0;
  let journalEntryBytes = 0;
  const t0 = performance.now();
  await forEachBounded(
    0,
    total,
    4_000,
    async (i) => {
      const id = deviceIdOf(i);
      const events = [{ seq: 1, at: now, msg: attachOf() }];
      for (let k = 1; k <= 1 + tail; k++) events.push({ seq: k + 1, at: now, msg: reportOf(i, k, now) as never });
      const snapshot = { seq: 2, state: deviceStateOf(i, 1, now) };
      if (i === 0) {
        snapshotBytes = JSON.stringify(snapshot).length;
        journalEntryBytes = JSON.stringify(events[2] ?? events[1]).length;
      }
      await writeStore.write(id, { events, snapshot });
    },
    progress('pre-writing snapshots and journals', total),
  );
  const prewriteSeconds = (performance.now() - t0) / 1000;
  await writeStore.close();
  writer.disconnect();

  // 2. Baseline: raw ioredis GET + LRANGE of the same keys, same concurrency, same client options.
  const raw = new Redis(input.redisUrl, { enableAutoPipelining: true, lazyConnect: true });
  raw.on('error', () => {});
  await raw.connect();
  const rawHist = LatencyRecorder.create();
  let rawMisses = 0;
  const readRaw =
    (record: boolean) =>
    async (i: number): Promise<void> => {
      const id = deviceIdOf(i);
      const shard = shardOf(id);
      const t = performance.now();
      const [snap, journal] = await Promise.all([raw.get(keys.snapshot(shard, id)), raw.lrange(keys.journal(shard, id), 0, -1)]);
      if (record) rawHist.record(performance.now() - t);
      if (snap === null || journal.length !== tail) rawMisses++;
    };
  await forEachBounded(n, total, concurrency, readRaw(false));
  const r0 = performance.now();
  await forEachBounded(0, n, concurrency, readRaw(true), progress('raw GET+LRANGE', n));
  const rawPerSec = n / ((performance.now() - r0) / 1000);
  raw.disconnect();

  // 3. A fresh host over a fresh store and connection: activate every actor from cold.
  const client = createRedisClient(input.redisUrl, { failFast: true, commandTimeoutMs: 5_000, name: 'bench:cold' });
  client.on('error', () => {});
  await connectRedis(client);
  const store = new RedisStore({
    client,
    keys,
    shardOf,
    fenceToken: () => '1',
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
  });
  const host = new ActorHost({ behaviors: [deviceBehavior], store, logger: silentLogger, registry: new Registry() });
  const hist = LatencyRecorder.create();
  let failures = 0;
  let mismatches = 0;
  const activate =
    (record: boolean) =>
    async (i: number): Promise<void> => {
      const id = deviceIdOf(i);
      const t = performance.now();
      const reply = await host.ask<Outcome<Shadow>>(id, { type: 'shadow.get' });
      if (record) hist.record(performance.now() - t);
      if (!reply.ok || !reply.value.ok) {
        failures++;
        return;
      }
      // Recovered = snapshot (attach + report 1) + the journal tail replayed: the last report's values.
      const shadow = reply.value.value;
      const last = reportOf(i, 1 + tail, now).attributes;
      if (CLIMATE_ATTRIBUTES.some((a) => shadow.reported[a]?.value !== last[a])) mismatches++;
    };
  await forEachBounded(n, total, concurrency, activate(false));
  const a0 = performance.now();
  await forEachBounded(0, n, concurrency, activate(true), progress('cold activations', n));
  const activationsPerSec = n / ((performance.now() - a0) / 1000);
  host.evict(() => true);
  await host.close();
  client.disconnect();
  return {
    n,
    prewriteSeconds,
    activationsPerSec,
    activationHistogram: hist.encode(),
    rawPerSec,
    rawHistogram: rawHist.encode(),
    failures: failures + rawMisses,
    mismatches,
    snapshotBytes,
    journalEntryBytes,
  };
}

runAsWorker(async () => {
  const input = workerInput<MemoryInput | ColdInput>();
  return input.mode === 'memory' ? memory(input) : cold(input);
});
