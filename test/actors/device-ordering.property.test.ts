/** Property-style test of report ordering: random interleavings and duplicates, fixed seeds. */
import { describe, expect, it } from 'vitest';
import { deviceBehavior, reportedValues } from '../../actors/device.ts';
import type { DeviceMsg, DeviceState, ReportAck } from '../../actors/device-state.ts';
import { deviceActorId } from '../../actors/actor-id.ts';
import type { Value } from '../../actors/types.ts';
import { mulberry32, randomInt, shuffle } from '../support/prng.ts';

const ID = deviceActorId('h1', 'sensor');
const ATTRS = ['motion', 'illuminance', 'battery', 'mode'] as const;
const TRIALS = 200;
const REPORTS = 50;

interface Gen {
  readonly seq: number;
  readonly attributes: Record<string, Value>;
}

const run = (s: DeviceState, msg: DeviceMsg, now: number) => deviceBehavior.receive(s, msg, { id: ID, now, replaying: false });
const toMsg = (r: Gen): DeviceMsg => ({ type: 'report', seq: r.seq, tsMs: r.seq * 10, attributes: r.attributes });

function randomValue(rand: () => number): Value {
  const kind = randomInt(rand, 3);
  return kind === 0 ? rand() < 0.5 : kind === 1 ? randomInt(rand, 4) : ['auto', 'eco'][randomInt(rand, 2)]!;
}

/** 50 reports with strictly increasing (gappy) seqs; `full` ones carry every attribute. */
function generate(rand: () => number, full: boolean): Gen[] {
  let seq = 0;
  return Array.from({ length: REPORTS }, () => {
    seq += 1 + randomInt(rand, 3);
    const names = full ? ATTRS : ATTRS.filter(() => rand() < 0.5);
    return { seq, attributes: Object.fromEntries(names.map((n) => [n, randomValue(rand)])) };
  });
}

/** Per attribute, the value from the highest-seq report among `reports` that set it. */
function latestPerAttribute(reports: readonly Gen[]): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const r of [...reports].sort((a, b) => a.seq - b.seq)) Object.assign(out, r.attributes);
  return out;
}

describe('device report ordering (property)', () => {
  it('applies each seq at most once and never moves reported state backwards', () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const rand = mulberry32(0x5eed + trial);
      const full = trial % 2 === 0;
      const reports = generate(rand, full);
      // Each report arrives 1-3 times, in a random interleaving.
      const deliveries = shuffle(
        rand,
        reports.flatMap((r) => Array.from({ length: 1 + randomInt(rand, 3) }, () => r)),
      );
      const ctx = `trial ${trial} (seed ${0x5eed + trial})`;

      let state = deviceBehavior.initial(ID);
      const applied = new Map<number, number>();
      const appliedReports: Gen[] = [];
      deliveries.forEach((r, i) => {
        const step = run(state, toMsg(r), 1_000 + i);
        if (!step.reply?.ok) throw new Error(`${ctx}: rejected ${JSON.stringify(step.reply)}`);
        const ack = step.reply.value as ReportAck;
        expect(step.state.lastSeq, ctx).toBeGreaterThanOrEqual(state.lastSeq);
        expect(ack.applied, ctx).toBe(r.seq > state.lastSeq);
        if (ack.applied) {
          applied.set(r.seq, (applied.get(r.seq) ?? 0) + 1);
          appliedReports.push(r);
        } else {
          expect(step.state, ctx).toBe(state);
          expect(step.journal, ctx).toBe(false);
        }
        expect(applied.get(r.seq) ?? 0, ctx).toBeLessThanOrEqual(1);
        expect(reportedValues(step.state.reported), ctx).toEqual(latestPerAttribute(appliedReports));
        state = step.state;
      });

      const last = reports[REPORTS - 1]!;
      expect(state.lastSeq, ctx).toBe(last.seq);
      // Same state as delivering just the applied reports, in order, once each.
      const inOrder = appliedReports.reduce((s, r, i) => run(s, toMsg(r), 1_000 + i).state, deviceBehavior.initial(ID));
      expect({ ...state, lastSeen: 0, recentSeqs: [] }, ctx).toEqual({ ...inOrder, lastSeen: 0, recentSeqs: [] });
      // Full reports: the final state is the max-seq value of every attribute over all reports.
      if (full) expect(reportedValues(state.reported), ctx).toEqual(latestPerAttribute(reports));
      else expect(reportedValues(state.reported), ctx).toMatchObject(last.attributes);
    }
  });

  it('tells duplicates (recent applied seqs) from stale reports', () => {
    let s = deviceBehavior.initial(ID);
    for (const seq of [2, 4, 6]) s = run(s, toMsg({ seq, attributes: { battery: seq } }), seq).state;
    const ack = (seq: number) => run(s, toMsg({ seq, attributes: { battery: 0 } }), 10).reply;
    expect(ack(4)).toEqual({ ok: true, value: { applied: false, reason: 'duplicate', version: 3 } });
    expect(ack(3)).toEqual({ ok: true, value: { applied: false, reason: 'stale', version: 3 } });
  });
});
