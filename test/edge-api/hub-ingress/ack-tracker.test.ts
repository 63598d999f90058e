import { describe, expect, it } from 'vitest';
import { AckTracker, type PendingReport } from '../../../edge-api/hub-ingress/ack-tracker.ts';
import { mulberry32, randomInt, shuffle } from '../../support/prng.ts';

/** Records a report received at epoch ms `now` and returns it. */
function receive(tracker: AckTracker, seq: number, now: number): PendingReport {
  const entry: PendingReport = { seq, receivedAt: now, done: false };
  tracker.receive(entry);
  return entry;
}

/** A tracker whose flushes run only when the test says so. */
function manual() {
  const acks: { upTo: number; covered: number[] }[] = [];
  let pending: (() => void) | undefined;
  const tracker = new AckTracker({
    onAck: (upTo, covered) => acks.push({ upTo, covered: covered.map((p) => p.seq) }),
    schedule: (flush) => (pending = flush),
  });
  const flush = (): void => {
    const f = pending;
    pending = undefined;
    f?.();
  };
  return { tracker, acks, flush };
}

describe('AckTracker', () => {
  it('acks the longest processed prefix, never a report behind an unprocessed one', () => {
    const { tracker, acks, flush } = manual();
    const [a, b, c] = [1, 2, 5].map((s) => receive(tracker, s, 0));
    tracker.complete(b!);
    tracker.complete(c!);
    flush();
    expect(acks).toEqual([]);
    expect(tracker.inFlight).toBe(3);
    tracker.complete(a!);
    flush();
    expect(acks).toEqual([{ upTo: 5, covered: [1, 2, 5] }]);
    expect(tracker.inFlight).toBe(0);
    expect(tracker.ackedSeq).toBe(5);
  });

  it('coalesces the completions of one flush into one ack', () => {
    const { tracker, acks, flush } = manual();
    const entries = [1, 2, 3, 4].map((s) => receive(tracker, s, 0));
    for (const e of entries) tracker.complete(e);
    flush();
    expect(acks).toEqual([{ upTo: 4, covered: [1, 2, 3, 4] }]);
  });

  it('by default flushes once per event-loop turn, coalescing completions from separate microtasks', async () => {
    const acks: number[] = [];
    const tracker = new AckTracker({ onAck: (upTo) => acks.push(upTo) });
    const [a, b] = [receive(tracker, 1, 0), receive(tracker, 2, 0)];
    tracker.complete(a);
    await Promise.resolve();
    tracker.complete(b);
    expect(acks).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks).toEqual([2]);
  });

  it('rejects a seq that does not increase, and sends nothing after stop', () => {
    const { tracker, acks, flush } = manual();
    const e = receive(tracker, 3, 0);
    expect(() => receive(tracker, 3, 0)).toThrow(RangeError);
    tracker.stop();
    tracker.complete(e);
    flush();
    expect(acks).toEqual([]);
  });

  it('over random completion orders, acks increase and each covers exactly the processed prefix (seeded)', () => {
    const rand = mulberry32(20240611);
    for (let trial = 0; trial < 200; trial++) {
      const { tracker, acks, flush } = manual();
      let seq = 0;
      const entries = Array.from({ length: 1 + randomInt(rand, 40) }, () => receive(tracker, (seq += 1 + randomInt(rand, 3)), 0));
      const order = shuffle(rand, entries);
      const done = new Set<number>();
      for (const e of order) {
        tracker.complete(e);
        done.add(e.seq);
        if (rand() < 0.3) flush();
        const prefix = entries.findIndex((x) => !done.has(x.seq));
        const expected = prefix === -1 ? entries.at(-1)!.seq : prefix === 0 ? 0 : entries[prefix - 1]!.seq;
        if (acks.length > 0) expect(acks.at(-1)!.upTo).toBeLessThanOrEqual(expected);
      }
      flush();
      expect(acks.at(-1)!.upTo).toBe(entries.at(-1)!.seq);
      expect(acks.flatMap((a) => a.covered)).toEqual(entries.map((e) => e.seq));
      for (let i = 1; i < acks.length; i++) expect(acks[i]!.upTo).toBeGreaterThan(acks[i - 1]!.upTo);
      expect(tracker.inFlight).toBe(0);
    }
  });
});
