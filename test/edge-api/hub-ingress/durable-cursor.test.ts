/** DurableCursor: coalesced `hub.durable` asks, one in flight, the latest value wins, the last one sent at stream end. */
import { describe, expect, it, vi } from 'vitest';
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

const durable = (upToSeq: number) => ({ type: 'hub.durable', upToSeq });
/** Lets the promise chains of answered asks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const done: Result<unknown> = { ok: true, value: { ok: true, value: {} } };

describe('DurableCursor', () => {
  it('keeps one ask in flight and sends only the newest value after it', async () => {
    const router = new ScriptedRouter();
    const cursor = new DurableCursor(router, 'hub:h1:hub1', silentLogger);
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
    const cursor = new DurableCursor(router, 'hub:h1:hub1', silentLogger);
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
    cursor.finish();
    expect(router.told).toEqual([durable(7)]);
  });
});
