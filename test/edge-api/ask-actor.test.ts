/** Unit tests of askActor: one flat Result for runtime and domain failures, the reply typed by the message. */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { deviceActorId, homeActorId, hubActorId } from '../../actors/actor-id.ts';
import type { Shadow } from '../../actors/device-state.ts';
import type { HomeSummary } from '../../actors/home-messages.ts';
import type { HubResume } from '../../actors/hub.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { askActor, isRuntimeError, type AskError } from '../../edge-api/ask-actor.ts';
import type { Result } from '../../runtime/result.ts';

/** A router whose every ask resolves `reply`, recording what it was asked. */
function fakeRouter(reply: Result<unknown>): Pick<ActorRouter, 'ask'> & { asked: unknown[][] } {
  const asked: unknown[][] = [];
  return {
    asked,
    ask: <R>(...args: unknown[]) => {
      asked.push(args);
      return Promise.resolve(reply as Result<R>);
    },
  };
}

describe('askActor', () => {
  it('passes a runtime failure through as it is', async () => {
    const error = { code: 'overloaded', message: 'mailbox full' } as const;
    const router = fakeRouter({ ok: false, error });
    const r = await askActor(router, homeActorId('h1'), { type: 'home.get' }, 250);
    expect(r).toEqual({ ok: false, error });
    expect(!r.ok && isRuntimeError(r.error)).toBe(true);
    expect(router.asked).toEqual([['home:h1', { type: 'home.get' }, 250]]);
  });

  it('flattens a domain failure into the same one layer', async () => {
    const error = { code: 'not_found', message: 'device lamp not found in home h1' };
    const r = await askActor(fakeRouter({ ok: true, value: { ok: false, error } }), deviceActorId('h1', 'lamp'), { type: 'shadow.get' });
    expect(r).toEqual({ ok: false, error });
    expect(!r.ok && isRuntimeError(r.error)).toBe(false);
  });

  it('resolves the reply value, typed by the message', async () => {
    const router = fakeRouter({ ok: true, value: { ok: true, value: { lastDurableSeq: 7 } } });
    const r = await askActor(router, hubActorId('h1', 'hub1'), { type: 'hub.durable', upToSeq: 7, nodeId: 'n1' });
    expect(r).toEqual({ ok: true, value: { lastDurableSeq: 7 } });
    expectTypeOf(r).toEqualTypeOf<Result<HubResume, AskError>>();
    expectTypeOf(askActor(router, homeActorId('h1'), { type: 'home.get' })).resolves.toEqualTypeOf<Result<HomeSummary, AskError>>();
    expectTypeOf(askActor(router, 'device:h1:lamp', { type: 'shadow.get' })).resolves.toEqualTypeOf<Result<Shadow, AskError>>();
  });

  it('rejects (a bug, not a failure) when a reply is not an outcome', async () => {
    await expect(askActor(fakeRouter({ ok: true, value: 'not an outcome' }), homeActorId('h1'), { type: 'home.get' })).rejects.toThrow(
      /not an outcome/,
    );
  });
});
