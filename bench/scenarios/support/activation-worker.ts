/**
 * Worker for the activation scenario (a child process started with `--expose-gc`):
 *  - `memory`: N resident device actors (attach + one report of five attributes each) in an
 *    ActorHost over the production shard function, over a MemoryStore or over a store that
 *    discards writes (the actors alone, as with Redis out of process), or the same states in a
 *    plain Map; RSS and heap delta ÷ N.
 *  - `cold`: pre-writes N (+ warm-up) actors' snapshots and journal tails through a RedisStore
 *    (one window per shard and chunk of actors), then reads the same keys with raw ioredis
 *    GET+LRANGE, then activates every actor in a fresh ActorHost over a fresh RedisStore
 *    (`shadow.get`, bounded concurrency); rates, HDR latencies and how many actors each bulk
 *    recovery read (`recoverMany`) carried.
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
import type { ActorWrite, PersistencePort, Recovered } from '../../../runtime/persistence-port.ts';
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
  /** Shards the host spreads the actors over (production shard function). */
  readonly shards: number;
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
  /** `recoverMany` calls during the measured activations, and the actors they recovered. */
  readonly recoverCalls: number;
  readonly recoveredActors: number;
  /** The most actors one `recoverMany` call carried. */
  readonly largestRecovery: number;
}

/** A store that keeps nothing: the actors' own memory, as when the journal lives in Redis. */
class DiscardStore implements PersistencePort {
  readonly durable = false;
  async recover(): Promise<Recovered> {
    return { events: [] };
  }
  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered>> {
    return new Map(actorIds.map((id) => [id, { events: [] }]));
  }
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Counts the actors of each bulk recovery the host makes through `inner` (what the cold phase checks). */
class CountingStore implements PersistencePort {
  readonly durable: boolean;
  readonly shardOf: ((actorId: string) => number) | undefined;
  calls = 0;
  actors = 0;
  largest = 0;
  constructor(private readonly inner: PersistencePort) {
    this.durable = inner.durable;
    this.shardOf = inner.shardOf;
  }
  recover(actorId: string): Promise<Recovered> {
    this.calls++;
    this.actors++;
    this.largest = Math.max(this.largest, 1);
    return this.inner.recover(actorId);
  }
  recoverMany(actorIds: readonly string[]): ReturnType<PersistencePort['recoverMany']> {
    this.calls++;
    this.actors += actorIds.length;
    this.largest = Math.max(this.largest, actorIds.length);
    return this.inner.recoverMany(actorIds);
  }
  commit(shard: number, writes: readonly ActorWrite[]): Promise<void> {
    return this.inner.commit(shard, writes);
  }
  reset(): void {
    this.calls = this.actors = this.largest = 0;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Actors per pre-write window. */
const PREWRITE_CHUNK = 100;

/** A progress callback that reports about every 2 % (done may grow by more than one per call). */
const progress = (label: string, total: number) => {
  const every = Math.max(1, Math.floor(total / 50));
  let next = every;
  return (done: number): void => {
    if (done < next && done !== total) return;
    next = done + every;
    toParent({ type: 'progress', done, total, label });
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
async function actorsInHost({ n, warmup, concurrency, variant, shards }: MemoryInput, now: number): Promise<Activated> {
  const store = variant === 'host-memory-store' ? new MemoryStore() : new DiscardStore();
  const host = new ActorHost({
    behaviors: [deviceBehavior],
    store,
    logger: silentLogger,
    registry: new Registry(),
    shardOf: shardOfActor(shards),
  });
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

  // 1. Pre-write every actor through the store: journal (attach, report 1 .. 1 + tail), snapshot at
  //    seq 2. One window (one fenced script call) per shard and chunk of actors, as the host writes.
  const writer = createRedisClient(input.redisUrl, { failFast: true, commandTimeoutMs: 60_000, name: 'bench:prewrite' });
  writer.on('error', () => {});
  await connectRedis(writer);
  await writer.mset(...Array.from({ length: shards }, (_, s) => [keys.fence(s), '1']).flat());
  const writeStore = new RedisStore({
    client: writer,
    keys,
    shardOf,
    fenceToken: () => '1',
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
  });
  const writeOf = (i: number): ActorWrite => {
    const events = [{ seq: 1, at: now, msg: attachOf() as unknown }];
    for (let k = 1; k <= 1 + tail; k++) events.push({ seq: k + 1, at: now, msg: reportOf(i, k, now) });
    return { actorId: deviceIdOf(i), batch: { events, snapshot: { seq: 2, state: deviceStateOf(i, 1, now) } } };
  };
  const sample = writeOf(0).batch;
  const snapshotBytes = JSON.stringify(sample.snapshot).length;
  const journalEntryBytes = JSON.stringify(sample.events[2] ?? sample.events[1]).length;
  const chunks: { shard: number; items: number[] }[] = [];
  const byShard = new Map<number, number[]>();
  for (let i = 0; i < total; i++) {
    const shard = shardOf(deviceIdOf(i));
    const items = byShard.get(shard);
    if (items) items.push(i);
    else byShard.set(shard, [i]);
  }
  for (const [shard, items] of byShard) {
    for (let k = 0; k < items.length; k += PREWRITE_CHUNK) chunks.push({ shard, items: items.slice(k, k + PREWRITE_CHUNK) });
  }
  const t0 = performance.now();
  const onWritten = progress('pre-writing snapshots and journals', total);
  let written = 0;
  await forEachBounded(0, chunks.length, 64, async (c) => {
    const { shard, items } = chunks[c]!;
    await writeStore.commit(shard, items.map(writeOf));
    written += items.length;
    onWritten(written);
  });
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
  const store = new CountingStore(
    new RedisStore({ client, keys, shardOf, fenceToken: () => '1', onFenced: () => {}, registry: new Registry(), logger: silentLogger }),
  );
  // No shardOf of its own: the host takes the store's (the production shardOfActor), as it must.
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
  store.reset();
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
    recoverCalls: store.calls,
    recoveredActors: store.actors,
    largestRecovery: store.largest,
  };
}

runAsWorker(async () => {
  const input = workerInput<MemoryInput | ColdInput>();
  return input.mode === 'memory' ? memory(input) : cold(input);
});
