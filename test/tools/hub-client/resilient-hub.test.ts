import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import type { Shadow } from '../../../actors/device-state.ts';
import type { HubReport } from '../../../tools/hub-client/hub-client.ts';
import { ResilientHub, type ResilientHubOptions } from '../../../tools/hub-client/resilient-hub.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;
const hubs: ResilientHub[] = [];

afterEach(async () => {
  for (const h of hubs.splice(0)) h.stop();
  await fx?.close();
});

/** Report `seq` sets light1's brightness to seq: the shadow's version counts the reports applied. */
const brightness = (seq: number): HubReport => ({ seq, device: 'light1', attributes: { brightness: seq } });

function hub(options: Partial<ResilientHubOptions> = {}): ResilientHub {
  const h = new ResilientHub({
    address: () => fx.address,
    secret: HUB1.secret,
    hubId: HUB1.hubId,
    homeId: 'h1',
    devices: HUB1.devices,
    report: brightness,
    ...options,
  });
  hubs.push(h);
  return h;
}

const light = (): Promise<Shadow> => fx.ask<Shadow>(deviceActorId('h1', 'light1'), { type: 'shadow.get' });

describe('ResilientHub', () => {
  it('sends reports 1..total within the credit window and ends its stream with OK once every one is acked', async () => {
    fx = await startHubFixture({ window: 50 });
    const h = hub({ total: 500, batch: 20 });
    await h.run(10_000);
    expect(h.highestAck).toBe(500);
    expect(h.reportsSent).toBe(500);
    expect(h.errors).toEqual([]);
    await vi.waitFor(() => expect(h.streams[0]?.status?.code, h.describe()).toBe(0));
    expect(h.streams).toHaveLength(1);
    expect(await light()).toMatchObject({ version: 500, reported: { brightness: { value: 500 } } });
  });

  it('drops a stream whose acks stall, reconnects and re-sends every report after its highest ack; each is applied once', async () => {
    fx = await startHubFixture({ window: 40 });
    let held = false;
    const h = hub({
      total: 200,
      batch: 10,
      stallMs: 150,
      reconnectDelayMs: 10,
      onAck: (ack) => {
        if (held || ack < 40) return;
        held = true;
        fx.store.hold(); // the writes of the reports in flight wait: acks stop, the watchdog drops the stream
      },
    });
    const running = h.run(10_000);
    running.catch(() => {});
    await vi.waitFor(() => expect(h.streams.length, h.describe()).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
    const resumed = h.streams[1]!;
    expect(h.streams[0]!.droppedBecause).toMatch(/no ack progress/);
    expect(resumed.resumedAfter).toBeGreaterThanOrEqual(40);
    expect(resumed.resumedAfter).toBeLessThan(200);
    fx.store.release();
    await running;
    expect(h.highestAck).toBe(200);
    expect(h.reportsSent).toBeGreaterThan(200); // the unacked ones went again
    expect(h.errors).toEqual([]);
    expect(await light()).toMatchObject({ version: 200, reported: { brightness: { value: 200 } } });
  });

  it('asks for the address again on every attempt: a failed stream is followed by one to the next address', async () => {
    fx = await startHubFixture();
    const h = hub({ address: (attempt) => (attempt === 0 ? '127.0.0.1:1' : fx.address), total: 30, reconnectDelayMs: 10 });
    await h.run(10_000);
    expect(h.streams.map((s) => s.address)).toEqual(['127.0.0.1:1', fx.address]);
    expect(h.streams[0]!.welcome).toBeUndefined();
    expect(h.highestAck).toBe(30);
  });

  it('goes on after the last durable seq its welcome names (reports an earlier life of the hub sent)', async () => {
    fx = await startHubFixture();
    await hub({ total: 100 }).run(10_000);
    const asked: number[] = [];
    const again = hub({ total: 150, report: (seq) => (asked.push(seq), brightness(seq)) });
    await again.run(10_000);
    expect(again.streams[0]!.welcome?.last_durable_seq).toBe('100');
    expect(asked[0]).toBe(101);
    expect(again.reportsSent).toBe(50);
    expect(await light()).toMatchObject({ version: 150 });
  });

  it('paces new reports to its rate, and `pace(0)` stops them while acks still arrive', async () => {
    fx = await startHubFixture();
    const h = hub({ ratePerSec: 200, batch: 5 });
    const t0 = performance.now();
    h.start();
    await vi.waitFor(() => expect(h.highestAck).toBeGreaterThanOrEqual(40));
    // Never ahead of the rate (one flush's worth of slack), however fast the acks come.
    expect(h.produced).toBeLessThanOrEqual(Math.ceil(((performance.now() - t0) / 1000) * 200) + 5);
    h.pace(0);
    const produced = h.produced;
    expect(await h.drain(5_000)).toBe(true);
    expect(h.highestAck).toBe(produced);
    expect(h.produced).toBe(produced);
  });
  it('keeps a healthy stream through a quiet spell longer than stallMs: the stall clock starts at the next send', async () => {
    fx = await startHubFixture();
    const h = hub({ ratePerSec: 200, batch: 5, stallMs: 300 });
    h.start();
    await vi.waitFor(() => expect(h.highestAck).toBeGreaterThanOrEqual(20));
    h.pace(0);
    expect(await h.drain(5_000)).toBe(true);
    // The quiet spell itself is what is tested: time passes with nothing in flight.
    const quietFrom = performance.now();
    await vi.waitFor(() => expect(performance.now() - quietFrom).toBeGreaterThan(400), { interval: 20 });
    const before = h.produced;
    fx.store.hold(); // the next reports' acks wait: a watchdog timing from the last ack would drop the stream at once
    h.pace(200);
    await vi.waitFor(() => expect(h.produced).toBeGreaterThan(before), { interval: 1 });
    await vi.waitFor(() => expect(h.reportsSent).toBeGreaterThan(before + 2), { interval: 1 });
    fx.store.release();
    await vi.waitFor(() => expect(h.highestAck).toBeGreaterThanOrEqual(before + 20));
    expect(h.streams.map((s) => s.droppedBecause)).toEqual([undefined]);
  });

  it('finish() ends the stream as firmware does, also when already caught up: a half-close the node answers with OK', async () => {
    fx = await startHubFixture();
    const h = hub({ batch: 10 });
    h.start();
    await vi.waitFor(() => expect(h.highestAck).toBeGreaterThanOrEqual(50));
    h.pace(0);
    expect(await h.drain(5_000)).toBe(true);
    await h.finish(5_000);
    expect(h.streams).toHaveLength(1);
    expect(h.streams[0]).toMatchObject({ status: { code: 0 } });
    expect(h.streams[0]!.droppedBecause).toBeUndefined();
  });

  it('ends its stream when the welcome already covers every report, and a later wait still settles', async () => {
    fx = await startHubFixture();
    await hub({ total: 40 }).run(10_000);
    const again = hub({ total: 40 });
    await again.run(10_000);
    expect(again.reportsSent).toBe(0);
    await vi.waitFor(() => expect(again.streams[0]?.status?.code, again.describe()).toBe(0));
    // Over: no stream, no reconnect; a wait for a welcome times out instead of hanging.
    await expect(again.welcomed(100)).rejects.toThrow(/no welcome/);
  });
});
