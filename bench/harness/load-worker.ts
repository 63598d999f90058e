/**
 * A load process: simulated hubs (and apps) driven by the benchmark runner over IPC, so the load
 * does not share a process with the runner. Started by `LoadPool.start()` (load-client.ts, worker-pool.ts);
 * exits when the runner goes away.
 */
import { Redis } from 'ioredis';
import { closeSharedChannels } from '../../tools/hub-client/hub-client.ts';
import type { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';
import { SimHub } from '../../tools/hub-sim/sim-hub.ts';
import { AppCommander } from './app-commander.ts';
import { climateHub } from './climate-hub.ts';
import { LatencyRecorder } from './hdr.ts';
import type { CommandTally, LoadArgs, LoadOp, LoadResult } from './load-protocol.ts';
import { addressOf, NumberedHub } from './numbered-hub.ts';
import { Timeline } from './timeline.ts';
import { serveRequests } from './worker-process.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Seeded, so a run's homes behave alike from run to run. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 0x1_0000_0000;
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

let ingest: ResilientHub[] = [];
let ingestBatch = 1;
/** Where the ingest hubs' ack latencies go while a paced phase records. */
let ingestLatency: LatencyRecorder | undefined;
let sims: SimHub[] = [];
let numbered: { hubs: NumberedHub[]; commander: AppCommander; timeline: Timeline; latency: LatencyRecorder } | undefined;

const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);

type Handlers = { [K in LoadOp]: (args: LoadArgs<K>) => Promise<LoadResult<K>> };

const handlers: Handlers = {
  'ingest.connect': async ({ hubs, devices, batch }) => {
    // A channel (HTTP/2 connection) per hub: many hubs flooding over one shared connection measure its flow control.
    ingestBatch = batch;
    ingest = hubs.map((h) =>
      climateHub(h, devices, { batch, onReportAcked: (_seq, sentAt, ackedAt) => ingestLatency?.record(ackedAt - sentAt) }),
    );
    await Promise.all(ingest.map((h) => h.welcomed()));
    return { connected: ingest.length };
  },
  'ingest.flood': async ({ durationMs }) => {
    const before = sum(ingest, (h) => h.highestAck);
    const t0 = performance.now();
    for (const h of ingest) h.pace(Infinity);
    await sleep(durationMs);
    for (const h of ingest) h.pace(0);
    const elapsedMs = performance.now() - t0;
    const acked = sum(ingest, (h) => h.highestAck) - before;
    await Promise.all(ingest.map((h) => h.drain()));
    return { acked, errors: sum(ingest, (h) => h.errorCount), elapsedMs };
  },
  'ingest.paced': async ({ perHubPerSec, durationMs }) => {
    const latency = LatencyRecorder.create();
    ingestLatency = latency;
    const before = sum(ingest, (h) => h.highestAck);
    const t0 = performance.now();
    // One full batch per message, as a hub batching its devices' readings would send them.
    for (const h of ingest) h.pace(perHubPerSec, (1000 * ingestBatch) / perHubPerSec);
    await sleep(durationMs);
    for (const h of ingest) h.pace(0);
    await Promise.all(ingest.map((h) => h.drain()));
    const elapsedMs = performance.now() - t0;
    ingestLatency = undefined;
    return {
      acked: sum(ingest, (h) => h.highestAck) - before,
      errors: sum(ingest, (h) => h.errorCount),
      elapsedMs,
      latency: latency.encode(),
    };
  },
  'ingest.close': async () => {
    for (const h of ingest) h.stop();
    const closed = ingest.length;
    ingest = [];
    return { closed };
  },
  fill: async ({ hubs, devices, concurrency }) => {
    const t0 = performance.now();
    let acked = 0;
    let errors = 0;
    await inBatches(hubs, concurrency, async (h) => {
      const hub = climateHub(h, devices, { total: devices, batch: devices, ratePerSec: Infinity, sharedChannel: true });
      try {
        await hub.run(60_000);
      } finally {
        hub.stop();
        acked += hub.highestAck;
        errors += hub.errorCount;
      }
    });
    return { acked, errors, elapsedMs: performance.now() - t0 };
  },
  'sim.connect': async ({ hubs, seed }) => {
    // Every flush sends all that is due in one message (the window still bounds it).
    sims = hubs.map(
      (h, i) =>
        new SimHub({
          address: addressOf(h),
          homeId: h.homeId,
          hubId: h.hubId,
          secret: h.secret,
          rand: prng(seed * 7919 + i),
          batch: 1_000,
          sharedChannel: true,
        }),
    );
    await Promise.all(sims.map((s) => s.hub.welcomed()));
    return { connected: sims.length };
  },
  'sim.run': async ({ perHubPerSec, durationMs, motionEveryMs, record }) => {
    const sinks = record ? { command: LatencyRecorder.create(), ack: LatencyRecorder.create() } : undefined;
    const before = {
      acked: sum(sims, (h) => h.acked),
      sent: sum(sims, (h) => h.sent),
      commands: sum(sims, (h) => h.commands),
      missed: sum(sims, (h) => h.missed),
    };
    const t0 = performance.now();
    for (const h of sims) h.begin(perHubPerSec, motionEveryMs, sinks);
    await sleep(durationMs);
    for (const h of sims) h.pause();
    const elapsedMs = performance.now() - t0;
    await Promise.all(sims.map((h) => h.hub.drain()));
    await sleep(100); // commands of the last triggers
    const empty = LatencyRecorder.create().encode();
    return {
      acked: sum(sims, (h) => h.acked) - before.acked,
      sent: sum(sims, (h) => h.sent) - before.sent,
      commands: sum(sims, (h) => h.commands) - before.commands,
      missed: sum(sims, (h) => h.missed) - before.missed,
      errors: sum(sims, (h) => h.errors),
      elapsedMs,
      commandLatency: sinks?.command.encode() ?? empty,
      ackLatency: sinks?.ack.encode() ?? empty,
    };
  },
  'sim.close': async () => {
    for (const h of sims) h.hub.stop();
    const closed = sims.length;
    sims = [];
    return { closed };
  },
  'numbered.start': async ({ hubs, perHubPerSec, batch, t0, bucketMs, http, commandsPerSec }) => {
    const timeline = new Timeline(t0, bucketMs);
    const latency = LatencyRecorder.create();
    const list = hubs.map((h) => new NumberedHub(h, perHubPerSec, batch, timeline, latency));
    const commander = new AppCommander(hubs, http, commandsPerSec, `w${process.pid}`);
    numbered = { hubs: list, commander, timeline, latency };
    for (const h of list) h.hub.start();
    commander.start();
    return { started: list.length };
  },
  'numbered.mark': async ({ at }) => {
    for (const h of numbered?.hubs ?? []) h.mark(at);
    return { mark: at };
  },
  'numbered.retarget': async ({ grpc, http }) => {
    for (const h of numbered?.hubs ?? []) h.retarget(grpc);
    numbered?.commander.retarget(http);
    return { hubs: numbered?.hubs.length ?? 0 };
  },
  'numbered.served': async ({ mark }) => ({
    hubs: (numbered?.hubs ?? []).map((h) => ({ homeId: h.spec.homeId, servedAfterMs: h.servedAfter(mark) })),
  }),
  'numbered.finish': async ({ timeoutMs, commandWaitMs }) => {
    if (!numbered) throw new Error('numbered.finish before numbered.start');
    const { hubs, commander, timeline, latency } = numbered;
    await commander.stop();
    // Each hub stops producing and re-sends until everything it produced is acked; the streams stay
    // open for the commands still on their way (stopped after the wait below).
    for (const h of hubs) h.hub.pace(0);
    await Promise.all(hubs.map((h) => h.hub.drain(timeoutMs)));
    const delivered = (): Map<string, number[]> => {
      const all = new Map<string, number[]>();
      for (const h of hubs) for (const [id, streams] of h.deliveries) all.set(id, [...(all.get(id) ?? []), ...streams]);
      return all;
    };
    const commandDeadline = performance.now() + commandWaitMs;
    while (commander.accepted.some((c) => !delivered().has(c.commandId)) && performance.now() < commandDeadline) await sleep(50);
    for (const h of hubs) h.hub.stop();
    const deliveries = delivered();
    const commands: CommandTally = {
      accepted: commander.accepted.length,
      resent: commander.accepted.filter((c) => c.attempts > 1).length,
      refused: commander.refused,
      lost: commander.accepted.filter((c) => !deliveries.has(c.commandId)).map((c) => ({ homeId: c.homeId, commandId: c.commandId })),
      duplicated: [...deliveries].filter(([, s]) => s.length > 1).map(([id]) => id),
      duplicatedAfterAppRetry: commander.accepted.filter((c) => c.attempts > 1 && (deliveries.get(c.commandId)?.length ?? 0) > 1).length,
      redeliveredAfterReconnect: [...deliveries.values()].filter((s) => s.length > 1 && new Set(s).size === s.length).length,
      deliveries: [...deliveries.values()].reduce((a, s) => a + s.length, 0),
    };
    numbered = undefined;
    return { hubs: hubs.map((h) => h.result()), commands, timeline: timeline.encode(), latency: latency.encode() };
  },
  'redis.pipeline': async ({ url, durationMs, pipeline }) => {
    const client = new Redis(url);
    const entry = JSON.stringify({
      seq: 1,
      at: Date.now(),
      msg: { type: 'report', seq: 1, tsMs: Date.now(), attributes: { temperature: 21.5 } },
    });
    const keys = Array.from({ length: 64 }, (_, i) => `bench-raw:{${i}}:j`);
    let ops = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < durationMs) {
      const p = client.pipeline();
      for (let i = 0; i < pipeline; i++) p.rpush(keys[i % keys.length]!, entry);
      await p.exec();
      ops += pipeline;
      if (ops % (50 * pipeline) === 0) await client.del(...keys);
    }
    const elapsedMs = performance.now() - t0;
    await client.del(...keys);
    client.disconnect();
    return { ops, elapsedMs };
  },
};

serveRequests((op, args) => {
  const handler = handlers[op as LoadOp] as ((args: unknown) => Promise<unknown>) | undefined;
  return handler ? handler(args) : Promise.reject(new Error(`unknown operation ${op}`));
}, closeSharedChannels);
