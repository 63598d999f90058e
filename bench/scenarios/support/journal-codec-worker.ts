/**
 * The journal-encoding scenario's child process (started with `--expose-gc` and a fixed young
 * generation): JSON against protobufjs for what the Redis store writes — journal entries
 * `{seq, at, msg}` and snapshots `{seq, state}` — in one process, each codec measured in
 * interleaved slices so that JIT warm-up and machine noise fall on every codec alike.
 *
 * Per codec and payload it measures: encode (value → the Redis argument: a string for JSON, a
 * Buffer for protobuf), encode to the wire (the same plus ioredis' own `Command.toWritable` for a
 * window of entries and, for a string command, the UTF-8 encoding the socket does), decode from
 * the wire (bytes as read → the plain object the reducer takes), bytes per entry, heap bytes
 * allocated per entry (forced GC, then used-heap delta over a batch the young generation holds)
 * and the GC time inside each measured slice. Every codec's round trip is checked against the
 * original value first: a codec that loses data is reported, not timed as if it were right.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { Command } from 'ioredis';
import protobuf from 'protobufjs';
import type { CommandRecord, DeviceMsg, DeviceState } from '../../../actors/device-state.ts';
import type { Value } from '../../../actors/types.ts';
import type { JournalEntry, Snapshot } from '../../../runtime/persistence-port.ts';
import { runAsWorker, toParent, workerInput } from '../../harness/worker-process.ts';
import { deviceStateOf } from './device-fixture.ts';

export type PayloadKind = 'entry' | 'snapshot' | 'mixed';
export type CodecKind = 'json' | 'protobuf';
export type OpKind = 'encode' | 'wire' | 'decode';

export interface JournalCodecInput {
  /** Measured seconds in all, shared by every (payload, codec, op) slice. */
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Interleaved rounds the seconds are cut into. */
  readonly rounds: number;
  /** Entries per window handed to ioredis' Command in the wire measurement. */
  readonly window: number;
}

export interface CodecFigures {
  readonly payload: PayloadKind;
  readonly codec: CodecKind;
  /** Entries (or snapshots) per second, per op. */
  readonly perSec: Readonly<Record<OpKind, number>>;
  /** Milliseconds of GC per second of each op's slices (0..1000). */
  readonly gcMsPerSec: Readonly<Record<OpKind, number>>;
  /** Heap bytes allocated per entry, per op (median of samples with no GC inside). */
  readonly allocBytes: Readonly<Record<OpKind, number>>;
  /** Encoded bytes per entry as sent (UTF-8 bytes of the JSON string, protobuf bytes). */
  readonly bytes: number;
  readonly roundTripMismatches: number;
}

export interface JournalCodecOutput {
  readonly results: readonly CodecFigures[];
  readonly mixedShareOfHot: number;
  readonly reportBatchJson: string;
}

// ---------------------------------------------------------------------------------------------
// The schema (reflection, no generated code). seq fields are uint32 and times are doubles: int64
// would decode to `Long` objects (the `long` package is installed), which costs allocation on the
// very path being measured; a production schema needs a 53-bit seq (double or fixed64 read as a
// number) — the byte figures below would grow by a few bytes per entry.
const SCHEMA = {
  nested: {
    Value: {
      oneofs: { kind: { oneof: ['number', 'bool', 'string'] } },
      fields: { number: { type: 'double', id: 1 }, bool: { type: 'bool', id: 2 }, string: { type: 'string', id: 3 } },
    },
    ReportItem: {
      fields: {
        seq: { type: 'uint32', id: 1 },
        tsMs: { type: 'double', id: 2 },
        attributes: { keyType: 'string', type: 'Value', id: 3 },
        event: { type: 'string', id: 4 },
      },
    },
    ReportBatch: { fields: { items: { rule: 'repeated', type: 'ReportItem', id: 1 } } },
    /** A journal entry: the hot message kind typed, every other kind as its JSON in `json`. */
    Entry: {
      oneofs: { body: { oneof: ['reportBatch', 'json'] } },
      fields: {
        seq: { type: 'uint32', id: 1 },
        at: { type: 'double', id: 2 },
        reportBatch: { type: 'ReportBatch', id: 3 },
        json: { type: 'bytes', id: 15 },
      },
    },
    Reported: { fields: { value: { type: 'Value', id: 1 }, ts: { type: 'double', id: 2 } } },
    Source: { fields: { kind: { type: 'string', id: 1 }, ruleId: { type: 'string', id: 2 } } },
    CommandRecord: {
      fields: {
        commandId: { type: 'string', id: 1 },
        name: { type: 'string', id: 2 },
        params: { keyType: 'string', type: 'Value', id: 3 },
        status: { type: 'string', id: 4 },
        createdAt: { type: 'double', id: 5 },
        expiresAtMs: { type: 'double', id: 6 },
        depth: { type: 'uint32', id: 7 },
        source: { type: 'Source', id: 8 },
        issueNo: { type: 'uint32', id: 9 },
        sentAt: { type: 'double', id: 10 },
        completedAt: { type: 'double', id: 11 },
        error: { type: 'string', id: 12 },
      },
    },
    Causal: { fields: { depth: { type: 'uint32', id: 1 }, untilMs: { type: 'double', id: 2 } } },
    Watch: {
      fields: {
        attributes: { rule: 'repeated', type: 'string', id: 1 },
        events: { rule: 'repeated', type: 'string', id: 2 },
        values: { rule: 'repeated', type: 'string', id: 3 },
      },
    },
    DeviceState: {
      fields: {
        homeId: { type: 'string', id: 1 },
        deviceId: { type: 'string', id: 2 },
        hubId: { type: 'string', id: 3 },
        type: { type: 'string', id: 4 },
        capabilities: { rule: 'repeated', type: 'string', id: 5 },
        reported: { keyType: 'string', type: 'Reported', id: 6 },
        desired: { keyType: 'string', type: 'Value', id: 7 },
        version: { type: 'uint32', id: 8 },
        online: { type: 'bool', id: 9 },
        hubOnline: { type: 'bool', id: 10 },
        lastSeen: { type: 'double', id: 11 },
        lastSeq: { type: 'uint32', id: 12 },
        recentSeqs: { rule: 'repeated', type: 'uint32', id: 13, options: { packed: true } },
        commands: { keyType: 'string', type: 'CommandRecord', id: 14 },
        causal: { type: 'Causal', id: 15 },
        watch: { type: 'Watch', id: 16 },
      },
    },
    DeviceSnapshot: { fields: { seq: { type: 'uint32', id: 1 }, state: { type: 'DeviceState', id: 2 } } },
  },
};

const root = protobuf.Root.fromJSON(SCHEMA);
const EntryType = root.lookupType('Entry');
const SnapshotType = root.lookupType('DeviceSnapshot');

type PbValue = { number?: number; bool?: boolean; string?: string; kind?: string };
type Obj = Record<string, unknown>;
const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

const toPbValue = (v: Value): PbValue => (typeof v === 'number' ? { number: v } : typeof v === 'boolean' ? { bool: v } : { string: v });
const fromPbValue = (v: PbValue): Value => v[v.kind as 'number' | 'bool' | 'string']!;

function valueMapToPb(m: Readonly<Record<string, Value>>): Record<string, PbValue> {
  const out: Record<string, PbValue> = {};
  for (const k in m) out[k] = toPbValue(m[k]!);
  return out;
}
function valueMapFromPb(m: Record<string, PbValue>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const k in m) out[k] = fromPbValue(m[k]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Codecs: value → Redis argument, and bytes as read from the socket → value.

interface Codec<T> {
  encode(v: T): string | Buffer;
  decode(b: Buffer): T;
}

const jsonCodec: Codec<unknown> = {
  encode: (v) => JSON.stringify(v),
  // ioredis hands string replies over as the parser's utf8 slice of the socket buffer.
  decode: (b) => JSON.parse(b.toString('utf8')) as unknown,
};

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

const protobufEntryCodec: Codec<JournalEntry> = {
  encode(e) {
    const msg = e.msg as DeviceMsg;
    const body: Obj =
      msg.type === 'report.batch'
        ? {
            reportBatch: {
              items: msg.items.map((it) => ({
                seq: it.seq,
                tsMs: it.tsMs,
                attributes: valueMapToPb(it.attributes),
                ...(it.event !== undefined ? { event: it.event } : {}),
              })),
            },
          }
        : { json: utf8.encode(JSON.stringify(msg)) };
    return EntryType.encode({ seq: e.seq, at: e.at, ...body }).finish() as Buffer;
  },
  decode(b) {
    const m = EntryType.decode(b) as unknown as {
      seq: number;
      at: number;
      body?: string;
      reportBatch?: { items: Obj[] };
      json?: Uint8Array;
    };
    let msg: unknown;
    if (m.body === 'reportBatch') {
      msg = {
        type: 'report.batch',
        items: m.reportBatch!.items.map((it) => ({
          seq: it.seq as number,
          tsMs: it.tsMs as number,
          attributes: valueMapFromPb(it.attributes as Record<string, PbValue>),
          ...(own(it, 'event') ? { event: it.event as string } : {}),
        })),
      };
    } else if (m.body === 'json') {
      msg = JSON.parse(utf8Decoder.decode(m.json)) as unknown;
    } else throw new Error(`journal entry ${m.seq} has no body`);
    return { seq: m.seq, at: m.at, msg };
  },
};

function commandToPb(c: CommandRecord): Obj {
  return { ...c, params: valueMapToPb(c.params), source: c.source };
}
function commandFromPb(c: Obj): CommandRecord {
  const out: Obj = {
    commandId: c.commandId,
    name: c.name,
    params: valueMapFromPb(c.params as Record<string, PbValue>),
    status: c.status,
    createdAt: c.createdAt,
    expiresAtMs: c.expiresAtMs,
    depth: c.depth,
    source: own(c.source as object, 'ruleId') ? { kind: 'rule', ruleId: (c.source as Obj).ruleId } : { kind: 'app' },
    issueNo: c.issueNo,
  };
  for (const k of ['sentAt', 'completedAt', 'error']) if (own(c, k)) out[k] = c[k];
  return out as unknown as CommandRecord;
}

const protobufSnapshotCodec: Codec<Snapshot> = {
  encode(snap) {
    const s = snap.state as DeviceState;
    const reported: Record<string, Obj> = {};
    for (const k in s.reported) reported[k] = { value: toPbValue(s.reported[k]!.value), ts: s.reported[k]!.ts };
    const commands: Record<string, Obj> = {};
    for (const k in s.commands) commands[k] = commandToPb(s.commands[k]!);
    const state = { ...s, reported, desired: valueMapToPb(s.desired), commands };
    return SnapshotType.encode({ seq: snap.seq, state }).finish() as Buffer;
  },
  decode(b) {
    const m = SnapshotType.decode(b) as unknown as { seq: number; state: Obj };
    const s = m.state;
    const reported: Record<string, { value: Value; ts: number }> = {};
    for (const [k, r] of Object.entries(s.reported as Record<string, { value: PbValue; ts: number }>))
      reported[k] = { value: fromPbValue(r.value), ts: r.ts };
    const commands: Record<string, CommandRecord> = {};
    for (const [k, c] of Object.entries(s.commands as Record<string, Obj>)) commands[k] = commandFromPb(c);
    const state: Obj = {
      homeId: s.homeId,
      deviceId: s.deviceId,
      capabilities: s.capabilities,
      reported,
      desired: valueMapFromPb(s.desired as Record<string, PbValue>),
      version: s.version,
      online: s.online,
      hubOnline: s.hubOnline,
      lastSeq: s.lastSeq,
      recentSeqs: s.recentSeqs,
      commands,
    };
    for (const k of ['hubId', 'type', 'lastSeen']) if (own(s, k)) state[k] = s[k];
    if (own(s, 'causal')) state.causal = { depth: (s.causal as Obj).depth, untilMs: (s.causal as Obj).untilMs };
    if (own(s, 'watch')) {
      const w = s.watch as Obj;
      state.watch = { attributes: w.attributes, events: w.events, values: w.values };
    }
    return { seq: m.seq, state };
  },
};

// ---------------------------------------------------------------------------------------------
// Fixtures: what a node at 20,000 reports/s journals.

const NOW = 1_790_000_000_000;

/** The hot entry: a thermostat's report.batch of 10 reports × 3 attributes (number, boolean, string). */
export function reportBatchEntry(seq: number): JournalEntry {
  const items = Array.from({ length: 10 }, (_, k) => ({
    seq: 1_234_567 + seq * 10 + k,
    tsMs: NOW + seq * 1_000 + k * 100,
    attributes: { temperature: 20 + ((seq + k) % 50) / 10, occupancy: (seq + k) % 3 === 0, hvac: k % 2 === 0 ? 'idle' : 'heating' },
  }));
  const msg: DeviceMsg = { type: 'report.batch', items };
  return { seq, at: NOW + seq * 1_000 + 7, msg };
}

/** The other kinds a device journals, for the mixed journal. */
function otherEntry(seq: number, i: number): JournalEntry {
  const at = NOW + seq * 1_000 + 3;
  const msgs: DeviceMsg[] = [
    {
      type: 'command.issue',
      commandId: `rule-r7-${seq}`,
      name: 'setpoint',
      params: { heat: 21.5, mode: 'heat' },
      ttlMs: 30_000,
      depth: 1,
      source: { kind: 'rule', ruleId: 'r7' },
    },
    { type: 'command.result', commandId: `rule-r7-${seq - 1}`, ok: true },
    { type: 'hub.connection', online: true, hubId: 'hub1' },
    { type: 'shadow.setDesired', desired: { heat: 22, away: false }, ifVersion: seq },
  ];
  return { seq, at, msg: msgs[i % msgs.length]! };
}

/** A resident device's snapshot: 5 reported attributes, desired values, 32 recent seqs, a command history and watch. */
export function deviceSnapshot(): Snapshot {
  const base = deviceStateOf(17, 40, NOW);
  const commands: Record<string, CommandRecord> = {};
  for (let c = 1; c <= 6; c++) {
    const id = `app-${c}-7f3a9c`;
    commands[id] = {
      commandId: id,
      name: 'setpoint',
      params: { heat: 20 + c / 2, mode: 'heat' },
      status: c < 6 ? 'succeeded' : 'sent',
      createdAt: NOW + c * 60_000,
      expiresAtMs: NOW + c * 60_000 + 30_000,
      depth: c % 2,
      source: c % 2 === 0 ? { kind: 'app' } : { kind: 'rule', ruleId: 'r7' },
      issueNo: c,
      sentAt: NOW + c * 60_000 + 5,
      ...(c < 6 ? { completedAt: NOW + c * 60_000 + 180 } : {}),
    };
  }
  const state: DeviceState = {
    ...base,
    desired: { heat: 21.5, mode: 'heat' },
    commands,
    watch: { attributes: ['humidity', 'temperature'], events: [], values: ['temperature'] },
  };
  return { seq: 40, state };
}

const MIXED_HOT_EVERY = 10; // 9 of every 10 entries are report.batch

function payloads(kind: PayloadKind): unknown[] {
  if (kind === 'snapshot') return [deviceSnapshot()];
  if (kind === 'entry') return Array.from({ length: 64 }, (_, i) => reportBatchEntry(1_000 + i));
  return Array.from({ length: 64 }, (_, i) => (i % MIXED_HOT_EVERY === 9 ? otherEntry(1_000 + i, i) : reportBatchEntry(1_000 + i)));
}

function codecFor(payload: PayloadKind, codec: CodecKind): Codec<unknown> {
  if (codec === 'json') return jsonCodec;
  return payload === 'snapshot' ? protobufSnapshotCodec : protobufEntryCodec;
}

const wireBytes = (arg: string | Buffer): Buffer => (typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg);

// ---------------------------------------------------------------------------------------------
// Measurement.

let sink = 0;

interface Bench {
  readonly payload: PayloadKind;
  readonly codec: CodecKind;
  /** Runs at least `n` operations of `op` (wire: whole windows), returns how many; `sink` keeps the work alive. */
  run(op: OpKind, n: number): number;
}

function makeBench(payload: PayloadKind, codec: CodecKind, window: number): Bench {
  const values = payloads(payload);
  const c = codecFor(payload, codec);
  const encoded = values.map((v) => wireBytes(c.encode(v)));
  const keys = Array.from({ length: window }, (_, i) => `iot:{s17}:journal:device:h17:d${i}`);
  let i = 0;
  const next = (): number => (i = (i + 1) % values.length);
  return {
    payload,
    codec,
    run(op, n) {
      if (op === 'encode') {
        for (let k = 0; k < n; k++) sink += c.encode(values[next()]).length;
        return n;
      } else if (op === 'decode') {
        for (let k = 0; k < n; k++) sink += (c.decode(encoded[next()]!) as { seq: number }).seq;
        return n;
      } else {
        // A window as the store sends it: token, then per actor (count, first, snapSeq, snapshot, entry).
        let done = 0;
        for (; done < n; done += window) {
          const args: (string | Buffer)[] = ['sha1-of-fenced-write', String(1 + window), 'iot:{s17}:fence', '42'];
          for (let w = 0; w < window; w++) {
            const arg = c.encode(values[next()]);
            if (payload === 'snapshot') args.push('0', '', '40', arg);
            else args.push('1', '1000', '', '', arg);
          }
          for (const k of keys) args.push(k);
          const cmd = new Command('evalsha', args, { replyEncoding: 'utf8' });
          // Never sent: its promise never settles, and the ioredis serialiser is what is timed.
          const out = cmd.toWritable(undefined as never);
          // A string command is UTF-8 encoded by the socket write: count that encoding too.
          sink += typeof out === 'string' ? Buffer.from(out, 'utf8').length : out.length;
        }
        return done;
      }
    },
  };
}

const gcApi = (): (() => void) => {
  const f = (globalThis as { gc?: () => void }).gc;
  if (!f) throw new Error('global.gc is missing: start the worker with --expose-gc');
  return f;
};

/** GC pauses (start, duration in ms) seen by a PerformanceObserver: delivered later, matched to slices by time. */
class GcLog {
  readonly pauses: { start: number; duration: number }[] = [];
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.pauses.push({ start: e.startTime, duration: e.duration });
  });
  constructor() {
    this.obs.observe({ entryTypes: ['gc'] });
  }
  within(from: number, to: number): number {
    let ms = 0;
    for (const p of this.pauses) if (p.start >= from && p.start < to) ms += p.duration;
    return ms;
  }
  stop(): void {
    this.obs.disconnect();
  }
}

const OPS: readonly OpKind[] = ['encode', 'wire', 'decode'];
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Ops in a slice of about `ms` milliseconds, run in chunks of `chunk` so the clock is read rarely. */
function slice(b: Bench, op: OpKind, ms: number, chunk: number): { n: number; from: number; to: number } {
  const from = performance.now();
  let n = 0;
  let now = from;
  while (now - from < ms) {
    n += b.run(op, chunk);
    now = performance.now();
  }
  return { n, from, to: now };
}

/** Heap bytes per op over batches that fit in the young generation, each after a forced GC; spans to drop samples a GC ran in. */
function allocSamples(b: Bench, op: OpKind, n: number, gc: () => void): { perOp: number; span: [number, number] }[] {
  const samples: { perOp: number; span: [number, number] }[] = [];
  for (let s = 0; s < 7; s++) {
    gc();
    const before = getHeapStatistics().used_heap_size;
    const t0 = performance.now();
    const done = b.run(op, n);
    const t1 = performance.now();
    samples.push({ perOp: (getHeapStatistics().used_heap_size - before) / done, span: [t0, t1] });
  }
  return samples;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

async function measure(input: JournalCodecInput): Promise<JournalCodecOutput> {
  const gc = gcApi();
  const kinds: PayloadKind[] = ['entry', 'snapshot', 'mixed'];
  const codecs: CodecKind[] = ['json', 'protobuf'];
  const benches = kinds.flatMap((p) => codecs.map((c) => makeBench(p, c, input.window)));

  // Round trips first: a codec that does not give back what it was given is not a candidate.
  const mismatches = new Map<Bench, number>();
  for (const b of benches) {
    const c = codecFor(b.payload, b.codec);
    let bad = 0;
    for (const v of payloads(b.payload)) if (!isDeepStrictEqual(c.decode(wireBytes(c.encode(v))), v)) bad++;
    mismatches.set(b, bad);
  }

  const gcLog = new GcLog();
  const slices = benches.length * OPS.length;
  const sliceMs = (input.seconds * 1000) / (input.rounds * slices);
  const warmMs = (input.warmupSeconds * 1000) / slices;
  const chunk = (b: Bench): number => (b.payload === 'snapshot' ? 8 : 32);
  for (const b of benches) for (const op of OPS) slice(b, op, warmMs, chunk(b));

  const count = new Map<string, { n: number; ms: number; spans: [number, number][] }>();
  const key = (b: Bench, op: OpKind): string => `${b.payload}/${b.codec}/${op}`;
  for (let r = 0; r < input.rounds; r++) {
    // Alternate the order each round so neither codec always runs right after the other's garbage.
    const order = r % 2 === 0 ? benches : [...benches].reverse();
    for (const b of order)
      for (const op of OPS) {
        const s = slice(b, op, sliceMs, chunk(b));
        const acc = count.get(key(b, op)) ?? { n: 0, ms: 0, spans: [] };
        acc.n += s.n;
        acc.ms += s.to - s.from;
        acc.spans.push([s.from, s.to]);
        count.set(key(b, op), acc);
      }
    toParent({ type: 'progress', done: r + 1, total: input.rounds, label: 'journal-encoding: rates' });
    await turn(); // let the GC observer deliver
  }

  const allocRaw = new Map<string, { perOp: number; span: [number, number] }[]>();
  for (const b of benches)
    for (const op of OPS) {
      // Batches of a few MB: well inside the young generation the scenario fixes, so most samples see no scavenge.
      const n = b.payload === 'snapshot' ? 100 : op === 'wire' ? input.window * 8 : 400;
      allocRaw.set(key(b, op), allocSamples(b, op, n, gc));
    }
  await turn();
  await new Promise((r) => setTimeout(r, 50));
  // A sample that a scavenge ran in under-counts: keep the clean ones (all of them if none is clean).
  const alloc = new Map<string, number>();
  for (const [k, samples] of allocRaw) {
    const clean = samples.filter((s) => gcLog.within(s.span[0], s.span[1]) === 0);
    alloc.set(k, median((clean.length > 0 ? clean : samples).map((s) => s.perOp)));
  }
  gcLog.stop();

  const results: CodecFigures[] = benches.map((b) => {
    const perSec = {} as Record<OpKind, number>;
    const gcMsPerSec = {} as Record<OpKind, number>;
    const allocBytes = {} as Record<OpKind, number>;
    for (const op of OPS) {
      const acc = count.get(key(b, op))!;
      perSec[op] = acc.n / (acc.ms / 1000);
      gcMsPerSec[op] = (acc.spans.reduce((ms, [f, t]) => ms + gcLog.within(f, t), 0) / acc.ms) * 1000;
      allocBytes[op] = alloc.get(key(b, op))!;
    }
    const c = codecFor(b.payload, b.codec);
    const vs = payloads(b.payload);
    const bytes = vs.reduce((sum: number, v) => sum + wireBytes(c.encode(v)).length, 0) / vs.length;
    return { payload: b.payload, codec: b.codec, perSec, gcMsPerSec, allocBytes, bytes, roundTripMismatches: mismatches.get(b)! };
  });
  if (sink === 0.5) toParent({ type: 'log', line: 'unreachable' }); // keeps `sink` observable
  return { results, mixedShareOfHot: (MIXED_HOT_EVERY - 1) / MIXED_HOT_EVERY, reportBatchJson: JSON.stringify(reportBatchEntry(1_000)) };
}

runAsWorker(() => measure(workerInput<JournalCodecInput>()));
