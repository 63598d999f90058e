/**
 * The credential lifecycle across a cluster: three real `node/main.ts` processes on 127.0.0.1
 * over one private redis-server. A token revoked on one node is refused on the others, and their
 * open event streams end, within a bound (measured and logged; generous, it guards against
 * regressions, it is no benchmark); an expired token answers token_expired everywhere; a rotated
 * hub secret connects on any node while the old one lasts its grace period only; racing
 * rotations leave a working secret; a deleted hub's open stream ends with UNAUTHENTICATED; a
 * deleted home is gone everywhere, and the tokens granted it do not reach a home created anew.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { provisionHome, TestCluster, type Api } from '../support/cluster-harness.ts';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';

const ADMIN = 'admin-token-for-credential-tests';
const NODES = ['node-1', 'node-2', 'node-3'] as const;
const DEVICES: HelloDevice[] = [{ deviceId: 'lamp', type: 'light', capabilities: ['on'] }];
/** Polls: nodes on a loaded 2-core machine see a change later than the 1 s the cluster promises. */
const POLL = { timeout: 15_000, interval: 100 };
/**
 * Ms from a revocation's answer to its refusal on the other nodes that a test accepts: the
 * cluster promises 1 s (token cache TTL 500 ms + event stream re-check 400 ms = 900 ms, measured
 * ~0.3-0.8 s here; the sum is pinned by a unit test in event-stream-access.test.ts). Twice the
 * promise leaves room for a loaded CI machine while still catching a mechanism made much longer.
 */
const REVOCATION_BOUND_MS = 2_000;
/** Ms past `previousValidUntil` within which a rotated-out secret must be refused (node clocks are this machine's). */
const GRACE_END_BOUND_MS = 3_000;

let redis: TestRedis;
let cluster: TestCluster;
const api = (node: string): Api => cluster.api(node);
const hubs: HubClient[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  cluster = new TestCluster({ redisUrl: redis.url, cluster: `${redis.cluster}cred`, adminToken: ADMIN, shards: 16 });
  for (const id of NODES) await cluster.start(id);
  await cluster.settled('node-1', [...NODES], 60_000);
}, 120_000);

afterAll(async () => {
  for (const h of hubs) h.close();
  await cluster?.close();
  await redis?.stop();
});

function printOutputsOnFailure(): void {
  onTestFailed(() => console.error(cluster.outputs()));
}

/** Opens a hub stream on `node` with `secret` and says hello. */
function connect(node: string, secret: string, homeId: string): HubClient {
  const hub = new HubClient(cluster.grpc(node), secret);
  hubs.push(hub);
  hub.hello('hub1', homeId, DEVICES);
  return hub;
}

/** An open event stream of `homeId` on `node`; `ended` resolves with when (epoch ms) and what it said once the server ends it. */
async function openEvents(
  node: string,
  homeId: string,
  token: string,
): Promise<{ ended: Promise<{ at: number; text: string }>; close: () => void }> {
  const abort = new AbortController();
  const res = await fetch(`http://127.0.0.1:${cluster.node(node).httpPort}/v1/homes/${homeId}/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { at: Date.now(), text };
      text += decoder.decode(value, { stream: true });
    }
  })();
  ended.catch(() => undefined);
  return { ended, close: () => abort.abort() };
}

/** When (epoch ms) `node` first refuses `token` on `path` with `code`, polled every 20 ms. */
async function refusedAt(node: string, path: string, token: string, status: number, code: string): Promise<number> {
  let at = 0;
  await vi.waitFor(
    async () => {
      const r = await api(node)('GET', path, token);
      at = Date.now();
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
    },
    { timeout: 15_000, interval: 20 },
  );
  return at;
}

/** True when `secret` gets a welcome on `node`; false when the stream is refused with UNAUTHENTICATED. */
async function secretWorks(node: string, secret: string, homeId: string): Promise<boolean> {
  const hub = connect(node, secret, homeId);
  const outcome = await Promise.race([
    hub.welcome(10_000).then(() => true),
    hub.ended(10_000).then((s) => {
      if (s.code !== GrpcStatus.UNAUTHENTICATED) throw new Error(`stream ended with ${s.code} ${s.details}`);
      return false;
    }),
  ]);
  hub.close();
  return outcome;
}

describe('credential lifecycle across a 3-node cluster', () => {
  it('refuses a token revoked on node 1 on nodes 2 and 3 soon after, with token_revoked', async () => {
    printOutputsOnFailure();
    await provisionHome(api('node-1'), ADMIN, 'revoke-home');
    const minted = await api('node-1')('POST', '/v1/tokens', ADMIN, { homes: ['revoke-home'], scopes: ['read'] });
    expect(minted.status).toBe(201);
    const { token, tokenId } = minted.body as { token: string; tokenId: string };
    // Every node serves it (and caches its grant); nodes 2 and 3 hold an event stream open with it.
    for (const node of NODES) expect((await api(node)('GET', '/v1/homes/revoke-home', token)).status).toBe(200);
    const streams = await Promise.all(['node-2', 'node-3'].map((node) => openEvents(node, 'revoke-home', token)));

    try {
      expect((await api('node-1')('DELETE', `/v1/tokens/${tokenId}`, ADMIN)).status).toBe(204);
      const answeredAt = Date.now();
      expect((await api('node-1')('GET', '/v1/homes/revoke-home', token)).body.error.code).toBe('token_revoked');
      const refused = await Promise.all(
        ['node-2', 'node-3'].map((node) => refusedAt(node, '/v1/homes/revoke-home', token, 401, 'token_revoked')),
      );
      const ended = await Promise.all(streams.map((s) => s.ended));
      for (const e of ended) expect(e.text).toContain('token_revoked');
      const elapsed = [...refused, ...ended.map((e) => e.at)].map((at) => at - answeredAt);
      console.info(
        `revocation seen on nodes 2 and 3 after ${elapsed.slice(0, 2).join(', ')} ms; their event streams ended after ${elapsed.slice(2).join(', ')} ms`,
      );
      for (const ms of elapsed) expect(ms).toBeLessThan(REVOCATION_BOUND_MS);
    } finally {
      for (const s of streams) s.close();
    }
    const listed = await api('node-3')('GET', '/v1/tokens?limit=200', ADMIN);
    expect(listed.body.items.map((t: { tokenId: string }) => t.tokenId)).not.toContain(tokenId);
    expect((await api('node-2')('DELETE', `/v1/tokens/${tokenId}`, ADMIN)).status).toBe(404);
  });

  it('answers token_expired on every node once a token has expired', async () => {
    printOutputsOnFailure();
    await provisionHome(api('node-2'), ADMIN, 'expiry-home');
    const minted = await api('node-2')('POST', '/v1/tokens', ADMIN, { homes: ['expiry-home'], scopes: ['read'], ttlSeconds: 1 });
    expect(minted.status).toBe(201);
    expect(minted.body.expiresAt).toBeGreaterThan(Date.now() - 5_000);
    for (const node of NODES) {
      await vi.waitFor(async () => {
        const r = await api(node)('GET', '/v1/homes/expiry-home', minted.body.token);
        expect(r.status).toBe(401);
        expect(r.body.error.code).toBe('token_expired');
      }, POLL);
    }
  });

  it('rotates a hub secret: the new one connects on any node, the old one during the grace period only', async () => {
    printOutputsOnFailure();
    const homeId = 'rotate-home';
    const { secret: old } = await provisionHome(api('node-1'), ADMIN, homeId);
    expect(await secretWorks('node-3', old, homeId)).toBe(true);

    const rotated = await api('node-2')('POST', `/v1/homes/${homeId}/hubs/hub1/secret`, ADMIN, { graceSeconds: 6 });
    expect(rotated.status).toBe(200);
    const { secret, previousValidUntil } = rotated.body as { secret: string; previousValidUntil: number };
    for (const node of NODES) expect(await secretWorks(node, secret, homeId), node).toBe(true);
    if (Date.now() < previousValidUntil - 1_000) expect(await secretWorks('node-1', old, homeId)).toBe(true);

    await vi.waitFor(async () => expect(await secretWorks('node-1', old, homeId)).toBe(false), { ...POLL, timeout: 30_000 });
    const late = Date.now() - previousValidUntil;
    console.info(`the rotated-out secret was refused ${late} ms after previousValidUntil`);
    expect(late).toBeLessThan(GRACE_END_BOUND_MS);
    for (const node of NODES) expect(await secretWorks(node, old, homeId), node).toBe(false);
    expect(await secretWorks('node-2', secret, homeId)).toBe(true);
  });

  it('leaves a working secret after two rotations racing on two nodes, and the old one retired', async () => {
    printOutputsOnFailure();
    const homeId = 'race-rotate-home';
    const { secret: old } = await provisionHome(api('node-1'), ADMIN, homeId);
    const answers = await Promise.all(
      ['node-1', 'node-2'].map((node) => api(node)('POST', `/v1/homes/${homeId}/hubs/hub1/secret`, ADMIN, { graceSeconds: 0 })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    // One at a time: a hub's newer stream supersedes its older one.
    const works: boolean[] = [];
    for (const a of answers) works.push(await secretWorks('node-3', a.body.secret as string, homeId));
    expect(works).toContain(true);
    expect(await secretWorks('node-3', old, homeId)).toBe(false);
  });

  it('ends a deleted hub’s open stream with UNAUTHENTICATED and refuses its secret on every node', async () => {
    printOutputsOnFailure();
    const homeId = 'remove-hub-home';
    const { secret } = await provisionHome(api('node-1'), ADMIN, homeId);
    const hub = connect('node-2', secret, homeId);
    await hub.welcome();

    expect((await api('node-3')('DELETE', `/v1/homes/${homeId}/hubs/hub1`, ADMIN)).status).toBe(204);
    const end = await hub.ended(15_000);
    expect(end.code).toBe(GrpcStatus.UNAUTHENTICATED);
    for (const node of NODES) expect(await secretWorks(node, secret, homeId), node).toBe(false);
    expect((await api('node-1')('GET', `/v1/homes/${homeId}`, ADMIN)).body.hubs).toEqual([]);
  });

  it('deletes a home on every node: 404 everywhere, its hub refused, a home created anew starts empty', async () => {
    printOutputsOnFailure();
    const homeId = 'delete-home';
    const { secret, appToken } = await provisionHome(api('node-1'), ADMIN, homeId);
    const hub = connect('node-3', secret, homeId);
    await hub.welcome();
    await vi.waitFor(async () => expect((await api('node-2')('GET', `/v1/homes/${homeId}/devices/lamp`, appToken)).status).toBe(200), POLL);

    expect((await api('node-2')('DELETE', `/v1/homes/${homeId}`, ADMIN)).status).toBe(204);
    for (const node of NODES) expect((await api(node)('GET', `/v1/homes/${homeId}`, ADMIN)).status).toBe(404);
    expect((await hub.ended(15_000)).code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(await secretWorks('node-1', secret, homeId)).toBe(false);
    await vi.waitFor(async () => expect((await api('node-1')('GET', `/v1/homes/${homeId}/devices/lamp`, ADMIN)).status).toBe(404), POLL);

    expect((await api('node-3')('PUT', `/v1/homes/${homeId}`, ADMIN, { name: 'Again' })).status).toBe(201);
    expect((await api('node-1')('GET', `/v1/homes/${homeId}`, ADMIN)).body).toMatchObject({ name: 'Again', devices: [], hubs: [] });
    // The token granted the deleted home does not reach the new one, on any node; one minted now does.
    for (const node of NODES) await refusedAt(node, `/v1/homes/${homeId}`, appToken, 403, 'forbidden');
    const fresh = await api('node-2')('POST', '/v1/tokens', ADMIN, { homes: [homeId], scopes: ['read'] });
    for (const node of NODES) expect((await api(node)('GET', `/v1/homes/${homeId}`, fresh.body.token)).status, node).toBe(200);
  });
});
