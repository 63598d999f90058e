import { Client, credentials, Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { HUB1, HUB2, startHubFixture, type FixtureOptions, type HubFixture } from '../../support/hub-fixture.ts';

let fx: HubFixture;
let other: HubClient;
let otherSeq = 0;

afterEach(async () => {
  await fx?.close();
});

/** Starts the fixture with hub2 connected: the well-behaved hub that every error path must leave alone. */
async function start(options: FixtureOptions = {}): Promise<void> {
  fx = await startHubFixture(options);
  other = await fx.open(HUB2);
  otherSeq = 0;
}

/** Sends `bytes` as one message on a hub stream with hub1's secret; resolves the status the stream ends with. */
function sendRaw(bytes: Buffer): Promise<StatusObject> {
  const client = new Client(fx.address, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${HUB1.secret}`);
  const call = client.makeBidiStreamRequest(
    '/iot.hub.v1.HubIngress/Connect',
    (b: Buffer) => b,
    (b: Buffer) => b,
    metadata,
  );
  call.on('data', () => {});
  call.on('error', () => {});
  call.write(bytes);
  return new Promise((resolve) =>
    call.on('status', (s: StatusObject) => {
      client.close();
      resolve(s);
    }),
  );
}

async function otherHubStillWorks(): Promise<void> {
  const seq = ++otherSeq;
  other.reports([{ seq, device: 'temp2', attributes: { temperature: 20 + seq } }]);
  expect(await other.ackAtLeast(seq)).toBe(seq);
  expect(other.status).toBeUndefined();
  expect(other.errors()).toEqual([]);
}

describe('HubIngress error paths', () => {
  it.each([
    ['no authorization metadata', undefined, undefined],
    ['an unknown secret', 'wrong-secret', undefined],
    ['a malformed header', undefined, 'Basic c2VjcmV0LTE='],
  ])('ends a stream with %s as UNAUTHENTICATED before any actor is touched', async (_what, secret, header) => {
    await start();
    const hub = new HubClient(fx.address, secret, { authorization: header });
    hub.hello('hub1', 'h1', HUB1.devices);
    try {
      expect(await hub.ended()).toMatchObject({ code: status.UNAUTHENTICATED });
      expect(hub.messages).toEqual([]);
      expect(fx.stack.host.isResident('hub:h1:hub1')).toBe(false);
      await otherHubStillWorks();
    } finally {
      hub.close();
    }
  });

  it('ends a hello for another hub than the credential names with PERMISSION_DENIED', async () => {
    await start();
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub2', 'h1', HUB2.devices);
    const end = await hub.ended();
    expect(end.code).toBe(status.PERMISSION_DENIED);
    expect(end.details).toContain('hub1');
    expect(fx.stack.host.isResident('hub:h1:hub1')).toBe(false);
    await otherHubStillWorks();
  });

  it('answers a report for a device the hello did not list with PERMISSION_DENIED naming its seq, and acks past it', async () => {
    await start();
    const hub = await fx.open(HUB1);
    hub.reports([
      { seq: 1, device: 'light1', attributes: { on: true } },
      { seq: 2, device: 'temp2', attributes: { temperature: 99 } },
      { seq: 3, device: 'light1', attributes: { on: false } },
    ]);
    expect(await hub.ackAtLeast(3)).toBe(3);
    expect(hub.errors()).toEqual([{ code: 'PERMISSION_DENIED', message: expect.stringContaining('temp2'), seq: '2' }]);
    expect(hub.status).toBeUndefined();
    await otherHubStillWorks();
    expect(await fx.ask('device:h1:temp2', { type: 'shadow.get' })).toMatchObject({ reported: { temperature: { value: 21 } } });
  });

  it('ends a stream whose first message is not hello with INVALID_ARGUMENT', async () => {
    await start();
    const hub = fx.connect(HUB1.secret);
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ended()).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('hello') });
    await otherHubStillWorks();
  });

  it('ends a hello with an invalid device list with INVALID_ARGUMENT that names the field', async () => {
    await start();
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1', [HUB1.devices[0]!, HUB1.devices[0]!]);
    expect(await hub.ended()).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'hello.devices[1].device_id repeats motion1' });
    await otherHubStillWorks();
  });

  it('ends a hello with a malformed home_id with INVALID_ARGUMENT', async () => {
    await start();
    const hub = fx.connect(HUB1.secret);
    hub.hello('hub1', 'h1:x', HUB1.devices);
    expect(await hub.ended()).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('hello.home_id') });
    await otherHubStillWorks();
  });

  it('answers bad seqs and values with INVALID_ARGUMENT errors and keeps the stream', async () => {
    await start();
    const hub = await fx.open(HUB1);
    hub.send({
      reports: {
        items: [
          { seq: '0', device_id: 'light1', ts_ms: '1', attributes: {} },
          { seq: '9007199254740993', device_id: 'light1', ts_ms: '1', attributes: {} },
          { seq: '5', device_id: 'light1', ts_ms: '1', attributes: { on: { flag: true } } },
          { seq: '4', device_id: 'light1', ts_ms: '1', attributes: { on: { flag: false } } },
          { seq: '6', device_id: 'light1', ts_ms: '1', attributes: { on: {} } },
          { seq: '7', device_id: 'light1', ts_ms: '1', attributes: { brightness: { number: Number.NaN } } },
        ],
      },
    });
    expect(await hub.ackAtLeast(7)).toBe(7);
    expect(hub.errors()).toEqual([
      { code: 'INVALID_ARGUMENT', message: expect.stringContaining('seq 0'), seq: '0' },
      { code: 'INVALID_ARGUMENT', message: expect.stringContaining('seq 9007199254740993'), seq: '9007199254740993' },
      { code: 'INVALID_ARGUMENT', message: expect.stringContaining('not greater than 5'), seq: '4' },
      { code: 'INVALID_ARGUMENT', message: 'attributes.on has no value set (number, flag or text)', seq: '6' },
      // The device actor's own check: a domain rejection, counted as processed.
      { code: 'INVALID_ARGUMENT', message: expect.stringContaining('attributes.brightness'), seq: '7' },
    ]);
    const light = await fx.ask<{ reported: Record<string, { value: unknown }> }>('device:h1:light1', { type: 'shadow.get' });
    expect(light.reported).toEqual({ on: { value: true, ts: 1 } });
    expect(await fx.metric('iot_hub_reports_total', { outcome: 'rejected' })).toBe(5);
    await otherHubStillWorks();
  });

  it('ends a stream whose message is not valid protobuf with INVALID_ARGUMENT (not INTERNAL)', async () => {
    await start();
    // reports { items: <length 16 with 1 byte present> }
    const end = await sendRaw(Buffer.from([0x12, 0x10, 0x0a]));
    expect(end).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('not a HubMessage') });
    await otherHubStillWorks();
  });

  it('ends a stream that sends a message without a body with INVALID_ARGUMENT', async () => {
    await start();
    const hub = await fx.open(HUB1);
    hub.send({ ping: {} });
    hub.send({});
    expect(await hub.ended()).toMatchObject({ code: status.INVALID_ARGUMENT });
    await otherHubStillWorks();
  });

  it('ends a stream that overruns its credit window with RESOURCE_EXHAUSTED', async () => {
    await start({ window: 4 });
    const hub = await fx.open(HUB1);
    fx.store.hold((id) => id === 'device:h1:light1');
    hub.reports([1, 2, 3].map((seq) => ({ seq, device: 'light1', attributes: { brightness: seq } })));
    await vi.waitFor(() => expect(fx.store.waiting).toBe(1));
    hub.reports([4, 5].map((seq) => ({ seq, device: 'light1', attributes: { brightness: seq } })));
    expect(await hub.ended()).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: expect.stringContaining('window of 4') });
    fx.store.release();
    await otherHubStillWorks();
  });

  it('lets a hub use its whole window, batch after batch, as acks come back', async () => {
    await start({ window: 4 });
    const hub = await fx.open(HUB1);
    for (let batch = 0; batch < 5; batch++) {
      hub.reports([1, 2, 3, 4].map((i) => ({ seq: batch * 4 + i, device: i % 2 ? 'light1' : 'motion1', attributes: { brightness: i } })));
      await hub.ackAtLeast(batch * 4 + 4);
    }
    expect(hub.status).toBeUndefined();
    await otherHubStillWorks();
  });

  it('ends a stream that sends a message over the size limit with RESOURCE_EXHAUSTED', async () => {
    await start({ maxMessageBytes: 16 * 1024 });
    const hub = await fx.open(HUB1);
    hub.reports([{ seq: 1, device: 'light1', attributes: { label: 'x'.repeat(32 * 1024) } }]);
    expect(await hub.ended()).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    await vi.waitFor(async () => expect((await fx.ask<{ connected: boolean }>('hub:h1:hub1', { type: 'hub.get' })).connected).toBe(false));
    await otherHubStillWorks();
  });

  it('answers a command_result for a device of another hub with PERMISSION_DENIED', async () => {
    await start();
    const hub = await fx.open(HUB1);
    hub.send({ command_result: { command_id: 'temp2~c1', ok: true, error: '' } });
    hub.send({ command_result: { command_id: 'no-device-part', ok: true, error: '' } });
    await hub.waitFor((m) => (m.error?.message.includes('no-device-part') ? m : undefined));
    expect(hub.errors().map((e) => e.code)).toEqual(['PERMISSION_DENIED', 'PERMISSION_DENIED']);
    expect(hub.status).toBeUndefined();
    await otherHubStillWorks();
  });
});
