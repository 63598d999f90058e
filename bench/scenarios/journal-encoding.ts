/**
 * What a journal entry costs to encode: JSON (what the Redis store writes today, the baseline)
 * against protobufjs with a schema for the hot entry (a device's `report.batch`) and for a device
 * snapshot, and against protobufjs for a mixed journal where every other message kind rides as
 * JSON bytes inside the protobuf envelope. Throughput of encode, of encode into the ioredis
 * command a window sends, and of decode; bytes per entry; heap allocated per entry; GC time. One
 * child process measures every codec in interleaved slices, so each pair is from the same run.
 */
import type { Figure, Scenario, ScenarioContext, ScenarioResult } from '../harness/scenario.ts';
import { figure, fmt, round, warmedPhases } from '../harness/scenario-kit.ts';
import { runWorker } from '../harness/worker-process.ts';
import type { CodecFigures, JournalCodecInput, JournalCodecOutput, OpKind, PayloadKind } from './support/journal-codec-worker.ts';

const WORKER = 'bench/scenarios/support/journal-codec-worker.ts';

/**
 * Forced GCs for the allocation samples, and a young generation fixed at 16 MB (the most V8 grows
 * it to on 64-bit under steady allocation), so the GC figures do not depend on when it grew.
 */
const NODE_ARGS = ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16'];

/** Entries per ioredis command in the wire measurement (one fenced script call per shard window). */
const WINDOW = 16;

const PAYLOAD_LABEL: Record<PayloadKind, string> = {
  entry: 'journal entry, report.batch (10 reports × 3 attributes)',
  snapshot: 'device snapshot',
  mixed: 'mixed journal (9 in 10 report.batch, the rest JSON inside the envelope)',
};
const OP_LABEL: Record<OpKind, string> = {
  encode: 'encode (value → Redis argument)',
  wire: 'encode into the ioredis command bytes',
  decode: 'decode (bytes read → plain message)',
};

const us = (perSec: number): string => `${(1e6 / perSec).toFixed(2)} µs`;

export const journalEncodingScenario: Scenario = {
  name: 'journal-encoding',
  description: 'journal entries and snapshots: JSON (today) vs protobufjs, encode/decode rate, bytes, allocation and GC, same process',
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    // One phase per payload kind, each codec and op sharing it in interleaved slices.
    const { seconds, warmupSeconds } = warmedPhases(ctx, { seconds: 0.2, warmup: 0.05 }, { divisor: 5, min: 0.3, max: 2 });
    const measured = 3 * seconds;
    const input: JournalCodecInput = {
      seconds: measured,
      warmupSeconds,
      rounds: ctx.smoke ? 2 : Math.max(4, Math.min(20, Math.round(measured * 2))),
      window: WINDOW,
    };
    const bar = ctx.progress('journal-encoding: rounds', input.rounds);
    let out: JournalCodecOutput;
    try {
      out = await runWorker<JournalCodecOutput>(WORKER, input, {
        timeoutMs: (measured + warmupSeconds) * 2_000 + 60_000,
        nodeArgs: NODE_ARGS,
        onMessage: (m) => {
          if (m.type === 'progress') bar.update(m.done);
        },
      });
    } finally {
      bar.stop();
    }

    const of = (payload: PayloadKind, codec: 'json' | 'protobuf'): CodecFigures => {
      const r = out.results.find((x) => x.payload === payload && x.codec === codec);
      if (!r) throw new Error(`journal-encoding: the worker returned no ${codec} figures for ${payload}`);
      return r;
    };
    const figures: Figure[] = [];
    const notes: string[] = [];
    const integrity: Record<string, number> = {};
    for (const payload of ['entry', 'snapshot', 'mixed'] as const) {
      const json = of(payload, 'json');
      const pb = of(payload, 'protobuf');
      const label = PAYLOAD_LABEL[payload];
      const vsJson = (what: string, value: number) => ({ name: `JSON.stringify/parse, ${what}`, value });
      const unit = payload === 'snapshot' ? 'snapshots/s' : 'entries/s';
      for (const op of ['encode', 'wire', 'decode'] as const)
        figures.push(
          figure({ name: `${label}: ${OP_LABEL[op]}, protobufjs`, value: pb.perSec[op], unit, baseline: vsJson(op, json.perSec[op]) }),
        );
      figures.push(
        figure({
          name: `${label}: bytes per entry stored, protobufjs`,
          value: pb.bytes,
          unit: 'bytes',
          baseline: vsJson('bytes', json.bytes),
        }),
      );
      for (const op of ['wire', 'decode'] as const)
        figures.push(
          figure({
            name: `${label}: heap allocated per entry, ${OP_LABEL[op]}, protobufjs`,
            value: pb.allocBytes[op],
            unit: 'bytes',
            baseline: vsJson(`heap allocated, ${op}`, json.allocBytes[op]),
          }),
        );
      // GC per entry, not per second: a codec that runs faster would otherwise look GC-heavier. A
      // run too short to see a GC pause in the baseline (smoke) gets no figure: it has no ratio.
      const gcPerMillion = (r: CodecFigures): number => (r.gcMsPerSec.wire / r.perSec.wire) * 1e6;
      if (gcPerMillion(json) > 0 && gcPerMillion(pb) > 0)
        figures.push(
          figure({
            name: `${label}: GC time per million entries encoded into the command, protobufjs`,
            value: gcPerMillion(pb),
            unit: 'ms',
            baseline: vsJson('GC time per million entries', gcPerMillion(json)),
          }),
        );
      notes.push(
        `${label}: per entry JSON ${us(json.perSec.wire)} to the wire + ${us(json.perSec.decode)} back, ${fmt(json.bytes)} B; protobufjs ${us(pb.perSec.wire)} + ${us(pb.perSec.decode)}, ${fmt(pb.bytes)} B (${Math.round((pb.bytes / json.bytes) * 100)}% of JSON). GC ms per s of encoding to the wire: JSON ${round(json.gcMsPerSec.wire)}, protobufjs ${round(pb.gcMsPerSec.wire)}.`,
      );
      integrity[`${payload}JsonRoundTripMismatches`] = json.roundTripMismatches;
      integrity[`${payload}ProtobufRoundTripMismatches`] = pb.roundTripMismatches;
    }
    notes.push(
      `Encode = the value the store has → the argument it hands ioredis (JSON: a string; protobufjs: the Buffer of Writer.finish(), after turning attribute values into Value messages). Encode into the command = the same for a window of ${WINDOW} entries plus ioredis' own Command.toWritable for the EVALSHA (keys, fence token, counts) and, for a string command, the UTF-8 encoding the socket write does; one Buffer argument switches ioredis to its buffer mode, which copies every argument into one Buffer. Decode = the bytes as they come off the socket → the plain {seq, at, msg} or {seq, state} the reducer takes (JSON: utf8 slice + JSON.parse; protobufjs: decode, then Value messages back to numbers/booleans/strings and optional fields by presence).`,
      'Schema by protobufjs reflection (Root.fromJSON): seq as uint32 and times as doubles (int64 would decode to Long objects); a mixed journal carries non-hot kinds (command.issue/result, hub.connection, shadow.setDesired) as JSON bytes in the envelope. Every codec round-trips every fixture to a deep-equal value before it is timed (counts in the integrity table).',
      `Heap allocated: used-heap delta over a batch after a forced GC (median of 7, samples a scavenge ran in dropped); Buffers from the pool count only their views. GC time: PerformanceObserver gc entries inside the measured slices. ${input.rounds} interleaved rounds over ${round(measured)} s (order reversed every other round), ${warmupSeconds} s warm-up.${ctx.smoke ? ' Smoke: the timings mean nothing.' : ''}`,
      `Sample hot entry (JSON): ${out.reportBatchJson.length} chars.`,
      "Why protobufjs allocates more: its Writer records every field written as an operation object (plus a state object per nested message or map entry) before finish() copies them into a Buffer, and a map value of number|boolean|string becomes a Value message each way; V8's JSON.stringify/parse build the string or objects directly.",
    );
    return { scenario: 'journal-encoding', figures, integrity, notes };
  },
};
