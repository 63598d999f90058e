/** DurableCursor: coalesced `hub.durable` asks, at most one per interval and one in flight, the latest value wins, the last one sent at an orderly stream end. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import { DurableCursor } from '../../../edge-api/hub-ingress/durable-cursor.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { Result } from '../../../runtime/result.ts';

/** A router whose asks wait until the test answers them; tells are recorded. */
class ScriptedRouter implements ActorRouter {
  readonly asked: { msg: unknown; answer: (r: Result<unknown>) => void; fail: (err: Error) => void }[] = [];
  readonly told: unknown[] = [];

  ask<R>(_actorId: string, msg: unknown): Promise<Result<R>> {
    return new Promise((resolve, reject) => this.asked.push({ msg, answer: (r) => resolve(r as Result<R>), fail: reject }));
  }

  tell(_actorId: string, msg: unknown): Result<void> {
    this.told.push(msg);
    return { ok: true, value: undefined };
  }

  deliver(actorId: string, msg: unknown): Result<void> {
    return this.tell(actorId, msg);
  }
}

const durable = (upToSeq: number) => ({ type: 'hub.durable', upToSeq, nodeId: 'n1' });
/** Lets the promise chains of answered asks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const done: Result<unknown> = { ok: true, value: { ok: true, value: {} } };
/** No interval: every ack may be written (the tests of coalescing behind an ask in flight). */
const EVERY_ACK = { intervalMs: 0, clock: Date.now };

afterEach(() => {
  vi.useRealTimers();
});

describe('DurableCursor', () => {
  it('keeps one ask in flight and sends only the newest value after it', async () => {
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, EVERY_ACK);
    cursor.advance(1);
    cursor.advance(2);
    cursor.advance(3);
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1)]);
    router.asked[0]!.answer(done);
    await vi.waitFor(() => expect(router.asked).toHaveLength(2));
    expect(router.asked[1]!.msg).toEqual(durable(3));
  });

  it('recovers after an ask that rejects (a reply that is not an outcome): the next ack is sent, and the last value at stream end', async () => {
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, EVERY_ACK);
    cursor.advance(5);
    router.asked[0]!.answer({ ok: true, value: 'not an outcome' });
    await settle();
    cursor.advance(6);
    expect(router.asked).toHaveLength(2);
    expect(router.asked[1]!.msg).toEqual(durable(6));
    router.asked[1]!.fail(new Error('peer stream broke'));
    await settle();
    cursor.advance(7);
    expect(router.asked).toHaveLength(3);
    router.asked[2]!.answer({ ok: false, error: { code: 'timeout', message: 'slow' } });
    await settle();
    cursor.finish(true);
    expect(router.told).toEqual([durable(7)]);
  });

  it('writes the first ack at once and the later ones of an interval together when it has passed', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, { intervalMs: 1_000, clock: Date.now });
    cursor.advance(1);
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1)]);
    router.asked[0]!.answer(done);
    await vi.advanceTimersByTimeAsync(10);
    for (let seq = 2; seq <= 50; seq++) cursor.advance(seq);
    await vi.advanceTimersByTimeAsync(900);
    expect(router.asked).toHaveLength(1); // still within the interval of the first write
    await vi.advanceTimersByTimeAsync(100);
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1), durable(50)]);
    router.asked[1]!.answer(done);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(router.asked).toHaveLength(2); // nothing new acked: nothing written
  });

  it('waits at most one interval when its clock steps back', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const router = new ScriptedRouter();
    let now = 5_000_000;
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, { intervalMs: 1_000, clock: () => now });
    cursor.advance(1);
    router.asked[0]!.answer(done);
    await vi.advanceTimersByTimeAsync(10);
    now -= 3_600_000; // stepped back an hour
    cursor.advance(2);
    await vi.advanceTimersByTimeAsync(1_000);
    // Before, the write waited until the clock had caught up again: an hour.
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1), durable(2)]);
  });

  it('measures its interval on a monotonic clock by default, not the wall clock', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, { intervalMs: 1_000 });
    cursor.advance(1);
    router.asked[0]!.answer(done);
    await vi.advanceTimersByTimeAsync(10);
    vi.setSystemTime(1_000_000 - 3_600_000); // the wall clock steps back; performance.now does not
    cursor.advance(2);
    await vi.advanceTimersByTimeAsync(989);
    expect(router.asked).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1), durable(2)]);
  });

  it('writes the latest value at an orderly end, and drops it (and its timer) when the stream broke', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const inOrder = new ScriptedRouter();
    const broken = new ScriptedRouter();
    for (const [router, flush] of [
      [inOrder, true],
      [broken, false],
    ] as const) {
      const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, { intervalMs: 1_000, clock: Date.now });
      cursor.advance(1);
      router.asked[0]!.answer(done);
      await vi.advanceTimersByTimeAsync(10);
      cursor.advance(9);
      cursor.finish(flush);
      cursor.finish(flush);
      await vi.advanceTimersByTimeAsync(5_000);
      expect(router.asked).toHaveLength(1);
    }
    expect(inOrder.told).toEqual([durable(9)]);
    expect(broken.told).toEqual([]);
  });

  it('at an orderly end with an ask in flight, writes the newer value once that ask returns', async () => {
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, EVERY_ACK);
    cursor.advance(1);
    cursor.advance(2);
    cursor.finish(true);
    expect(router.told).toEqual([]);
    router.asked[0]!.answer(done);
    await vi.waitFor(() => expect(router.told).toEqual([durable(2)]));
    expect(router.asked).toHaveLength(1);
  });

  it('stops, and says so once, when the hub actor refuses the cursor as not its session; other failures are retried', async () => {
    const router = new ScriptedRouter();
    const refusals: string[] = [];
    const cursor = new DurableCursor(router, 'hub:h1:hub1', 'n1', silentLogger, { ...EVERY_ACK, refused: (m) => refusals.push(m) });
    cursor.advance(1);
    // No reply in time: the next ack tries again.
    router.asked[0]!.answer({ ok: false, error: { code: 'timeout', message: 'no reply' } });
    await settle();
    cursor.advance(2);
    expect(router.asked.map((a) => a.msg)).toEqual([durable(1), durable(2)]);
    const notCurrent = 'hub.durable from node n1 refused: the session is on node n2';
    router.asked[1]!.answer({
      ok: true,
      value: { ok: false, error: { code: 'failed_precondition', field: 'nodeId', message: notCurrent } },
    });
    await settle();
    expect(refusals).toEqual([notCurrent]);
    // Nothing more is written: no asks for later acks, nothing at the end of the stream.
    cursor.advance(3);
    cursor.finish(true);
    await settle();
    expect(router.asked).toHaveLength(2);
    expect(router.told).toEqual([]);
    expect(refusals).toHaveLength(1);
  });
});
