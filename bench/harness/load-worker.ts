/**
 * A load process: simulated hubs (and apps) driven by the benchmark runner over IPC, so the load
 * does not share a process with the runner. Started by `LoadWorker.start()` (load-client.ts) as
 * `node --import tsx bench/harness/load-worker.ts`; exits when the runner goes away.
 */
import { Redis } from 'ioredis';
import { BenchHub } from '../ingest/bench-hub.ts';
import { AppCommander } from './app-commander.ts';
import { LatencyRecorder } from './hdr.ts';
import { closeChannels } from './hub-stream.ts';
import type { CommandTally, LoadArgs, LoadOp, LoadReply, LoadRequest, LoadResult } from './load-protocol.ts';
import { NumberedHub } from './numbered-hub.ts';
import { SimLoadHub } from './sim-load-hub.ts';
import { Timeline } from './timeline.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Seeded, so a run's homes behave alike from run to run. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 0x1_0000_0000);
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** One 10 ms ticker for every paced hub of this process. */
const tickables = new Set<{ tick(now: number): void }>();
setInterval(() => {
  const now = performance.now();
  for (const t of tickables) t.tick(now);
}, 10).unref();

let ingest: BenchHub[] = [];
let sims: SimLoadHub[] = [];
let numbered: { hubs: NumberedHub[]; commander: AppCommander; timeline: Timeline; latency: LatencyRecorder } | undefined;

const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);

type Handlers = { [K in LoadOp]: (args: LoadArgs<K>) => Promise<LoadResult<K>> };

const handlers: Handlers = {
  'ingest.connect': async ({ hubs, devices, batch }) => {
    ingest = hubs.map((h) => new BenchHub({ address: h.addresses[h.first % h.addresses.length]!, homeId: h.homeId, hubId: h.hubId, secret: h.secret, devices, batch }));
    await Promise.all(ingest.map((h) => h.connect()));
    return { connected: ingest.length };
  },
  'ingest.flood': async ({ durationMs }) => {
    const before = sum(ingest, (h) => h.acked);
    const t0 = performance.now();
    await Promise.all(ingest.map((h) => h.flood(t0 + durationMs)));
    const elapsedMs = performance.now() - t0;
    const acked = sum(ingest, (h) => h.acked) - before;
    await Promise.all(ingest.map((h) => h.drain()));
    return { acked, errors: sum(ingest, (h) => h.errors), elapsedMs };
  },
  'ingest.paced': async ({ perHubPerSec, durationMs }) => {
    for (const h of ingest) {
      h.latenciesMs.length = 0;
      h.recording = true;
    }
    const before = sum(ingest, (h) => h.acked);
    const t0 = performance.now();
    await Promise.all(ingest.map((h) => h.paced(perHubPerSec, t0 + durationMs)));
    await Promise.all(ingest.map((h) => h.drain()));
    const elapsedMs = performance.now() - t0;
    const latency = LatencyRecorder.create();
    for (const h of ingest) {
      h.recording = false;
      latency.recordAll(h.latenciesMs);
      h.latenciesMs.length = 0;
    }
    return { acked: sum(ingest, (h) => h.acked) - before, errors: sum(ingest, (h) => h.errors), elapsedMs, latency: latency.encode() };
  },
  'ingest.close': async () => {
    for (const h of ingest) h.close();
    const closed = ingest.length;
    ingest = [];
    return { closed };
  },
  fill: async ({ hubs, devices, concurrency }) => {
    const t0 = performance.now();
    let acked = 0;
    let errors = 0;
    await inBatches(hubs, concurrency, async (h) => {
      const hub = new BenchHub({ address: h.addresses[h.first % h.addresses.length]!, homeId: h.homeId, hubId: h.hubId, secret: h.secret, devices, batch: devices });
      await hub.connect();
      hub.sendOnce();
      await hub.drain(60_000);
      acked += hub.acked;
      errors += hub.errors;
      hub.close();
    });
    return { acked, errors, elapsedMs: performance.now() - t0 };
  },
  'sim.connect': async ({ hubs, seed }) => {
    sims = hubs.map((h, i) => new SimLoadHub(h, prng(seed * 7919 + i)));
    await Promise.all(sims.map((h) => h.connect()));
    for (const h of sims) tickables.add(h);
    return { connected: sims.length };
  },
  'sim.run': async ({ perHubPerSec, durationMs, motionEveryMs, record }) => {
    const recorders = record ? { command: LatencyRecorder.create(), ack: LatencyRecorder.create() } : undefined;
    const before = { acked: sum(sims, (h) => h.acked), sent: sum(sims, (h) => h.sent), commands: sum(sims, (h) => h.commands), missed: sum(sims, (h) => h.missed) };
    const t0 = performance.now();
    for (const h of sims) h.begin(perHubPerSec, motionEveryMs, recorders);
    await sleep(durationMs);
    for (const h of sims) h.pause();
    const elapsedMs = performance.now() - t0;
    await Promise.all(sims.map((h) => h.drain()));
    await sleep(100); // commands of the last triggers
    const empty = LatencyRecorder.create().encode();
    return {
      acked: sum(sims, (h) => h.acked) - before.acked,
      sent: sum(sims, (h) => h.sent) - before.sent,
      commands: sum(sims, (h) => h.commands) - before.commands,
      missed: sum(sims, (h) => h.missed) - before.missed,
      errors: sum(sims, (h) => h.errors),
      elapsedMs,
      commandLatency: recorders?.command.encode() ?? empty,
      ackLatency: recorders?.ack.encode() ?? empty,
    };
  },
  'sim.close': async () => {
    for (const h of sims) {
      tickables.delete(h);
      h.close();
    }
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
    for (const h of list) {
      h.start();
      tickables.add(h);
    }
    commander.start();
    return { started: list.length };
  },
  'numbered.mark': async ({ at }) => {
    for (const h of numbered?.hubs ?? []) h.mark(at);
    return { mark: at };
  },
  'numbered.finish': async ({ timeoutMs, commandWaitMs }) => {
    if (!numbered) throw new Error('numbered.finish before numbered.start');
    const { hubs, commander, timeline, latency } = numbered;
    await commander.stop();
    for (const h of hubs) h.finishProducing();
    const deadline = performance.now() + timeoutMs;
    while (hubs.some((h) => !h.caughtUp) && performance.now() < deadline) await sleep(20);
    const delivered = (): Map<string, number[]> => {
      const all = new Map<string, number[]>();
      for (const h of hubs) for (const [id, streams] of h.deliveries) all.set(id, [...(all.get(id) ?? []), ...streams]);
      return all;
    };
    const commandDeadline = performance.now() + commandWaitMs;
    while (commander.accepted.some((c) => !delivered().has(c.commandId)) && performance.now() < commandDeadline) await sleep(50);
    for (const h of hubs) {
      tickables.delete(h);
      h.stop();
    }
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
    const entry = JSON.stringify({ seq: 1, at: Date.now(), msg: { type: 'report', seq: 1, tsMs: Date.now(), attributes: { temperature: 21.5 } } });
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

process.on('message', (raw: unknown) => {
  const req = raw as LoadRequest;
  const handler = handlers[req.op] as ((args: unknown) => Promise<unknown>) | undefined;
  const reply = (r: LoadReply): void => void process.send?.(r);
  if (!handler) return reply({ id: req.id, ok: false, error: `unknown operation ${req.op}` });
  handler(req.args).then(
    (result) => reply({ id: req.id, ok: true, result }),
    (err: unknown) => reply({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
process.on('disconnect', () => {
  closeChannels();
  process.exit(0);
});
process.send?.({ id: 0, ok: true, result: 'ready' } satisfies LoadReply);
