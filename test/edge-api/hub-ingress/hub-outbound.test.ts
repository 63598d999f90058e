/**
 * HubOutbound: the backlog down one hub's stream, on a stand-in for the grpc-js call (a Writable
 * that takes a message only when the "hub" reads one): order, coalescing, bounds, stall, ends; and
 * on a real ingress: a hub with the most devices, each with a delta and commands pending, connects
 * and gets them all; one that stops reading is reset.
 */
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import { HUB_LIMITS } from '../../../actors/hub.ts';
import type { CommandDelivery, DesiredDelivery } from '../../../actors/types.ts';
import {
  ANSWERED_IDS_KEPT_MS,
  EXPIRED_IDS_KEPT_MS,
  HubOutbound,
  type OutboundLimits,
  type OverflowReason,
} from '../../../edge-api/hub-ingress/hub-outbound.ts';
import type { CloudMessage, HubCall } from '../../../edge-api/hub-ingress/hub-wire.ts';
import type { HubClient, HelloDevice } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';
import { PROTO_DIR } from '../../../protos/load-proto.ts';

const HUB_MESSAGE = new protobuf.Root().loadSync(join(PROTO_DIR, 'hub.proto'), { keepCase: true }).lookupType('iot.hub.v1.HubMessage');

/** Takes one message into its `_write` at a time, as grpc-js does, and completes it only when the hub reads. */
class ReadingCall extends Writable {
  readonly taken: CloudMessage[] = [];
  private readonly unread: (() => void)[] = [];
  constructor(highWaterMark: number) {
    super({ objectMode: true, highWaterMark });
  }
  override _write(msg: CloudMessage, _enc: BufferEncoding, done: () => void): void {
    this.taken.push(msg);
    this.unread.push(done);
  }
  /** The hub reads up to `n` messages. */
  read(n = Number.POSITIVE_INFINITY): void {
    for (let i = 0; i < n && this.unread.length > 0; i++) this.unread.shift()!();
  }
  /** Reads until nothing is left, letting the outbound refill between reads. */
  async readAll(): Promise<void> {
    for (let i = 0; i < 10_000 && (this.unread.length > 0 || this.writableLength > 0); i++) {
      this.read();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

const counter = (): { n: number; inc(): void } => ({
  n: 0,
  inc() {
    this.n++;
  },
});

function setup(limits: Partial<OutboundLimits> = {}, highWaterMark = 4, clock: () => number = Date.now) {
  const call = new ReadingCall(highWaterMark);
  const overflows: { reason: OverflowReason; waiting: number }[] = [];
  const metrics = { commandsSent: counter(), desiredSent: counter(), commandsSkipped: counter(), desiredSkipped: counter() };
  const out = new HubOutbound(
    call as unknown as HubCall,
    { replies: 100, cloud: 100, stallMs: 1_000, ...limits },
    metrics,
    (reason, waiting) => overflows.push({ reason, waiting }),
    clock,
  );
  return { call, out, overflows, metrics };
}

const WELCOME: CloudMessage = { welcome: { node_id: 'n1', window: 10, last_durable_seq: '0' } };
const ack = (n: number): CloudMessage => ({ ack: { up_to_seq: String(n) } });
const err = (seq: number): CloudMessage => ({ error: { code: 'INVALID_ARGUMENT', message: 'bad', seq: String(seq) } });
const command = (id: string, deviceId = 'd1'): CommandDelivery => ({ commandId: id, deviceId, name: 'x', params: {}, expiresAtMs: 9e12 });
const desired = (deviceId: string, version: number, on = true): DesiredDelivery => ({ deviceId, version, delta: { on } });
/** A message as a short label: `welcome`, `ack 3`, `error 2`, `command c1`, `desired d1@4`. */
const label = (m: CloudMessage): string =>
  'welcome' in m
    ? 'welcome'
    : 'ack' in m
      ? `ack ${m.ack.up_to_seq}`
      : 'error' in m
        ? `error ${m.error.seq}`
        : 'command' in m
          ? `command ${m.command.command_id}`
          : `desired ${m.desired.device_id}@${m.desired.version}`;

let fx: HubFixture | undefined;
const paused: PausedHub[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const h of paused.splice(0)) h.close();
  await fx?.close();
  fx = undefined;
});

describe('HubOutbound', () => {
  it('holds commands and deltas until open, writes the welcome first, then what waited in order', async () => {
    const { call, out, metrics } = setup();
    expect(out.command(command('c1'))).toBe(true);
    expect(out.desired(desired('d1', 3))).toBe(true);
    expect(out.reply(ack(1))).toBe(false); // nothing to answer before the welcome
    expect(call.taken).toEqual([]);
    out.open(WELCOME);
    await call.readAll();
    expect(call.taken.map(label)).toEqual(['welcome', 'command c1', 'desired d1@3']);
    expect([metrics.commandsSent.n, metrics.desiredSent.n]).toEqual([1, 1]);
  });

  it('hands grpc-js only what it takes; a burst far past every bound reaches a hub that reads, in order', async () => {
    const { call, out, overflows } = setup({ replies: 10, cloud: 2_100 }, 4);
    out.open(WELCOME);
    // 1000 devices: a command and a delta each, in one synchronous burst (what a connect produces).
    for (let d = 0; d < 1_000; d++) {
      expect(out.command(command(`c${d}`, `d${d}`))).toBe(true);
      expect(out.desired(desired(`d${d}`, 1))).toBe(true);
      expect(call.writableLength).toBeLessThanOrEqual(4);
    }
    expect(out.waiting).toBeGreaterThan(1_900);
    await call.readAll();
    expect(overflows).toEqual([]);
    expect(out.waiting).toBe(0);
    expect(call.taken).toHaveLength(2_001);
    expect(call.taken.slice(1).map(label)).toEqual(Array.from({ length: 1_000 }, (_, d) => [`command c${d}`, `desired d${d}@1`]).flat());
  });

  it('lets a waiting ack be replaced by the next (cumulative), keeping its place after errors before it', async () => {
    const { call, out } = setup({}, 1);
    out.open(WELCOME); // grpc-js is full: everything after waits
    out.reply(err(1));
    out.reply(ack(1));
    out.reply(ack(2));
    out.reply(err(3));
    out.reply(ack(3));
    out.reply(ack(4));
    expect(out.waiting).toBe(4);
    await call.readAll();
    expect(call.taken.map(label)).toEqual(['welcome', 'error 1', 'ack 2', 'error 3', 'ack 4']);
  });

  it('never lets an ack overtake a command or delta queued before it (the command goes before the ack of its report)', async () => {
    const { call, out } = setup({}, 1);
    out.open(WELCOME); // grpc-js is full: everything after waits
    out.reply(ack(5));
    out.command(command('c1'));
    out.reply(ack(10));
    out.desired(desired('d1', 1));
    out.reply(ack(11));
    out.reply(ack(12));
    await call.readAll();
    expect(call.taken.map(label)).toEqual(['welcome', 'command c1', 'desired d1@1', 'ack 12']);
  });

  it('replaces a waiting delta of a device by a newer one at the end of the queue, drops an older one, and queues a command id once', async () => {
    const { call, out } = setup({}, 1);
    out.open(WELCOME);
    out.desired(desired('d1', 5, true));
    out.command(command('c1'));
    out.desired(desired('d2', 1));
    out.desired(desired('d1', 6, false)); // replaces d1@5, behind c1
    out.desired(desired('d1', 4)); // older than the one waiting: dropped
    out.command(command('c1')); // the same command again: once
    expect(out.waiting).toBe(3);
    await call.readAll();
    expect(call.taken.map(label)).toEqual(['welcome', 'command c1', 'desired d2@1', 'desired d1@6']);
    expect(call.taken[3]).toEqual({ desired: { device_id: 'd1', version: '6', delta: { on: { flag: false } } } });
    // Once written, the same device's next delta queues again; the same command id never does.
    out.desired(desired('d1', 7));
    out.command(command('c1'));
    await call.readAll();
    expect(call.taken.slice(4).map(label)).toEqual(['desired d1@7']);
  });

  it('writes a command id at most once per stream: the re-send on a reconnect racing the first send is skipped and counted', async () => {
    const { call, out, metrics } = setup();
    out.open(WELCOME);
    out.command(command('c1'));
    out.command(command('c2'));
    await call.readAll();
    // The device's re-send of its `sent` commands on the hello, after the first send went out.
    expect(out.command(command('c1'))).toBe('skipped');
    expect(out.command(command('c2'))).toBe('skipped');
    expect(out.command(command('c3'))).toBe(true);
    expect(out.command(command('c3'))).toBe('skipped'); // and while one still waits
    await call.readAll();
    expect(call.taken.map(label)).toEqual(['welcome', 'command c1', 'command c2', 'command c3']);
    expect([metrics.commandsSent.n, metrics.commandsSkipped.n]).toEqual([3, 3]);
  });

  it('remembers the newest written ids up to writtenIds, and forgets those expired over EXPIRED_IDS_KEPT_MS ago', async () => {
    let now = 1_000_000;
    const { call, out } = setup({ writtenIds: 3 }, 4, () => now);
    out.open(WELCOME);
    const expiring = (id: string, expiresAtMs: number): CommandDelivery => ({ ...command(id), expiresAtMs });
    for (const id of ['c1', 'c2', 'c3', 'c4']) out.command(expiring(id, now + 10_000));
    await call.readAll();
    // c1 is the oldest of four past the bound of three: forgotten, so it could go again.
    out.command(expiring('c1', now + 10_000));
    out.command(expiring('c4', now + 10_000));
    await call.readAll();
    expect(call.taken.slice(1).map(label)).toEqual(['command c1', 'command c2', 'command c3', 'command c4', 'command c1']);
    // Long after they expired (no device sends them again), their ids go as the next write comes.
    now += 10_000 + EXPIRED_IDS_KEPT_MS + 1;
    out.command(expiring('c5', now + 10_000));
    await call.readAll();
    out.command(expiring('c4', now + 10_000));
    await call.readAll();
    expect(call.taken.slice(6).map(label)).toEqual(['command c5', 'command c4']);
  });

  it('forgets every written id due before the bound drops one still live (ids written in another order than they expire)', async () => {
    let now = 1_000_000;
    const { call, out, metrics } = setup({ writtenIds: 4 }, 4, () => now);
    out.open(WELCOME);
    const expiring = (id: string, expiresAtMs: number): CommandDelivery => ({ ...command(id), expiresAtMs });
    // A long-lived command first, then short ones: insertion order is not the order of expiry.
    out.command(expiring('long', now + 3_600_000));
    for (const id of ['s1', 's2', 's3']) out.command(expiring(id, now + 1_000));
    await call.readAll();
    // Long after the short ones expired, a new write passes the bound: the due ones go, not `long`.
    now += 1_000 + EXPIRED_IDS_KEPT_MS + 1;
    out.command(expiring('n1', now + 1_000));
    await call.readAll();
    // `long` is still remembered: its re-send is skipped; the expired short ids are forgotten.
    expect(out.command(expiring('long', now + 3_600_000))).toBe('skipped');
    expect(metrics.commandsSkipped.n).toBe(1);
    for (const id of ['n2', 'n3']) out.command(expiring(id, now + 1_000));
    await call.readAll();
    expect(out.command(expiring('long', now + 3_600_000))).toBe('skipped');
    expect(call.taken.slice(1).map(label)).toEqual([
      'command long',
      'command s1',
      'command s2',
      'command s3',
      'command n1',
      'command n2',
      'command n3',
    ]);
  });

  it('remembers an answered command id ANSWERED_IDS_KEPT_MS more (a copy racing the result is still skipped), not until its expiry', async () => {
    let now = 1_000_000;
    const { call, out, metrics } = setup({}, 4, () => now);
    out.open(WELCOME);
    out.command(command('c1')); // expires far in the future
    out.command(command('c2'));
    await call.readAll();
    out.answered('c1');
    now += ANSWERED_IDS_KEPT_MS - 1;
    out.command(command('c1'));
    expect(metrics.commandsSkipped.n).toBe(1);
    now += 2;
    out.command(command('c3')); // the next write forgets what is due
    await call.readAll();
    out.command(command('c1'));
    out.command(command('c2')); // not answered: kept until its expiry
    await call.readAll();
    expect(call.taken.slice(1).map(label)).toEqual(['command c1', 'command c2', 'command c3', 'command c1']);
    expect(metrics.commandsSkipped.n).toBe(2);
  });

  it('never writes a desired delta older than one the stream already carried for its device (a late one from another node)', async () => {
    const { call, out, metrics } = setup();
    out.open(WELCOME);
    out.desired(desired('d1', 8));
    await call.readAll();
    expect(out.desired(desired('d1', 7))).toBe('skipped');
    out.desired(desired('d2', 1)); // another device is its own order
    out.desired(desired('d1', 8, false)); // the same version again (a re-send on connect, its delta recomputed) goes
    await call.readAll();
    expect(call.taken.slice(1).map(label)).toEqual(['desired d1@8', 'desired d2@1', 'desired d1@8']);
    expect(metrics.desiredSkipped.n).toBe(1);
  });

  it('judges a hub that lets more replies wait than the bound as not reading: overflow once, nothing more taken', () => {
    const { call, out, overflows } = setup({ replies: 5 }, 1);
    out.open(WELCOME);
    for (let i = 1; i <= 5; i++) expect(out.reply(err(i))).toBe(true);
    expect(overflows).toEqual([]);
    expect(out.reply(err(6))).toBe(false);
    expect(overflows).toEqual([{ reason: 'replies', waiting: 5 }]);
    expect(out.waiting).toBe(0); // dropped: the stream is being reset
    expect(out.command(command('c1'))).toBe(false);
    expect(out.reply(err(7))).toBe(false);
    expect(overflows).toHaveLength(1);
    expect(call.taken.map(label)).toEqual(['welcome']);
  });

  it('bounds waiting commands and deltas by limits.cloud apart from replies', () => {
    const { out, overflows } = setup({ replies: 2, cloud: 3 }, 1);
    out.open(WELCOME);
    out.reply(err(1));
    out.reply(err(2));
    out.command(command('c1'));
    out.desired(desired('d1', 1));
    out.desired(desired('d1', 2)); // replaces: still 2 of 3
    out.command(command('c2'));
    expect(overflows).toEqual([]);
    expect(out.desired(desired('d2', 1))).toBe(false);
    expect(overflows).toEqual([{ reason: 'cloud', waiting: 5 }]);
  });

  it('judges a stream that drains nothing for stallMs while messages wait as not read; each drain restarts the clock', async () => {
    vi.useFakeTimers();
    const { call, out, overflows } = setup({ stallMs: 1_000 }, 1);
    out.open(WELCOME);
    out.command(command('c1'));
    out.command(command('c2'));
    out.command(command('c3'));
    await vi.advanceTimersByTimeAsync(900);
    call.read(1); // progress: welcome read, c1 handed over
    await vi.advanceTimersByTimeAsync(900);
    call.read(1);
    await vi.advanceTimersByTimeAsync(900);
    expect(overflows).toEqual([]);
    expect(out.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(overflows).toEqual([{ reason: 'stalled', waiting: 1 }]);
  });

  it('does not judge a hub whose messages all went to grpc-js, however long it takes to read them', async () => {
    vi.useFakeTimers();
    const { out, overflows } = setup({ stallMs: 1_000 }, 4);
    out.open(WELCOME);
    out.command(command('c1'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(overflows).toEqual([]);
  });

  it('end() writes what waits and then calls done; stop() drops what waits', async () => {
    const { call, out } = setup({}, 1);
    out.open(WELCOME);
    out.reply(ack(1));
    out.command(command('c1'));
    const done = vi.fn();
    out.end(done);
    expect(out.reply(ack(2))).toBe(false); // ending: nothing more
    expect(done).not.toHaveBeenCalled();
    await call.readAll();
    expect(done).toHaveBeenCalledOnce();
    expect(call.taken.map(label)).toEqual(['welcome', 'ack 1', 'command c1']);

    const other = setup({}, 1);
    other.out.open(WELCOME);
    other.out.command(command('c9'));
    other.out.stop();
    await other.call.readAll();
    expect(other.call.taken.map(label)).toEqual(['welcome']);
    expect(other.out.command(command('c10'))).toBe(false);
  });
});

describe('HubOutbound on a real hub stream', () => {
  const BIG = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`p${i}`, 'x'.repeat(1_000)]));
  const issue = (f: HubFixture, deviceId: string, commandId: string, params: Record<string, string> = {}) =>
    f.ask(deviceActorId('h1', deviceId), {
      type: 'command.issue',
      commandId,
      name: 'set',
      params,
      ttlMs: 600_000,
      depth: 0,
      source: { kind: 'app' },
    });

  /** Waits until the stream has carried `n` messages matching `pick`, failing at once should it end. */
  const received = (hub: HubClient, pick: (m: HubClient['messages'][number]) => unknown, n: number): Promise<void> =>
    vi.waitFor(
      () => {
        if (hub.status) throw new Error(`stream ended: ${hub.status.code} ${hub.status.details}`);
        const got = hub.messages.filter(pick).length;
        if (got < n) throw new Error(`${got} of ${n}`);
      },
      { timeout: 30_000, interval: 50 },
    );

  it(`connects a hub with ${HUB_LIMITS.devices} devices that each have a delta and two commands pending, past HUB_OUTBOUND_QUEUE, every time`, async () => {
    // Found in review: the connect's burst (welcome + a delta and commands per device) was written at
    // once and passed the outbound bound on its count alone: the hub was reset on every connect.
    const f = (fx = await startHubFixture());
    const n = HUB_LIMITS.devices;
    const devices: HelloDevice[] = Array.from({ length: n }, (_, i) => ({ deviceId: `d${i}`, type: 'light', capabilities: ['on'] }));
    let hub = f.connect(HUB1.secret);
    hub.hello('hub1', 'h1', devices);
    await hub.welcome();
    let seq = 0;
    for (let i = 0; i < n; i += 100) {
      hub.reports(devices.slice(i, i + 100).map((d) => ({ seq: ++seq, device: d.deviceId, attributes: { on: false } })));
      await hub.ackAtLeast(seq, 30_000);
    }
    hub.close();
    await vi.waitFor(async () =>
      expect(await f.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: false }),
    );
    await Promise.all(
      devices.map((d) => f.ask(deviceActorId('h1', d.deviceId), { type: 'shadow.setDesired', desired: { on: true, level: 40 } })),
    );
    for (const c of [1, 2]) await Promise.all(devices.map((d) => issue(f, d.deviceId, `${d.deviceId}~c${c}`)));

    for (let round = 1; round <= 2; round++) {
      hub = f.connect(HUB1.secret);
      hub.hello('hub1', 'h1', devices);
      await received(hub, (m) => m.desired, n);
      await received(hub, (m) => m.command, 2 * n);
      expect(hub.messages[0]?.body).toBe('welcome');
      // Per device, its commands before its delta (the standing target is the last word).
      const order = new Map<string, string[]>();
      for (const m of hub.messages.slice(1)) {
        const id = m.command?.device_id ?? m.desired?.device_id;
        if (id !== undefined) order.set(id, [...(order.get(id) ?? []), m.command ? m.command.command_id : 'desired']);
      }
      expect(order.size).toBe(n);
      for (const [id, got] of order) expect(got, id).toEqual([`${id}~c1`, `${id}~c2`, 'desired']);
      // Still serving: a report is acked.
      hub.reports([{ seq: ++seq, device: 'd0', attributes: { on: true } }]);
      expect(await hub.ackAtLeast(seq, 10_000)).toBe(seq);
      expect(hub.status).toBeUndefined();
      hub.close();
      await vi.waitFor(async () =>
        expect(await f.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: false }),
      );
    }
    expect(await f.metric('iot_hub_outbound_overflows_total')).toBe(0);
  }, 120_000);

  it('resets a hub that stops reading while commands wait for it once nothing drains for outboundStallMs (RESOURCE_EXHAUSTED)', async () => {
    const f = (fx = await startHubFixture({ outboundStallMs: 300 }));
    const hub = new PausedHub(f.address, HUB1.secret);
    paused.push(hub);
    await vi.waitFor(async () =>
      expect(await f.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: true }),
    );
    // 30 commands of ~60 KB: far more than the stream's HTTP/2 window (64 KB) and grpc-js's buffer take.
    for (let c = 0; c < 30; c++) await issue(f, 'light1', `light1~big${c}`, BIG);
    expect(await hub.ended()).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM); // RESOURCE_EXHAUSTED to a gRPC client
    expect(await f.metric('iot_hub_outbound_overflows_total')).toBe(1);
    expect(await f.metric('iot_hub_stream_ends_total', { status: 'RESOURCE_EXHAUSTED' })).toBe(1);
    expect((await f.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).connected).toBe(false);
  });

  it('keeps a hub that stops reading for less than outboundStallMs: once it reads again every command arrives', async () => {
    const f = (fx = await startHubFixture({ outboundStallMs: 2_000 }));
    const hub = new PausedHub(f.address, HUB1.secret);
    paused.push(hub);
    await vi.waitFor(async () =>
      expect(await f.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).toMatchObject({ connected: true }),
    );
    for (let c = 0; c < 30; c++) await issue(f, 'light1', `light1~big${c}`, BIG);
    const session = [...f.ingress['sessions'].values()][0] as unknown as { outbound: HubOutbound };
    expect(session.outbound.waiting).toBeGreaterThan(0); // the hub is not reading: the backlog holds them
    hub.resume();
    // welcome + 30 commands, each in its own gRPC frame.
    await vi.waitFor(() => expect(hub.frames).toBe(31), { timeout: 10_000 });
    expect(hub.rstCode).toBeUndefined();
    expect(await f.metric('iot_hub_outbound_overflows_total')).toBe(0);
  });
});

/**
 * A hub on a raw HTTP/2 stream that says hello for light1 and then reads nothing until `resume()`:
 * its stream's flow-control window closes after 64 KB (a grpc-js client keeps taking data).
 */
class PausedHub {
  frames = 0;
  rstCode: number | undefined;
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly closed: Promise<number>;
  private pending = Buffer.alloc(0);

  constructor(address: string, secret: string) {
    this.session = http2.connect(`http://${address}`);
    this.session.on('error', () => {});
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': '/iot.hub.v1.HubIngress/Connect',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${secret}`,
    });
    this.stream.on('error', () => {}); // the reset code tells
    this.closed = new Promise((resolve) => this.stream.on('close', () => resolve((this.rstCode = this.stream.rstCode))));
    this.stream.pause();
    const hello = Buffer.from(
      HUB_MESSAGE.encode(
        HUB_MESSAGE.fromObject({
          hello: {
            hub_id: 'hub1',
            home_id: 'h1',
            firmware: 'paused',
            devices: [{ device_id: 'light1', type: 'light', capabilities: ['on'] }],
          },
        }),
      ).finish(),
    );
    const frame = Buffer.alloc(5 + hello.length);
    frame.writeUInt32BE(hello.length, 1);
    hello.copy(frame, 5);
    this.stream.write(frame);
  }

  /** Reads from now on, counting gRPC frames. */
  resume(): void {
    this.stream.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 5 && this.pending.length >= 5 + this.pending.readUInt32BE(1)) {
        this.pending = this.pending.subarray(5 + this.pending.readUInt32BE(1));
        this.frames++;
      }
    });
    this.stream.resume();
  }

  /** The HTTP/2 reset code the stream closed with (0: none), waiting at most 10 s. */
  ended(): Promise<number | undefined> {
    return Promise.race([this.closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())]);
  }

  close(): void {
    this.session.destroy();
  }
}
