/**
 * Worker of the timers scenario (a child process):
 *  - `load`: times `RedisStore.loadReminders` for every shard of a cluster's Redis (what a node
 *    does for each shard it takes over), next to one raw `ZRANGE … WITHSCORES` of the same index
 *    per shard; HDR per shard, and totals for the per-1,000-reminders figure.
 *  - `memory` (started with `--expose-gc`): the baseline of memory per pending reminder — a bare
 *    `ReminderScheduler` holding the same members (`at.<rule>.0@home:<id>`) over the same shards,
 *    heap delta ÷ count after forced GCs.
 *  - `fire`: the baseline of firing lateness — a bare `ReminderScheduler` given the cron due times
 *    of the same homes in the same window, each firing timed against its due time.
 */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { homeActorId } from '../../../actors/actor-id.ts';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { reminderMember } from '../../../runtime/reminder-changes.ts';
import { ReminderScheduler } from '../../../runtime/reminder-scheduler.ts';
import { LatencyRecorder } from '../../harness/hdr.ts';
import { runAsWorker, workerInput } from '../../harness/worker-process.ts';
import { perItem, sampleMemory } from './memory.ts';
import { cronSlotOf, dueTimesIn, ruleId } from './timer-rules.ts';

export interface ReminderLoadInput {
  readonly mode: 'load';
  readonly redisUrl: string;
  readonly cluster: string;
  readonly shards: number;
}

export interface ReminderLoadOutput {
  /** Per shard: ms to load its reminders through the store. */
  readonly storeHistogram: string;
  /** Per shard: ms of one raw ZRANGE WITHSCORES of its index. */
  readonly rawHistogram: string;
  readonly storeTotalMs: number;
  readonly rawTotalMs: number;
  readonly reminders: number;
  readonly largestShard: number;
}

export interface SchedulerMemoryInput {
  readonly mode: 'memory';
  readonly homeIds: readonly string[];
  readonly rulesPerHome: number;
  readonly shards: number;
}

export interface SchedulerMemoryOutput {
  readonly heapPerReminder: number;
  readonly rssPerReminder: number;
  readonly pending: number;
}

export interface SchedulerFireInput {
  readonly mode: 'fire';
  readonly homes: number;
  readonly periodS: number;
  /** The window (epoch ms): every due time of every home's cron in it is scheduled. */
  readonly from: number;
  readonly to: number;
}

export interface SchedulerFireOutput {
  /** ms from due time to the scheduler's callback. */
  readonly lateness: string;
  readonly fired: number;
}

async function load(input: ReminderLoadInput): Promise<ReminderLoadOutput> {
  const keys = new KeyLayout(input.cluster);
  const client = createRedisClient(input.redisUrl, { failFast: true, commandTimeoutMs: 60_000, name: 'bench:reminders' });
  client.on('error', () => {});
  await connectRedis(client);
  const raw = new Redis(input.redisUrl, { lazyConnect: true });
  raw.on('error', () => {});
  await raw.connect();
  // Read only: no write goes through this store, so it holds no fence token.
  const store = new RedisStore({
    client,
    keys,
    shardOf: shardOfActor(input.shards),
    fenceToken: () => undefined,
    onFenced: () => {},
    registry: new Registry(),
    logger: silentLogger,
  });
  try {
    const storeHist = LatencyRecorder.create();
    const rawHist = LatencyRecorder.create();
    // Warm-up (JIT, connections) on a few shards, not recorded.
    for (let s = 0; s < Math.min(16, input.shards); s++) {
      await store.loadReminders(s);
      await raw.zrange(keys.reminders(s), 0, -1, 'WITHSCORES');
    }
    let storeTotalMs = 0;
    let rawTotalMs = 0;
    let reminders = 0;
    let largestShard = 0;
    for (let s = 0; s < input.shards; s++) {
      let t0 = performance.now();
      const loaded = await store.loadReminders(s);
      const storeMs = performance.now() - t0;
      t0 = performance.now();
      await raw.zrange(keys.reminders(s), 0, -1, 'WITHSCORES');
      const rawMs = performance.now() - t0;
      storeHist.record(storeMs);
      rawHist.record(rawMs);
      storeTotalMs += storeMs;
      rawTotalMs += rawMs;
      reminders += loaded.length;
      largestShard = Math.max(largestShard, loaded.length);
    }
    return { storeHistogram: storeHist.encode(), rawHistogram: rawHist.encode(), storeTotalMs, rawTotalMs, reminders, largestShard };
  } finally {
    client.disconnect();
    raw.disconnect();
  }
}

async function memory(input: SchedulerMemoryInput): Promise<SchedulerMemoryOutput> {
  const shardOf = shardOfActor(input.shards);
  const before = await sampleMemory();
  const scheduler = new ReminderScheduler(() => {});
  for (const homeId of input.homeIds) {
    const actorId = homeActorId(homeId);
    const shard = shardOf(actorId);
    for (let k = 0; k < input.rulesPerHome; k++) {
      // A flat string of its own per member, as the node's are (decoded from a Redis reply or a journal entry).
      const member = Buffer.from(reminderMember(actorId, `at.${ruleId(k)}.0`)).toString();
      scheduler.set(shard, member, Date.UTC(2099, 0, 1, 3, k));
    }
  }
  const after = await sampleMemory();
  const pending = scheduler.size;
  const per = perItem(before, after, pending);
  scheduler.stop();
  return { heapPerReminder: per.heap, rssPerReminder: per.rss, pending };
}

async function fire(input: SchedulerFireInput): Promise<SchedulerFireOutput> {
  const lateness = LatencyRecorder.create();
  let fired = 0;
  const scheduler = new ReminderScheduler((_shard, _actorId, _name, at) => {
    lateness.record(performance.timeOrigin + performance.now() - at);
    fired++;
  });
  for (let i = 0; i < input.homes; i++) {
    const actorId = homeActorId(`tm-${i}`);
    for (const at of dueTimesIn(cronSlotOf(i, input.periodS), input.from, input.to))
      scheduler.set(0, reminderMember(actorId, `at.t0.${at}`), at);
  }
  // The scheduler's timer is unref'd: this one keeps the process up until the window is over.
  await new Promise((r) => setTimeout(r, Math.max(0, input.to + 1_000 - Date.now())));
  scheduler.stop();
  return { lateness: lateness.encode(), fired };
}

runAsWorker(() => {
  const input = workerInput<ReminderLoadInput | SchedulerMemoryInput | SchedulerFireInput>();
  if (input.mode === 'load') return load(input);
  return input.mode === 'memory' ? memory(input) : fire(input);
});
