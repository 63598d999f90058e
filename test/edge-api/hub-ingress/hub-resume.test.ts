/**
 * A hub that reconnects after acks its durable cursor did not record yet (written at most once per
 * interval): it resumes from the older cursor, re-sends reports that were acked, and each of them is
 * acked again and applied once, by its device actor's seq check.
 */
import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId, hubActorId } from '../../../actors/actor-id.ts';
import type { Shadow } from '../../../actors/device-state.ts';
import type { HubState } from '../../../actors/hub.ts';
import { MemoryCredentialStore } from '../../../edge-api/auth/credential-store.ts';
import { hashSecret } from '../../../edge-api/auth/secrets.ts';
import { HubIngress } from '../../../edge-api/hub-ingress/hub-ingress.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture | undefined;
let ingress: HubIngress | undefined;
const clients: HubClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await ingress?.close();
  await fx?.close();
  ingress = undefined;
  fx = undefined;
});

/** A second ingress on the fixture's actors whose durable cursor waits a minute between writes: only the first ack and an orderly end write it. */
async function slowCursorIngress(f: HubFixture): Promise<{ connect: () => HubClient; registry: Registry }> {
  const credentials = new MemoryCredentialStore();
  await credentials.putHub(hashSecret(HUB1.secret), { homeId: 'h1', hubId: HUB1.hubId });
  const registry = new Registry();
  ingress = new HubIngress({
    router: f.stack.router,
    credentials,
    nodeId: 'n1',
    window: 100,
    maxMessageBytes: 16 * 1024,
    logger: silentLogger,
    registry,
    retry: { baseMs: 5, maxMs: 50, giveUpAfterMs: 5_000 },
    shutdownGraceMs: 1_000,
    durableIntervalMs: 60_000,
  });
  const address = `127.0.0.1:${await ingress.listen('127.0.0.1', 0)}`;
  return {
    registry,
    connect: () => {
      const c = new HubClient(address, HUB1.secret);
      clients.push(c);
      c.hello(HUB1.hubId, 'h1', HUB1.devices);
      return c;
    },
  };
}

const counter = async (registry: Registry, outcome: string): Promise<number> =>
  (await registry.getSingleMetric('iot_hub_reports_total')?.get())?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;

describe('hub resume after acks the durable cursor had not recorded', () => {
  it('acks the re-sent reports again and applies each of them once', async () => {
    fx = await startHubFixture();
    const f = fx;
    const { connect, registry } = await slowCursorIngress(f);
    const hubState = (): Promise<HubState> => f.ask<HubState>(hubActorId('h1', 'hub1'), { type: 'hub.get' });
    const shadow = (): Promise<Shadow> => f.ask<Shadow>(deviceActorId('h1', 'motion1'), { type: 'shadow.get' });
    const report = (seq: number) => ({ seq, device: 'motion1', attributes: { illuminance: seq * 10 } });

    const first = connect();
    expect((await first.welcome()).last_durable_seq).toBe('0');
    first.reports([report(1)]);
    await first.ackAtLeast(1);
    // The first ack is written at once; the next ones wait for the interval.
    await vi.waitFor(async () => expect((await hubState()).lastDurableSeq).toBe(1));
    first.reports([report(2), report(3)]);
    expect(await first.ackAtLeast(3)).toBe(3);
    const acked = await shadow();
    expect(acked.reported.illuminance?.value).toBe(30);

    // The stream breaks (here: a message over the size limit, which grpc-js ends with an error):
    // the cursor is not written, as when the node dies.
    first.reports([{ seq: 4, device: 'motion1', attributes: { label: 'x'.repeat(32 * 1024) } }]);
    expect((await first.ended()).code).toBe(status.RESOURCE_EXHAUSTED);
    await vi.waitFor(async () => expect((await hubState()).connected).toBe(false));
    expect((await hubState()).lastDurableSeq).toBe(1);

    // The hub resumes after 1 and sends 2 and 3 again (it never saw their ack), then 4.
    const second = connect();
    expect((await second.welcome()).last_durable_seq).toBe('1');
    second.reports([report(2), report(3), report(4)]);
    expect(await second.ackAtLeast(4)).toBe(4);
    expect(second.errors()).toEqual([]);
    const after = await shadow();
    expect(after.version).toBe(acked.version + 1);
    expect(after.reported.illuminance?.value).toBe(40);
    // 2 and 3 reached the device actor again, which acked them without applying them.
    expect(await counter(registry, 'duplicate')).toBe(2);
    expect(await counter(registry, 'applied')).toBe(4);

    // An orderly end (the hub half-closes) writes the cursor at once.
    second.end();
    await second.ended();
    await vi.waitFor(async () => expect((await hubState()).lastDurableSeq).toBe(4));
  });
});
