/**
 * Property-based fuzzing of the HTTP edge against a real node process over a private Redis: every
 * route family gets near-valid and hostile bodies, odd paths, methods, queries and headers. Every
 * answer must be a success or a coded error of the stable table with that code's status (never a
 * 500), the node must stay up, and a bystander hub of another home must keep getting its acks.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { HubClient } from '../../tools/hub-client/hub-client.ts';
import { edge, provisionHome, stopNode } from '../support/cluster-harness.ts';
import { Bystander } from '../support/fuzz-bystander.ts';
import {
  caller,
  contractBreach,
  headerValue,
  oddSegment,
  pathOf,
  percentEncode,
  requestTo,
  routeFamilies,
  send,
  type Answer,
  type FuzzIds,
  type FuzzRequest,
  type Tokens,
} from '../support/fuzz-requests.ts';
import { fuzzSettings, hostileJson, hostileNumber, hostileString } from '../support/fuzz-values.ts';

const ADMIN = 'admin-token-for-http-fuzzing';
const IDS: FuzzIds = { home: 'fuzz-home', otherHome: 'fuzz-other', nodeId: 'fuzz-http-node' };
const BYSTANDER_HOME = 'bystander-home';
const { seed, numRuns } = fuzzSettings(0x5eed_0b11, 300);

/** Status and error code of every answer of the current property: the fuzzer must reach past the guard. */
const tally = new Map<string, number>();

let redis: TestRedis;
let node: NodeProcess;
let base: string;
let tokens: Tokens;
let bystander: Bystander;

/** The node's log lines about unhandled errors (what a 500 left behind), for a failure message. */
const unhandledLog = (): string =>
  node
    .output()
    .split('\n')
    .filter((l) => /unhandled|"level":50|uncaught/i.test(l))
    .slice(-5)
    .join('\n');

/** The first request the node did not answer: later runs (fast-check's shrinking) fail at once, naming it. */
let unanswered: { req: FuzzRequest; why: string } | undefined;

/** Why a request failed on the client side: the error and its cause (fetch hides the socket error there). */
function failureOf(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `${what}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}; node exit ${node.child.exitCode}`;
}

/**
 * Sends `req`. A connection the node closed under a pooled request (keep-alive, after it refused
 * a body it did not read) is tried once more on a new one; a timeout is not.
 */
async function answerTo(req: FuzzRequest): Promise<Answer> {
  try {
    return await send(base, req, tokens, 8_000);
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') throw err;
    return send(base, req, tokens, 8_000);
  }
}

/** Sends `req` and throws, naming the breach, unless the answer keeps the edge's contract. */
async function holdsContract(req: FuzzRequest): Promise<void> {
  if (unanswered) throw new Error(`the node stopped answering (${unanswered.why}) at ${JSON.stringify(unanswered.req).slice(0, 2_000)}`);
  let answer: Answer;
  try {
    answer = await answerTo(req);
  } catch (err) {
    unanswered = { req, why: failureOf(err) };
    throw new Error(`no answer (${unanswered.why})\n${unhandledLog()}`, { cause: err });
  }
  const code = /"code":"([a-z_]+)"/.exec(answer.text)?.[1];
  const key = answer.status < 300 || answer.status === 304 ? 'success' : (code ?? String(answer.status));
  tally.set(key, (tally.get(key) ?? 0) + 1);
  const breach = contractBreach(answer);
  if (breach !== undefined) throw new Error(`${req.method} ${req.path.slice(0, 200)}: ${breach}\n${unhandledLog()}`);
}

/** The node answers its liveness probe, and the bystander reported during the run and has every report acked. */
async function nodeAndBystanderFine(reportsBefore: number): Promise<void> {
  expect((await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  await bystander.pulse();
  expect(bystander.reportsSent).toBeGreaterThan(reportsBefore + 1);
}

/**
 * Runs the contract property over `arbitrary`; then the node and the bystander must be fine.
 * Returns how many answers had each outcome (`success`, or the error code).
 */
async function fuzz(arbitrary: fc.Arbitrary<FuzzRequest>, runs = numRuns): Promise<Map<string, number>> {
  tally.clear();
  const before = bystander.reportsSent;
  await fc.assert(fc.asyncProperty(arbitrary, holdsContract), { seed, numRuns: runs });
  await nodeAndBystanderFine(before);
  return new Map(tally);
}

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startNodeProcess({
    REDIS_URL: redis.url,
    CLUSTER: redis.cluster,
    ADMIN_TOKEN: ADMIN,
    NODE_ID: IDS.nodeId,
    SHARDS: '64',
    // Past the guard's buckets, so requests reach the handlers (429 is a coded answer too, but a shallow one).
    RATE_LIMIT_PER_TOKEN: '1000000',
    RATE_LIMIT_PER_HOME: '1000000',
    RATE_LIMIT_BURST: '1000000',
  });
  base = `http://127.0.0.1:${node.httpPort}`;
  const api = edge(node);
  await vi.waitFor(async () => expect((await api('GET', '/readyz')).status).toBe(200), { timeout: 20_000, interval: 100 });

  const fuzzHome = await provisionHome(api, ADMIN, IDS.home);
  await provisionHome(api, ADMIN, IDS.otherHome);
  const reader = await api('POST', '/v1/tokens', ADMIN, { homes: [IDS.home], scopes: ['read'] });
  expect(reader.status).toBe(201);
  tokens = { admin: ADMIN, app: fuzzHome.appToken, reader: reader.body.token as string };

  // The fuzz home's devices exist (a hub declared them), so writes reach the device checks.
  const grpc = `127.0.0.1:${node.grpcPort}`;
  const hub = new HubClient(grpc, fuzzHome.secret);
  hub.hello('hub1', IDS.home, [
    { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
    { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
    { deviceId: 'button1', type: 'button', capabilities: [] },
  ]);
  await hub.welcome(15_000);
  hub.close();
  const scene = { id: 's1', name: 'Evening', actions: [{ device: 'light1', name: 'set', params: { on: true } }] };
  expect((await api('POST', `/v1/homes/${IDS.home}/scenes`, ADMIN, scene)).status).toBe(201);

  const { secret } = await provisionHome(api, ADMIN, BYSTANDER_HOME);
  bystander = await Bystander.connect(grpc, secret, BYSTANDER_HOME);
  bystander.start();
}, 60_000);

afterAll(async () => {
  bystander?.close();
  if (node) await stopNode(node, 10_000);
  await redis?.stop();
});

describe('HTTP edge under fuzzing (fast-check, fixed seed)', () => {
  const families = routeFamilies(IDS);

  it('answers near-valid and hostile bodies on every route family with a success or a coded error', async () => {
    const outcomes = await fuzz(
      fc.constantFrom(...families).chain((r) => requestTo(r, IDS)),
      Math.round(numRuns * 1.5),
    );
    // The bodies reach the handlers: some requests succeed, many are refused for their content.
    expect(outcomes.get('success')).toBeGreaterThan(10);
    expect(outcomes.get('invalid_argument')).toBeGreaterThan(10);
  }, 60_000);

  it('answers ring plans with weights and ids at the edges with a coded error or a plan, and stays responsive', async () => {
    const nodeIdish = fc.oneof(fc.constantFrom(IDS.nodeId, 'n2', ''), hostileString(200));
    const weight = fc.oneof({ weight: 3, arbitrary: hostileNumber }, { weight: 1, arbitrary: hostileJson });
    const plan = fc.record(
      {
        add: fc.array(fc.record({ id: nodeIdish, weight }, { requiredKeys: ['id'] }), { maxLength: 3 }),
        weights: fc.dictionary(nodeIdish, weight, { maxKeys: 3 }),
        drain: fc.array(nodeIdish, { maxLength: 2 }),
        remove: fc.array(nodeIdish, { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );
    await fuzz(
      fc.record({
        method: fc.constant('POST'),
        path: fc.constantFrom('/v1/admin/ring/plan', '/v1/admin/ring/plan?detail=true'),
        caller: fc.constant('admin' as const),
        headers: fc.constant({}),
        body: plan.map((value) => ({ kind: 'json' as const, value, contentType: 'application/json' })),
      }),
      Math.round(numRuns * 0.7),
    );
  }, 60_000);

  it('answers odd path segments, methods and trailing paths with a coded error, never a 500', async () => {
    const oddPath = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...families).chain((r) => pathOf(r.path, () => oddSegment)) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...families), fc.array(oddSegment, { minLength: 1, maxLength: 3 }))
          .chain(([r, extra]) => pathOf(r.path, () => fc.constant(IDS.home)).map((p) => `${p}/${extra.join('/')}`)),
      },
      { weight: 1, arbitrary: hostileString(3_000).map((s) => `/${percentEncode(s)}`) },
    );
    await fuzz(
      fc.record({
        method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
        path: oddPath,
        caller,
        headers: fc.constant({}),
        body: fc.constant(undefined),
      }),
    );
  }, 60_000);

  it('answers garbage If-Match, If-None-Match, Last-Event-ID, Idempotency-Key and Authorization headers with a coded error', async () => {
    const headers = fc.dictionary(
      fc.constantFrom('if-match', 'if-none-match', 'last-event-id', 'idempotency-key', 'accept', 'x-request-id', 'content-encoding'),
      headerValue,
      { maxKeys: 4 },
    );
    await fuzz(
      fc.constantFrom(...families).chain((r) =>
        fc.record({
          method: fc.constant(r.method),
          path: requestTo(r, IDS).map((q) => q.path),
          caller,
          headers,
          body: r.body === undefined || r.method === 'GET' ? fc.constant(undefined) : fc.constant({ kind: 'json' as const, value: r.body }),
        }),
      ),
    );
  }, 60_000);
});
