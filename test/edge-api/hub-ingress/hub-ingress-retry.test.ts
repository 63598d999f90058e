import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Shadow } from '../../../actors/device-state.ts';
import { HUB1, HUB2, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

describe('HubIngress retries of transient actor failures', () => {
  it('retries a report while its device store is down, keeps the device order, and acks once it is durable', async () => {
    fx = await startHubFixture({ retry: { baseMs: 2, maxMs: 20, giveUpAfterMs: 10_000 } });
    const hub = await fx.open(HUB1);
    fx.store.fail((id) => id === 'device:h1:light1');
    hub.reports([
      { seq: 1, device: 'light1', attributes: { brightness: 10 } },
      { seq: 2, device: 'light1', attributes: { brightness: 20 } },
      { seq: 3, device: 'motion1', attributes: { motion: true } },
    ]);
    await vi.waitFor(async () => expect(await fx.metric('iot_hub_report_retries_total')).toBeGreaterThanOrEqual(3));
    // motion1 is unaffected, but the ack must wait for seq 1 and 2.
    await vi.waitFor(async () =>
      expect((await fx.ask<Shadow>('device:h1:motion1', { type: 'shadow.get' })).reported.motion?.value).toBe(true),
    );
    expect(hub.acks()).toEqual([]);

    fx.store.heal();
    expect(await hub.ackAtLeast(3)).toBe(3);
    const light = await fx.ask<Shadow>('device:h1:light1', { type: 'shadow.get' });
    expect(light.reported.brightness?.value).toBe(20);
    // Had seq 2 overtaken seq 1, the device would have answered seq 1 as stale.
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'applied' })).toBe(3);
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'duplicate' })).toBe(0);
    expect(hub.status).toBeUndefined();
  });

  it('ends the stream with UNAVAILABLE when a report keeps failing past giveUpAfterMs, leaving other hubs alone', async () => {
    fx = await startHubFixture({ retry: { baseMs: 2, maxMs: 10, giveUpAfterMs: 100 } });
    const other = await fx.open(HUB2);
    const hub = await fx.open(HUB1);
    fx.store.fail((id) => id === 'device:h1:light1');
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    const end = await hub.ended();
    expect(end).toMatchObject({ code: status.UNAVAILABLE, details: expect.stringContaining('report seq 1 of device light1') });
    expect(hub.acks()).toEqual([]);

    other.reports([{ seq: 1, device: 'temp2', attributes: { temperature: 21 } }]);
    expect(await other.ackAtLeast(1)).toBe(1);
    // The hub reconnects once the store is back and re-sends: applied now.
    fx.store.heal();
    const again = await fx.open(HUB1);
    again.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await again.ackAtLeast(1)).toBe(1);
  });

  it('closes the session cleanly when the hub cancels while a report is being retried', async () => {
    fx = await startHubFixture({ retry: { baseMs: 2, maxMs: 10, giveUpAfterMs: 10_000 } });
    const hub = await fx.open(HUB1);
    fx.store.fail((id) => id === 'device:h1:light1');
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    await vi.waitFor(async () => expect(await fx.metric('iot_hub_report_retries_total')).toBeGreaterThanOrEqual(2));
    hub.close();
    await vi.waitFor(async () => expect(await fx.metric('iot_hub_streams')).toBe(0));
    expect(await fx.metric('iot_hub_stream_ends_total', { status: 'CANCELLED' })).toBe(1);
    fx.store.heal();
    expect(await fx.ask('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: false, lastDurableSeq: 0 });
    expect(fx.ingress.sessionCount).toBe(0);
  });
});
