/**
 * The hub ingress's limits against hostile hubs, on a real ingress: reports with a bad time, refused
 * seqs against the window, a hub that does not read, no hello, silent TCP connections, the
 * connection cap, and the ends a hub actor orders (removed, superseded).
 */
import { status } from '@grpc/grpc-js';
import { connect, type Socket } from 'node:net';
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Shadow } from '../../../actors/device-state.ts';
import { MAX_STREAMS_AWAITING_HELLO_PER_HUB, MAX_STREAMS_PER_CONNECTION } from '../../../edge-api/hub-ingress/hub-ingress.ts';
import type { WireReport } from '../../../edge-api/hub-ingress/hub-wire.ts';
import { closeSharedChannels, HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, HUB2, startHubFixture, type FixtureOptions, type HubFixture } from '../../support/hub-fixture.ts';
import { SilentHub } from '../../support/silent-hub.ts';

let fx: HubFixture | undefined;
const silent: SilentHub[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of silent.splice(0)) s.close();
  for (const s of sockets.splice(0)) s.destroy();
  await fx?.close();
  fx = undefined;
});

async function start(options: FixtureOptions = {}): Promise<HubFixture> {
  fx = await startHubFixture(options);
  return fx;
}

function silentHub(f: HubFixture): SilentHub {
  const h = new SilentHub(f.address, HUB1.secret);
  silent.push(h);
  h.hello(HUB1.hubId, 'h1', 'light1');
  return h;
}

const report = (seq: number | string, device = 'light1', tsMs: number | string = Date.now()): WireReport => ({
  seq: String(seq),
  device_id: device,
  ts_ms: String(tsMs),
  attributes: { on: { flag: true } },
});

describe('hub ingress doors', () => {
  it('refuses a ts_ms before 1 or more than a day ahead with INVALID_ARGUMENT naming the seq, and acks past it', async () => {
    const f = await start();
    const hub = await f.open(HUB1);
    hub.reports([
      { seq: 1, device: 'light1', attributes: { on: true }, tsMs: -5 },
      { seq: 2, device: 'light1', attributes: { on: true }, tsMs: 0 },
      { seq: 3, device: 'light1', attributes: { on: true }, tsMs: Date.now() + 25 * 3600_000 },
      { seq: 4, device: 'light1', attributes: { brightness: 40 }, tsMs: Date.now() + 3600_000 },
    ]);
    expect(await hub.ackAtLeast(4)).toBe(4);
    expect(hub.errors()).toEqual(
      [1, 2, 3].map((seq) => ({
        code: 'INVALID_ARGUMENT',
        seq: String(seq),
        message: expect.stringMatching(new RegExp(`^ts_ms \\S+ of seq ${seq} must be`)),
      })),
    );
    // Only seq 4 (an hour ahead: within the day of skew) was applied.
    const shadow = await f.ask<Shadow>('device:h1:light1', { type: 'shadow.get' });
    expect(Object.keys(shadow.reported)).toEqual(['brightness']);
  });

  it('counts refused seqs against the credit window: only bad seqs end the stream with RESOURCE_EXHAUSTED; an ack gives the credit back', async () => {
    const f = await start({ window: 10 });
    const hub = await f.open(HUB1);
    hub.send({ reports: { items: Array.from({ length: 6 }, () => report(0)) } });
    hub.send({ reports: { items: [report(1)] } });
    await hub.ackAtLeast(1); // the ack returns the credit of the six refused ones
    hub.send({ reports: { items: Array.from({ length: 9 }, () => report(1)) } }); // repeated: refused, 9 of 10
    hub.send({ reports: { items: [report(0), report(0)] } }); // 9 + 2 > 10
    const end = await hub.ended();
    expect(end).toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('9 refused since the last ack exceeds the window of 10'),
    });
    expect(hub.errors()).toHaveLength(15);
  });

  it('resets a hub that does not read once its outbound queue passes the bound, and another hub keeps its acks', async () => {
    // A window this large never binds: only the outbound queue can end the stream.
    const f = await start({ window: 1_000_000, outboundQueue: 50 });
    const bystander = await f.open(HUB2);
    const offender = silentHub(f);
    let seq = 0;
    // Reports for a device it did not list: an error and an ack down for each, none read.
    const end = await offender.flood(() => Array.from({ length: 100 }, () => report(++seq, 'not-listed')), 20_000);
    expect(end).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect(await f.metric('iot_hub_outbound_overflows_total')).toBe(1);
    expect(await f.metric('iot_hub_stream_ends_total', { status: 'RESOURCE_EXHAUSTED' })).toBe(1);
    bystander.reports([{ seq: 1, device: 'temp2', attributes: { temperature: 21 } }]);
    expect(await bystander.ackAtLeast(1)).toBe(1);
    expect(bystander.status).toBeUndefined();
  });

  it('ends a stream that says no hello within the deadline with DEADLINE_EXCEEDED', async () => {
    const f = await start({ helloTimeoutMs: 300 });
    const quiet = f.connect(HUB1.secret);
    expect(await quiet.ended()).toMatchObject({
      code: status.DEADLINE_EXCEEDED,
      details: expect.stringContaining('no hello within 300 ms'),
    });
    // A hub that says hello in time is not affected.
    const hub = await f.open(HUB2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(hub.status).toBeUndefined();
  });

  it('lets one hub hold only a few streams waiting for hello: past them RESOURCE_EXHAUSTED; a hello frees a place', async () => {
    const f = await start({ helloTimeoutMs: 20_000 });
    const waiting = Array.from({ length: MAX_STREAMS_AWAITING_HELLO_PER_HUB }, () => f.connect(HUB1.secret));
    await vi.waitFor(() => expect(f.ingress.streamCount).toBe(MAX_STREAMS_AWAITING_HELLO_PER_HUB));
    const extra = f.connect(HUB1.secret);
    expect(await extra.ended()).toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('streams waiting for their hello'),
    });
    // Another hub is not affected, and a hello on one of hub1's streams frees a place.
    expect((await f.open(HUB2)).status).toBeUndefined();
    waiting[0]!.hello(HUB1.hubId, 'h1', HUB1.devices);
    await waiting[0]!.welcome();
    const next = f.connect(HUB1.secret);
    await vi.waitFor(() => expect(f.ingress.streamCount).toBe(MAX_STREAMS_AWAITING_HELLO_PER_HUB + 2));
    expect(next.status).toBeUndefined();
  });

  it('advertises a bound on concurrent streams per connection (HTTP/2 SETTINGS), not grpc-js’s unbounded default', async () => {
    const f = await start();
    const session = http2.connect(`http://${f.address}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        session.once('remoteSettings', resolve);
        session.once('error', reject);
      });
      expect(settings.maxConcurrentStreams).toBe(MAX_STREAMS_PER_CONNECTION);
    } finally {
      session.destroy();
    }
  });

  it('closes TCP connections that never speak HTTP/2 after the deadline, and refuses those past the cap', async () => {
    const cap = 500;
    const f = await start({ helloTimeoutMs: 5_000, maxConnections: cap });
    const port = Number(f.address.split(':')[1]);
    let closed = 0;
    const opened = await Promise.all(
      Array.from(
        { length: 1_000 },
        () =>
          new Promise<Socket>((resolve) => {
            const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
            s.on('error', () => {});
            s.on('close', () => closed++);
            s.resume(); // reads (and drops) the server's HTTP/2 SETTINGS, so the close is seen
            sockets.push(s);
          }),
      ),
    );
    expect(opened).toHaveLength(1_000);
    expect(f.ingress.connectionCount).toBeLessThanOrEqual(cap);
    await vi.waitFor(() => expect(closed).toBe(1_000), { timeout: 20_000, interval: 100 });
    const refused = await f.metric('iot_hub_connections_refused_total', { reason: 'cap' });
    const silentClosed = await f.metric('iot_hub_connections_refused_total', { reason: 'silent' });
    expect(refused + silentClosed).toBe(1_000);
    expect(silentClosed).toBeGreaterThanOrEqual(cap);
    expect(refused).toBeGreaterThan(0);
    await vi.waitFor(() => expect(f.ingress.connectionCount).toBe(0));
    expect(await f.metric('iot_hub_connections')).toBe(0);
    // The port still serves hubs.
    const hub = await f.open(HUB1);
    expect(hub.status).toBeUndefined();
  });

  it('closes a connection left without a call for the idle limit', async () => {
    const f = await start({ idleMs: 500 });
    // A shared channel outlives its streams: closing the stream leaves the connection open.
    const hub = new HubClient(f.address, HUB1.secret, { shared: true });
    try {
      hub.hello(HUB1.hubId, 'h1', HUB1.devices);
      await hub.welcome();
      expect(f.ingress.connectionCount).toBe(1);
      hub.close();
      await vi.waitFor(() => expect(f.ingress.connectionCount).toBe(0), { timeout: 10_000, interval: 50 });
    } finally {
      closeSharedChannels();
    }
  });

  it('ends the open stream with UNAUTHENTICATED when the hub actor is told hub.remove', async () => {
    const f = await start();
    const hub = await f.open(HUB1);
    expect(await f.ask('hub:h1:hub1', { type: 'hub.remove' })).toEqual({ removed: true });
    expect(await hub.ended()).toMatchObject({ code: status.UNAUTHENTICATED, details: 'hub removed' });
    expect(await f.ask('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: false });
  });

  it('ends only the session a supersede names: another session id leaves the stream open', async () => {
    const f = await start();
    const hub = await f.open(HUB1);
    const session = f.ingress.sessionOf('h1', HUB1.hubId)!;
    expect(f.ingress.endSession('h1', HUB1.hubId, 'an-older-session', 'superseded')).toBe(false);
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    expect(f.ingress.endSession('h1', HUB1.hubId, session.sessionId, 'superseded')).toBe(true);
    expect(await hub.ended()).toMatchObject({ code: status.ABORTED });
  });

  it('ends a session by its id only for the hub it belongs to', async () => {
    const f = await start();
    const one = await f.open(HUB1);
    await f.open(HUB2);
    const session = f.ingress.sessionOf('h1', HUB1.hubId)!;
    expect(f.ingress.endSession('h1', HUB2.hubId, session.sessionId, 'removed')).toBe(false);
    expect(f.ingress.endSession('h2', HUB1.hubId, session.sessionId, 'removed')).toBe(false);
    one.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await one.ackAtLeast(1)).toBe(1);
    expect(f.ingress.sessionCount).toBe(2);
  });
});
