/**
 * Property-based fuzzing of the hub ingress against a real node process: well-typed HubMessages
 * with arbitrary field values and raw bytes as gRPC payloads, one stream at a time and several
 * streams of one hub at once. Every stream must end with a documented status (or stay open) and
 * carry only coded `error`s — never INTERNAL or UNKNOWN; the node must stay up, and a bystander
 * hub of another home must keep getting its acks.
 */
import type { Client } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { HubClient } from '../../tools/hub-client/hub-client.ts';
import { edge, provisionHome, stopNode } from '../support/cluster-harness.ts';
import { Bystander } from '../support/fuzz-bystander.ts';
import { streamScript, type HubIdentity, type StreamScript } from '../support/fuzz-hub-messages.ts';
import { rawHubClient, RawHubStream, streamBreach } from '../support/fuzz-hub-stream.ts';
import { fuzzSettings } from '../support/fuzz-values.ts';

const ADMIN = 'admin-token-for-hub-fuzzing';
const FUZZ_HOME = 'fuzz-hub-home';
const BYSTANDER_HOME = 'bystander-home';
/** A small credit window, so that fuzzed batches overrun it. */
const WINDOW = 16;
const { seed, numRuns } = fuzzSettings(0x5eed_0b12, 250);

let node: NodeProcess;
let address: string;
let client: Client;
let secret: string;
let bystander: Bystander;
let identity: HubIdentity;

/** Final statuses of the current property's streams ('open' when one stayed open): the fuzzer must reach past hello. */
const tally = new Map<string, number>();

const nodeErrors = (): string =>
  node
    .output()
    .split('\n')
    .filter((l) => /"level":50|uncaught|unhandled/i.test(l))
    .slice(-5)
    .join('\n');

/** The `authorization` metadata of a script. */
const authorizationOf = (s: StreamScript): string | undefined =>
  s.auth === 'valid' ? `Bearer ${secret}` : s.auth === 'none' ? undefined : s.auth.authorization;

/** Runs one script on its own stream; throws, naming the breach, unless the stream kept the hub contract. */
async function runScript(script: StreamScript): Promise<void> {
  const stream = new RawHubStream(client, authorizationOf(script));
  stream.send(script.messages);
  const status = await stream.finish(8_000);
  const name = status === undefined ? 'open' : String(status.code);
  tally.set(name, (tally.get(name) ?? 0) + 1);
  const breach = streamBreach(status, stream.received);
  if (breach !== undefined) {
    throw new Error(`${breach}\nreceived ${JSON.stringify(stream.received).slice(0, 1_000)}\n${nodeErrors()}`);
  }
}

async function nodeAndBystanderFine(reportsBefore: number): Promise<void> {
  expect((await fetch(`http://127.0.0.1:${node.httpPort}/healthz`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  await bystander.pulse();
  expect(bystander.reportsSent).toBeGreaterThan(reportsBefore + 1);
}

async function fuzz<T>(arbitrary: fc.Arbitrary<T>, run: (x: T) => Promise<void>, runs = numRuns): Promise<Map<string, number>> {
  tally.clear();
  const before = bystander.reportsSent;
  await fc.assert(fc.asyncProperty(arbitrary, run), { seed, numRuns: runs });
  await nodeAndBystanderFine(before);
  return new Map(tally);
}

beforeAll(async () => {
  node = await startNodeProcess({
    ADMIN_TOKEN: ADMIN,
    NODE_ID: 'fuzz-hub-node',
    HUB_WINDOW: String(WINDOW),
    MAX_HUB_MESSAGE_BYTES: String(64 * 1024),
  });
  address = `127.0.0.1:${node.grpcPort}`;
  const api = edge(node);
  await vi.waitFor(async () => expect((await api('GET', '/readyz')).status).toBe(200), { timeout: 20_000, interval: 100 });
  const fuzzHome = await provisionHome(api, ADMIN, FUZZ_HOME);
  secret = fuzzHome.secret;
  const bystanderSecret = (await provisionHome(api, ADMIN, BYSTANDER_HOME)).secret;
  const devices = [
    { device_id: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
    { device_id: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
  ];
  // The hub declares its devices once, and the app sends them commands: fuzzed command results then name real commands too.
  const hub = new HubClient(address, secret);
  hub.hello(
    'hub1',
    FUZZ_HOME,
    devices.map((d) => ({ deviceId: d.device_id, type: d.type, capabilities: d.capabilities })),
  );
  await hub.welcome(15_000);
  const commandIds: string[] = [];
  for (const [device, key] of [
    ['light1', 'k1'],
    ['light1', 'k2'],
    ['motion1', 'k3'],
  ] as const) {
    const sent = await api(
      'POST',
      `/v1/homes/${FUZZ_HOME}/devices/${device}/commands`,
      fuzzHome.appToken,
      { name: 'set', params: {} },
      {
        'idempotency-key': key,
      },
    );
    expect(sent.status).toBe(202);
    commandIds.push(sent.body.commandId as string);
  }
  hub.close();
  identity = { homeId: FUZZ_HOME, hubId: 'hub1', devices, foreign: { homeId: BYSTANDER_HOME, hubId: 'hub1' }, commandIds };
  client = rawHubClient(address);
  bystander = await Bystander.connect(address, bystanderSecret, BYSTANDER_HOME);
  bystander.start();
}, 60_000);

afterAll(async () => {
  bystander?.close();
  client?.close();
  if (node) await stopNode(node, 10_000);
});

describe('hub ingress under fuzzing (fast-check, fixed seed)', () => {
  it('ends streams of well-typed messages with arbitrary field values with a documented status, never INTERNAL or UNKNOWN', async () => {
    const outcomes = await fuzz(streamScript(identity, WINDOW + 4, 0.1), runScript);
    // The scripts reach past hello: some streams end OK (every report answered), others are refused.
    expect(outcomes.get('0')).toBeGreaterThan(5);
    expect(outcomes.get('3')).toBeGreaterThan(5); // INVALID_ARGUMENT
  }, 60_000);

  it('ends streams of raw bytes as HubMessages with a documented status, never INTERNAL or UNKNOWN', async () => {
    await fuzz(streamScript(identity, 4, 1), runScript);
  }, 60_000);

  it('keeps the contract when several fuzzed streams of one hub run at once (they supersede each other)', async () => {
    await fuzz(
      fc.array(streamScript(identity, WINDOW + 4, 0.3), { minLength: 2, maxLength: 4 }),
      async (scripts) => {
        await Promise.all(scripts.map(runScript));
      },
      Math.round(numRuns * 0.4),
    );
  }, 60_000);
});
