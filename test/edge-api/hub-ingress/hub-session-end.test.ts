/**
 * How a hub session ends when the news of its end goes wrong: a newer stream here whose hello the
 * hub actor never took must not leave the hub "connected" to the stream it superseded, and a stream
 * whose end was lost on its way (its durable cursor refused) ends itself.
 */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import type { Result } from '../../../runtime/result.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

const hubState = (): Promise<{ connected: boolean; sessionNode?: string; sessionId?: string }> =>
  fx.ask('hub:h1:hub1', { type: 'hub.get' });
const shadow = (deviceId: string): Promise<{ online: boolean }> => fx.ask(`device:h1:${deviceId}`, { type: 'shadow.get' });

type SessionMsg = { readonly type?: unknown; readonly sessionId?: unknown };

/**
 * The stack's router, recording the hellos and disconnects the ingress sends ("type sessionId", in
 * order), except that while `refuseHello` is set a `hub.hello` never reaches the hub actor: its ask times out.
 */
class HelloRefusingRouter implements ActorRouter {
  refuseHello = false;
  readonly sessionMessages: string[] = [];
  constructor(private readonly inner: ActorRouter) {}

  ask<R>(actorId: string, msg: unknown, timeoutMs?: number): Promise<Result<R>> {
    this.record(msg);
    if (this.refuseHello && (msg as SessionMsg).type === 'hub.hello')
      return Promise.resolve({ ok: false, error: { code: 'timeout', message: 'no reply in time' } });
    return this.inner.ask<R>(actorId, msg, timeoutMs);
  }

  tell(actorId: string, msg: unknown): Result<void> {
    this.record(msg);
    return this.inner.tell(actorId, msg);
  }

  deliver(actorId: string, msg: unknown): Result<void> {
    this.record(msg);
    return this.inner.deliver(actorId, msg);
  }

  private record(msg: unknown): void {
    const { type, sessionId } = msg as SessionMsg;
    if (type === 'hub.hello' || type === 'hub.disconnect') this.sessionMessages.push(`${String(type)} ${String(sessionId)}`);
  }
}

describe('hub session ends', () => {
  it('a stream superseded here tells its disconnect behind the newer hello, which the hub actor then ignores', async () => {
    let router: HelloRefusingRouter | undefined;
    fx = await startHubFixture({ ingressRouter: (inner) => (router = new HelloRefusingRouter(inner)) });
    const old = await fx.open(HUB1);
    const oldSession = fx.ingress.sessionOf('h1', HUB1.hubId)!.sessionId;
    const fresh = await fx.open(HUB1);
    const freshSession = fx.ingress.sessionOf('h1', HUB1.hubId)!.sessionId;
    expect(await old.ended()).toMatchObject({ code: status.ABORTED });
    // In this order the hub actor never takes the hub offline in between.
    expect(router!.sessionMessages).toEqual([`hub.hello ${oldSession}`, `hub.hello ${freshSession}`, `hub.disconnect ${oldSession}`]);
    fresh.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await fresh.ackAtLeast(1)).toBe(1);
    expect(await hubState()).toMatchObject({ connected: true, sessionNode: 'n1', sessionId: freshSession });
  });

  it('a stream superseded here by one whose hello the hub actor never took still disconnects the hub', async () => {
    let router: HelloRefusingRouter | undefined;
    fx = await startHubFixture({ ingressRouter: (inner) => (router = new HelloRefusingRouter(inner)) });
    const old = await fx.open(HUB1);
    expect(await hubState()).toMatchObject({ connected: true, sessionNode: 'n1' });
    old.reports([{ seq: 1, device: 'light1', attributes: { on: false } }]);
    expect(await old.ackAtLeast(1)).toBe(1);
    expect((await shadow('light1')).online).toBe(true);

    router!.refuseHello = true;
    const fresh = fx.connect(HUB1.secret);
    fresh.hello(HUB1.hubId, 'h1', HUB1.devices);
    expect(await fresh.ended()).toMatchObject({ code: status.UNAVAILABLE });
    expect(await old.ended()).toMatchObject({ code: status.ABORTED });

    // Neither stream is open: the hub actor must not keep the superseded one as its session.
    await vi.waitFor(async () => expect(await hubState()).toMatchObject({ connected: false }));
    await vi.waitFor(async () => expect((await shadow('light1')).online).toBe(false));
    expect(fx.ingress.sessionCount).toBe(0);

    router!.refuseHello = false;
    const again = await fx.open(HUB1);
    again.reports([{ seq: 2, device: 'light1', attributes: { on: true } }]);
    expect(await again.ackAtLeast(2)).toBe(2);
    expect(await hubState()).toMatchObject({ connected: true, sessionNode: 'n1' });
  });

  it('a stream whose supersede from another node was lost ends with ABORTED once its durable cursor is refused', async () => {
    fx = await startHubFixture();
    const hub = await fx.open(HUB1);
    // A newer stream of the hub on node n2; the hub actor's end of this one is lost on its way.
    const ends = vi.spyOn(fx.hubCommands, 'endSession').mockImplementation(() => {});
    await fx.ask('hub:h1:hub1', { type: 'hub.hello', nodeId: 'n2', sessionId: 'session-on-n2', devices: HUB1.devices });
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    expect(ends).toHaveBeenCalledWith(expect.objectContaining({ nodeId: 'n1', reason: 'superseded' }));
    const end = await hub.ended();
    expect(end.code).toBe(status.ABORTED);
    expect(end.details).toContain('no longer holds the hub session');
    // Its disconnect is stale: the session on n2 stands.
    await vi.waitFor(() => expect(fx.ingress.sessionCount).toBe(0));
    expect(await hubState()).toMatchObject({ connected: true, sessionNode: 'n2', sessionId: 'session-on-n2' });
  });
});
