/**
 * The operations a load worker (bench/harness/load-worker.ts, a child process) serves the runner
 * over the benchmarks' one child-process protocol (worker-process.ts): one request per operation,
 * one reply each. Latencies travel as HDR histograms encoded as compressed base64 strings;
 * timelines as encoded buckets.
 */

/** One simulated hub (one home each). */
export interface HubSpec {
  readonly homeId: string;
  readonly hubId: string;
  readonly secret: string;
  /** gRPC addresses (host:port); the hub connects to `addresses[first]` and, after a failed stream, to the next ones in turn. */
  readonly addresses: readonly string[];
  readonly first: number;
  /** An app token granted this home (read, control), for app traffic. */
  readonly appToken?: string;
}

/** Per-bucket acks and ack latencies of a run, relative to the run's t0. */
export interface EncodedTimeline {
  readonly bucketMs: number;
  /** [bucket index, acked reports, encoded latency histogram]. */
  readonly buckets: readonly (readonly [number, number, string])[];
}

export interface PhaseStats {
  readonly acked: number;
  readonly errors: number;
  readonly elapsedMs: number;
}

/** What one numbered hub did over a resize / failover run. */
export interface NumberedHubResult {
  readonly homeId: string;
  readonly produced: number;
  readonly highestAck: number;
  /** Reports written, re-sends included. */
  readonly reportsSent: number;
  readonly streams: number;
  readonly errors: readonly string[];
  /** Per mark: ms from the mark until the first ack covering a report produced after it (null: never). */
  readonly servedAfterMs: readonly (number | null)[];
}

export interface CommandTally {
  /** Commands the apps got a 202 for. */
  readonly accepted: number;
  /** Of those, how many needed more than one POST (same Idempotency-Key). */
  readonly resent: number;
  /** POSTs that never got a 202 within their attempts. */
  readonly refused: number;
  /** Accepted commands that never reached their hub. */
  readonly lost: readonly { readonly homeId: string; readonly commandId: string }[];
  /** Command ids delivered to a hub more than once. */
  readonly duplicated: readonly string[];
  /** Of those, how many came again only on a later stream (after a reconnect: at-least-once delivery of a command whose result may not have arrived). */
  readonly redeliveredAfterReconnect: number;
  /** Of those, how many the app had POSTed more than once (same Idempotency-Key) before it got its 202. */
  readonly duplicatedAfterAppRetry: number;
  /** Command messages received by the hubs. */
  readonly deliveries: number;
}

/** Every operation: its arguments and its result. */
export interface LoadOps {
  /** Hubs that keep their window full / pace a rate, all reports to `devices` climate sensors (climate-hub.ts). */
  'ingest.connect': { args: { hubs: HubSpec[]; devices: number; batch: number }; result: { connected: number } };
  'ingest.flood': { args: { durationMs: number }; result: PhaseStats };
  'ingest.paced': { args: { perHubPerSec: number; durationMs: number }; result: PhaseStats & { latency: string } };
  'ingest.close': { args: Record<string, never>; result: { closed: number } };
  /** Each hub sends one report to each of its `devices` devices (they become resident actors), waits for the ack, closes. */
  fill: { args: { hubs: HubSpec[]; devices: number; concurrency: number }; result: PhaseStats };
  /** Realistic homes (tools/hub-sim) with the motion → light rule. */
  'sim.connect': { args: { hubs: HubSpec[]; seed: number }; result: { connected: number } };
  'sim.run': {
    args: { perHubPerSec: number; durationMs: number; motionEveryMs: number; record: boolean };
    result: PhaseStats & { sent: number; commands: number; missed: number; commandLatency: string; ackLatency: string };
  };
  'sim.close': { args: Record<string, never>; result: { closed: number } };
  /** Resilient hubs streaming numbered reports, and apps sending commands, until `numbered.finish`. */
  'numbered.start': {
    args: { hubs: HubSpec[]; perHubPerSec: number; batch: number; t0: number; bucketMs: number; http: string[]; commandsPerSec: number };
    result: { started: number };
  };
  /** Remembers what each hub has produced now: `servedAfterMs` is measured from here. */
  'numbered.mark': { args: { at: number }; result: { mark: number } };
  /** From now on the hubs' next streams go to `grpc` and the apps' POSTs to `http` (a node was killed or joined). */
  'numbered.retarget': { args: { grpc: string[]; http: string[] }; result: { hubs: number } };
  /** Per hub, ms from mark `mark` (0 = the first) until it was served again; null: not yet. */
  'numbered.served': { args: { mark: number }; result: { hubs: { homeId: string; servedAfterMs: number | null }[] } };
  'numbered.finish': {
    args: { timeoutMs: number; commandWaitMs: number };
    result: { hubs: NumberedHubResult[]; commands: CommandTally; timeline: EncodedTimeline; latency: string };
  };
  /** The raw ioredis baseline: pipelines of RPUSH of one journal-sized entry. */
  'redis.pipeline': { args: { url: string; durationMs: number; pipeline: number }; result: { ops: number; elapsedMs: number } };
}

export type LoadOp = keyof LoadOps;
export type LoadArgs<K extends LoadOp> = LoadOps[K]['args'];
export type LoadResult<K extends LoadOp> = LoadOps[K]['result'];
