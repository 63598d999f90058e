/** A real hub ingress on port 0 over a real actor stack, with home h1 and two registered hubs, for hub-ingress tests. */
import { Registry } from 'prom-client';
import type { Outcome } from '../../actors/types.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { MemoryCredentialStore } from '../../edge-api/auth/credential-store.ts';
import { hashSecret } from '../../edge-api/auth/secrets.ts';
import type { RetryPolicy } from '../../edge-api/hub-ingress/device-lanes.ts';
import { HubCommandDelivery } from '../../edge-api/hub-ingress/hub-command-delivery.ts';
import { HubIngress } from '../../edge-api/hub-ingress/hub-ingress.ts';
import { createActorStack, type ActorStack } from '../../node/actor-stack.ts';
import type { TlsMaterial } from '../../node/tls-material.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { GatedStore } from './gated-store.ts';

/** hub1 (secret-1) serves a motion sensor and a light; hub2 (secret-2) a thermometer. Both in home h1. */
export const HUB1 = {
  secret: 'secret-1',
  hubId: 'hub1',
  devices: [
    { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
    { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
  ] as HelloDevice[],
};
export const HUB2 = {
  secret: 'secret-2',
  hubId: 'hub2',
  devices: [{ deviceId: 'temp2', type: 'thermometer', capabilities: ['temperature'] }] as HelloDevice[],
};

export interface FixtureOptions {
  readonly window?: number;
  readonly maxMessageBytes?: number;
  readonly retry?: RetryPolicy;
  readonly helloTimeoutMs?: number;
  readonly outboundQueue?: number;
  readonly outboundStallMs?: number;
  readonly maxConnections?: number;
  readonly statusGraceMs?: number;
  readonly idleMs?: number;
  readonly tls?: TlsMaterial;
  /** The router the ingress uses, made from the stack's (a test's gate or fault in front of the actors). */
  readonly ingressRouter?: (router: ActorRouter) => ActorRouter;
}

export interface HubFixture {
  readonly ingress: HubIngress;
  /** Where the actors' hub commands go (this node only: no cluster). */
  readonly hubCommands: HubCommandDelivery;
  readonly stack: ActorStack;
  readonly store: GatedStore;
  readonly registry: Registry;
  readonly address: string;
  /** Opens a stream with `secret` (no metadata when undefined). */
  connect(secret: string | undefined): HubClient;
  /** Connects hub1 or hub2, says hello and waits for the welcome. */
  open(hub: typeof HUB1): Promise<HubClient>;
  /** The `Outcome` value of an ask, failing on any error. */
  ask<T>(actorId: string, msg: unknown): Promise<T>;
  /** A counter's value from the registry (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startHubFixture(options: FixtureOptions = {}): Promise<HubFixture> {
  const store = new GatedStore();
  const registry = new Registry();
  const credentials = new MemoryCredentialStore();
  let late: HubCommandDelivery | undefined;
  const stack = createActorStack({
    store,
    logger: silentLogger,
    registry,
    hubCommands: {
      send: (homeId, hubId, command) => late?.send(homeId, hubId, command),
      endSession: (end) => late?.endSession(end),
      sendDesired: (homeId, hubId, desired) => late?.sendDesired(homeId, hubId, desired),
    },
    publish: () => {},
  });
  const ingress = new HubIngress({
    router: options.ingressRouter?.(stack.router) ?? stack.router,
    credentials,
    nodeId: 'n1',
    window: options.window ?? 100,
    maxMessageBytes: options.maxMessageBytes ?? 64 * 1024,
    logger: silentLogger,
    registry,
    retry: options.retry ?? { baseMs: 5, maxMs: 50, giveUpAfterMs: 5_000 },
    shutdownGraceMs: 1_000,
    ...(options.helloTimeoutMs === undefined ? {} : { helloTimeoutMs: options.helloTimeoutMs }),
    ...(options.outboundQueue === undefined ? {} : { outboundQueue: options.outboundQueue }),
    ...(options.outboundStallMs === undefined ? {} : { outboundStallMs: options.outboundStallMs }),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    ...(options.statusGraceMs === undefined ? {} : { statusGraceMs: options.statusGraceMs }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.idleMs === undefined ? {} : { idleMs: options.idleMs }),
  });
  const hubCommands = new HubCommandDelivery({ nodeId: 'n1', router: stack.router, sessions: ingress, logger: silentLogger, registry });
  late = hubCommands;
  const port = await ingress.listen('127.0.0.1', 0);
  const address = `127.0.0.1:${port}`;
  const clients: HubClient[] = [];

  const ask = async <T>(actorId: string, msg: unknown): Promise<T> => {
    const r = await stack.router.ask<Outcome<T>>(actorId, msg);
    if (!r.ok) throw new Error(`ask ${actorId}: ${r.error.code} ${r.error.message}`);
    if (!r.value.ok) throw new Error(`ask ${actorId}: ${r.value.error.code} ${r.value.error.message}`);
    return r.value.value;
  };
  await ask('home:h1', { type: 'home.upsert', name: 'Flat', timezone: 'UTC' });
  await credentials.putHub(hashSecret(HUB1.secret), { homeId: 'h1', hubId: HUB1.hubId });
  await credentials.putHub(hashSecret(HUB2.secret), { homeId: 'h1', hubId: HUB2.hubId });

  const connect = (secret: string | undefined): HubClient => {
    const c = new HubClient(address, secret);
    clients.push(c);
    return c;
  };
  const fixture: HubFixture = {
    ingress,
    hubCommands,
    stack,
    store,
    registry,
    address,
    connect,
    async open(hub) {
      const c = connect(hub.secret);
      c.hello(hub.hubId, 'h1', hub.devices);
      await c.welcome();
      return c;
    },
    ask,
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      const match = m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
      return match?.value ?? 0;
    },
    async close() {
      store.release();
      for (const c of clients) c.close();
      await ingress.close();
      await stack.host.close();
    },
  };
  return fixture;
}
