/**
 * A hub's secret and registration over its open stream, on a real ingress and actor stack, driven
 * as the provisioning routes drive them (credential store, then home actor): a stream on a secret
 * rotated out ends with UNAUTHENTICATED (at once, or when its grace period ends); a secret removed
 * between the stream's start and its hello is refused; a removed hub is refused until registered
 * again, and then starts from cursor 0 so its reports are applied.
 */
import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Shadow } from '../../../actors/device-state.ts';
import { hubCredentialIdOf, type HubState } from '../../../actors/hub.ts';
import type { Outcome } from '../../../actors/types.ts';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { hashSecret } from '../../../edge-api/auth/secrets.ts';
import { HubCommandDelivery } from '../../../edge-api/hub-ingress/hub-command-delivery.ts';
import { HubIngress } from '../../../edge-api/hub-ingress/hub-ingress.ts';
import { createActorStack, type ActorStack } from '../../../node/actor-stack.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { HubClient, type HelloDevice } from '../../../tools/hub-client/hub-client.ts';

const DEVICES: HelloDevice[] = [{ deviceId: 'lamp', type: 'light', capabilities: ['on'] }];

interface Fixture {
  readonly credentials: MemoryCredentialStore;
  readonly stack: ActorStack;
  readonly ingress: HubIngress;
  readonly registry: Registry;
  connect(secret: string): HubClient;
  ask<T>(actorId: string, msg: unknown): Promise<T>;
}

let closeAll: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closeAll?.();
  closeAll = undefined;
});

async function start(): Promise<Fixture> {
  const registry = new Registry();
  const credentials = new MemoryCredentialStore();
  let late: HubCommandDelivery | undefined;
  const stack = createActorStack({
    store: new MemoryStore(),
    logger: silentLogger,
    registry,
    hubCommands: { send: (homeId, hubId, command) => late?.send(homeId, hubId, command), endSession: (end) => late?.endSession(end) },
    publish: () => {},
  });
  const ingress = new HubIngress({
    router: stack.router,
    credentials,
    nodeId: 'n1',
    window: 100,
    maxMessageBytes: 64 * 1024,
    logger: silentLogger,
    registry,
    durableIntervalMs: 0,
    shutdownGraceMs: 1_000,
  });
  late = new HubCommandDelivery({ nodeId: 'n1', router: stack.router, sessions: ingress, logger: silentLogger, registry });
  const address = `127.0.0.1:${await ingress.listen('127.0.0.1', 0)}`;
  const clients: HubClient[] = [];
  closeAll = async () => {
    for (const c of clients) c.close();
    await ingress.close();
    await stack.host.close();
  };
  const ask = async <T>(actorId: string, msg: unknown): Promise<T> => {
    const r = await stack.router.ask<Outcome<T>>(actorId, msg);
    if (!r.ok) throw new Error(`ask ${actorId}: ${r.error.code} ${r.error.message}`);
    if (!r.value.ok) throw new Error(`ask ${actorId}: ${r.value.error.code} ${r.value.error.message}`);
    return r.value.value;
  };
  await ask('home:h1', { type: 'home.upsert', name: 'Flat' });
  const connect = (secret: string): HubClient => {
    const c = new HubClient(address, secret);
    clients.push(c);
    return c;
  };
  return { credentials, stack, ingress, registry, connect, ask };
}

/** As `POST /v1/homes/h1/hubs`: the secret stored, then the hub recorded. */
async function register(f: Fixture, hubId: string, secret: string): Promise<void> {
  await f.credentials.putHub(hashSecret(secret), { homeId: 'h1', hubId });
  await f.ask('home:h1', { type: 'home.registerHub', hubId, secretHash: hashSecret(secret) });
}

/**
 * As `POST /v1/homes/h1/hubs/{hubId}/secret` with a grace period: answers `previousValidUntil`.
 * `stored` runs once the new secret is in the store and before the home (and so the hub actor)
 * hears of the rotation; `previous` is what the rotation read (two racing ones read the same).
 */
async function rotate(
  f: Fixture,
  hubId: string,
  secret: string,
  graceMs: number,
  { stored, previous }: { stored?: () => Promise<void>; previous?: string[] } = {},
): Promise<number> {
  const retired = previous ?? (await f.credentials.hubSecretDigests('h1', hubId));
  await f.credentials.putHub(hashSecret(secret), { homeId: 'h1', hubId });
  await stored?.();
  const previousValidUntil = Date.now() + graceMs;
  const retire = retired.map(hubCredentialIdOf);
  await f.ask('home:h1', { type: 'home.rotateHubSecret', hubId, secretHash: hashSecret(secret), previousValidUntil, retire });
  await f.credentials.retireHubSecrets('h1', hubId, retired, previousValidUntil);
  return previousValidUntil;
}

async function open(f: Fixture, hubId: string, secret: string): Promise<{ hub: HubClient; lastDurableSeq: string }> {
  const hub = f.connect(secret);
  hub.hello(hubId, 'h1', DEVICES);
  const welcome = await hub.welcome();
  return { hub, lastDurableSeq: welcome.last_durable_seq };
}

const RETIRED = { code: status.UNAUTHENTICATED, details: 'the hub secret of this stream was rotated out' };

describe('hub secrets over an open stream', () => {
  it('ends a stream on a secret rotated out without grace at once with UNAUTHENTICATED; the new secret connects', async () => {
    const f = await start();
    await register(f, 'hub1', 'old-secret');
    const { hub } = await open(f, 'hub1', 'old-secret');
    hub.reports([{ seq: 1, device: 'lamp', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    await rotate(f, 'hub1', 'new-secret', 0);
    expect(await hub.ended()).toMatchObject(RETIRED);
    const again = await open(f, 'hub1', 'new-secret');
    expect(again.lastDurableSeq).toBe('1');
    expect(await f.connect('old-secret').ended()).toMatchObject({ code: status.UNAUTHENTICATED, details: 'unknown hub secret' });
  });

  it('keeps a stream on a secret rotated out with grace until the grace period ends, then ends it with UNAUTHENTICATED', async () => {
    const f = await start();
    await register(f, 'hub1', 'old-secret');
    const { hub } = await open(f, 'hub1', 'old-secret');
    const until = await rotate(f, 'hub1', 'new-secret', 3_000);
    hub.reports([{ seq: 1, device: 'lamp', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    expect(await hub.ended(10_000)).toMatchObject(RETIRED);
    // Timers may fire a millisecond early (rounding), never sooner.
    expect(Date.now()).toBeGreaterThanOrEqual(until - 5);
  });

  it('ends a stream opened within the grace period on the old secret when the grace period ends', async () => {
    const f = await start();
    await register(f, 'hub1', 'old-secret');
    const until = await rotate(f, 'hub1', 'new-secret', 2_000);
    const { hub } = await open(f, 'hub1', 'old-secret');
    expect(await hub.ended(10_000)).toMatchObject(RETIRED);
    expect(Date.now()).toBeGreaterThanOrEqual(until - 5);
  });

  it('welcomes a hub on its new secret before the hub actor hears of the rotation, and keeps it open after', async () => {
    const f = await start();
    await register(f, 'hub1', 'first-secret');
    await rotate(f, 'hub1', 'second-secret', 0);
    let early: Awaited<ReturnType<typeof open>> | undefined;
    await rotate(f, 'hub1', 'third-secret', 0, {
      stored: async () => {
        early = await open(f, 'hub1', 'third-secret');
      },
    });
    expect(early?.lastDurableSeq).toBe('0');
    // The rotation that told the hub actor retired second-secret only: the stream goes on.
    early!.hub.reports([{ seq: 1, device: 'lamp', attributes: { on: true } }]);
    expect(await early!.hub.ackAtLeast(1)).toBe(1);
    expect(await f.ask<HubState>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({
      connected: true,
      sessionCredential: hubCredentialIdOf(hashSecret('third-secret')),
    });
    expect(await f.ask<HubState>('hub:h1:hub1', { type: 'hub.get' })).not.toHaveProperty('sessionValidUntil');
  });

  it('welcomes the hub on either new secret of two racing rotations', async () => {
    const f = await start();
    await register(f, 'hub1', 'old-secret');
    const previous = await f.credentials.hubSecretDigests('h1', 'hub1');
    await Promise.all([rotate(f, 'hub1', 'secret-b', 0, { previous }), rotate(f, 'hub1', 'secret-c', 0, { previous })]);
    const b = await open(f, 'hub1', 'secret-b');
    b.hub.close();
    await vi.waitFor(async () => expect((await f.ask<HubState>('hub:h1:hub1', { type: 'hub.get' })).connected).toBe(false));
    expect((await open(f, 'hub1', 'secret-c')).lastDurableSeq).toBe('0');
    expect(await f.connect('old-secret').ended()).toMatchObject({ code: status.UNAUTHENTICATED, details: 'unknown hub secret' });
  });

  it('looks the secret up again before the hello: one removed since the stream opened is refused with UNAUTHENTICATED', async () => {
    const f = await start();
    await register(f, 'hub1', 'old-secret');
    const hub = f.connect('old-secret');
    const streams = async () => (await f.registry.getSingleMetric('iot_hub_streams')?.get())?.values[0]?.value ?? 0;
    await vi.waitFor(async () => expect(await streams()).toBe(1), { timeout: 5_000, interval: 20 });
    await f.credentials.removeHub('h1', 'hub1');
    hub.hello('hub1', 'h1', DEVICES);
    expect(await hub.ended()).toMatchObject({
      code: status.UNAUTHENTICATED,
      details: 'the hub secret of this stream is no longer valid',
    });
    expect(await f.ask<HubState>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: false });
  });
});

describe('a removed hub', () => {
  /** hub1 registered with `secret`, its reports 1..3 applied and its cursor at 3. */
  async function withCursorAt3(f: Fixture): Promise<HubClient> {
    await register(f, 'hub1', 'secret');
    const { hub } = await open(f, 'hub1', 'secret');
    hub.reports([1, 2, 3].map((seq) => ({ seq, device: 'lamp', attributes: { on: true }, tsMs: 1_700_000_000_000 + seq })));
    expect(await hub.ackAtLeast(3)).toBe(3);
    await vi.waitFor(async () => expect((await f.ask<HubState>('hub:h1:hub1', { type: 'hub.get' })).lastDurableSeq).toBe(3));
    return hub;
  }

  /**
   * A secret that still authenticates (one stored by a registration whose hub.registered has not
   * reached the hub actor yet) does not bring the hub back: UNAVAILABLE, so that the hub retries.
   */
  async function refusedWhileRemoved(f: Fixture): Promise<void> {
    await f.credentials.putHub(hashSecret('secret'), { homeId: 'h1', hubId: 'hub1' });
    const refused = f.connect('secret');
    refused.hello('hub1', 'h1', DEVICES);
    expect(await refused.ended()).toMatchObject({ code: status.UNAVAILABLE, details: 'hub hub1 of home h1 was removed' });
    await f.credentials.removeHub('h1', 'hub1');
  }

  it('is refused until registered again, which welcomes it at cursor 0', async () => {
    const f = await start();
    const first = await withCursorAt3(f);
    // As DELETE /v1/homes/h1/hubs/hub1: the secrets removed, then the home told.
    await f.credentials.removeHub('h1', 'hub1');
    await f.ask('home:h1', { type: 'home.removeHub', hubId: 'hub1' });
    expect(await first.ended()).toMatchObject({ code: status.UNAUTHENTICATED, details: 'hub removed' });
    await refusedWhileRemoved(f);
    await register(f, 'hub1', 'fresh-secret');
    expect((await open(f, 'hub1', 'fresh-secret')).lastDurableSeq).toBe('0');
  });

  it('registered again in a home deleted and created anew starts from cursor 0, so its reports from seq 1 are applied', async () => {
    const f = await start();
    const first = await withCursorAt3(f);
    // As DELETE /v1/homes/h1: the secrets removed, then the home deleted (it tells hubs and devices).
    await f.credentials.removeHub('h1', 'hub1');
    await f.ask('home:h1', { type: 'home.delete' });
    expect(await first.ended()).toMatchObject({ code: status.UNAUTHENTICATED, details: 'hub removed' });
    await refusedWhileRemoved(f);
    await f.ask('home:h1', { type: 'home.upsert', name: 'Flat again' });
    // A factory-reset hub counts from 1 again.
    await register(f, 'hub1', 'fresh-secret');
    const again = await open(f, 'hub1', 'fresh-secret');
    expect(again.lastDurableSeq).toBe('0');
    again.hub.reports([{ seq: 1, device: 'lamp', attributes: { on: false }, tsMs: 1_700_000_001_000 }]);
    expect(await again.hub.ackAtLeast(1)).toBe(1);
    expect((await f.ask<Shadow>('device:h1:lamp', { type: 'shadow.get' })).reported).toMatchObject({ on: { value: false } });
  });
});
