/**
 * The peer port under attack, end to end: two real `node/main.ts` processes over a private
 * redis-server. A stream without a credential, with a guessed secret or with a certificate of
 * another CA is refused, and what it tried (a forged report that unlocks a door, a hub's durable
 * cursor at 2^53-1, a command down a hub's stream) has no effect; the nodes still talk to each
 * other: the home of one node is provisioned and read through the other.
 */
import { Client, credentials, Metadata, status, type ChannelCredentials, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { signPeerStream } from '../../cluster/peer-auth.ts';
import { exchangeMethod, type WirePeerBatch, type WirePeerMessage, type WireReply } from '../../cluster/peer-wire.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import type { NodeProcess } from '../../tools/process/node-process.ts';
import { homesOn, provisionHome, TestCluster } from '../support/cluster-harness.ts';
import { makeTestPki, type TestPki } from '../support/test-certificates.ts';

const ADMIN = 'admin-token-for-peer-security-tests';
const SHARDS = 16;

let redis: TestRedis;
let admin: Redis;
let clusterSeq = 0;
let cleanups: (() => Promise<unknown> | void)[] = [];
let pki: TestPki;

beforeAll(async () => {
  redis = await startTestRedis();
  admin = new Redis(redis.url);
  pki = makeTestPki();
});

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
  pki?.remove();
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const fn of pending)
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
});

function newCluster(env: Record<string, string> = {}): TestCluster {
  const cluster = new TestCluster({
    redisUrl: redis.url,
    cluster: `${redis.cluster}p${clusterSeq++}`,
    adminToken: ADMIN,
    shards: SHARDS,
    env,
  });
  cleanups.push(() => cluster.close());
  onTestFailed(() => console.error(cluster.outputs()));
  return cluster;
}

/** The peer address (host:port) a node printed in its start line. */
function peerAddress(node: NodeProcess): string {
  const { peer } = node.addresses;
  if (peer === undefined) throw new Error(`no peer address in the start line: ${node.output()}`);
  return peer;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** What an attacker sends: a report that unlocks the door, the hub's durable cursor at 2^53-1, an unlock command down the hub's stream. */
function injection(homeId: string): WirePeerMessage[] {
  return [
    {
      tell: {
        actor_id: `device:${homeId}:front-door`,
        payload: json({ type: 'report', seq: 1, tsMs: Date.now(), attributes: { locked: false } }),
        durable: true,
        hops: 0,
        epoch: 0,
      },
    },
    {
      request: {
        id: 1,
        actor_id: `hub:${homeId}:hub1`,
        payload: json({ type: 'hub.durable', upToSeq: Number.MAX_SAFE_INTEGER }),
        timeout_ms: 2_000,
        hops: 0,
        epoch: 0,
      },
    },
    {
      delivery: {
        channel: 'hub.command',
        payload: json({ homeId, hubId: 'hub1', command: { commandId: 'evil', device: 'front-door', name: 'unlock', params: {} } }),
      },
    },
  ];
}

/** Opens an Exchange stream to `address`, sends `items`, half-closes after `endAfterMs`; resolves with its status and replies. */
function exchange(
  address: string,
  channel: ChannelCredentials,
  md: Metadata,
  items: WirePeerMessage[],
  endAfterMs = 1_000,
): Promise<{ status: StatusObject; replies: WireReply[] }> {
  const raw = new Client(address, channel);
  const m = exchangeMethod();
  const call: ClientDuplexStream<WirePeerBatch, WirePeerBatch> = raw.makeBidiStreamRequest(
    m.path,
    m.requestSerialize,
    m.responseDeserialize,
    md,
  );
  const replies: WireReply[] = [];
  call.on('data', (batch: WirePeerBatch) => replies.push(...batch.items.flatMap((i) => (i.reply ? [i.reply] : []))));
  call.on('error', () => {});
  call.write({ items });
  const timer = setTimeout(() => call.end(), endAfterMs);
  return new Promise((resolve) =>
    call.on('status', (s: StatusObject) => {
      clearTimeout(timer);
      raw.close();
      resolve({ status: s, replies });
    }),
  );
}

/** A stream proof for a stream to n2 (the node these tests dial). */
const signed = (secret: string, cluster: string, nodeId = 'intruder'): Metadata => {
  const md = new Metadata();
  signPeerStream(md, secret, cluster, nodeId, 'n2');
  return md;
};

describe('the peer port (real node processes, one private redis-server)', () => {
  it(
    'with no configuration, refuses a stream without the cluster secret or with a guessed one, and nothing it sent has an effect',
    { timeout: 90_000 },
    async () => {
      const cluster = newCluster();
      // n2's peer port binds another loopback address than its HTTP and gRPC ports (PEER_HOST), and n1 finds it there.
      await Promise.all([cluster.start('n1'), cluster.start('n2', { PEER_HOST: '127.0.0.2' })]);
      const state = await cluster.settled('n1', ['n1', 'n2']);
      const [homeId] = homesOn(state, 'n2', 1, 'peer-sec');
      // The nodes talk: n1 provisions and reads a home that n2 owns.
      const { appToken } = await provisionHome(cluster.api('n1'), ADMIN, homeId!);
      expect((await cluster.api('n1')('GET', `/v1/homes/${homeId}`, appToken)).status).toBe(200);

      const keys = new KeyLayout(cluster.opts.cluster);
      const secret = await admin.get(keys.peerSecret());
      expect(secret).toMatch(/^[0-9a-f]{64}$/);

      const peer = peerAddress(cluster.node('n2'));
      expect(peer).toMatch(/^127\.0\.0\.2:/);
      // Bound on PEER_HOST only: HOST (127.0.0.1) has no peer service on that port. Usually nothing
      // listens there (UNAVAILABLE); the OS may have given the same port number on 127.0.0.1 to
      // another gRPC server (a node's hub port: seen in CI), which does not implement the peer service.
      const onHost = await exchange(peer.replace('127.0.0.2', '127.0.0.1'), credentials.createInsecure(), new Metadata(), []);
      expect([status.UNAVAILABLE, status.UNIMPLEMENTED]).toContain(onHost.status.code);
      const attempts = [
        ['no credential', new Metadata()],
        ['a guessed secret', signed('0'.repeat(64), cluster.opts.cluster)],
        ['the secret of another cluster', signed(secret!, 'another-cluster')],
      ] as const;
      for (const [what, md] of attempts) {
        const { status: s, replies } = await exchange(peer, credentials.createInsecure(), md, injection(homeId!));
        expect(s.code, what).toBe(status.UNAUTHENTICATED);
        expect(replies, what).toEqual([]);
      }

      // Nothing was applied: the door never reported, and the hub's durable cursor is untouched.
      expect((await cluster.api('n1')('GET', `/v1/homes/${homeId}/devices/front-door`, appToken)).status).toBe(404);
      const hubGet: WirePeerMessage = {
        request: { id: 7, actor_id: `hub:${homeId}:hub1`, payload: json({ type: 'hub.get' }), timeout_ms: 5_000, hops: 0, epoch: 0 },
      };
      const member = await exchange(peer, credentials.createInsecure(), signed(secret!, cluster.opts.cluster, 'n1'), [hubGet], 2_000);
      expect(member.status.code).toBe(status.OK);
      expect(JSON.parse(Buffer.from(member.replies[0]!.payload).toString())).toMatchObject({
        ok: true,
        value: { ok: true, value: { lastDurableSeq: 0 } },
      });

      // The same report over a stream signed with the cluster's secret is applied: the refusals above are what kept it out.
      const forged = injection(homeId!)[0]!;
      expect(
        (await exchange(peer, credentials.createInsecure(), signed(secret!, cluster.opts.cluster, 'n1'), [forged], 500)).status.code,
      ).toBe(status.OK);
      const door = await cluster.api('n1')('GET', `/v1/homes/${homeId}/devices/front-door`, appToken);
      expect(door.status).toBe(200);
      expect(door.body.reported.locked.value).toBe(false);
    },
  );

  it(
    'with mutual TLS, refuses a certificate of another CA and a plaintext client; the nodes talk over TLS with no secret in Redis',
    { timeout: 90_000 },
    async () => {
      // Both nodes present the certificate for 127.0.0.1 (server and client use) the cluster CA signed.
      const tlsEnv = { PEER_TLS_CERT: pki.server.cert, PEER_TLS_KEY: pki.server.key, PEER_TLS_CA: pki.ca };
      const cluster = newCluster();
      await Promise.all([cluster.start('n1', tlsEnv), cluster.start('n2', tlsEnv)]);
      const state = await cluster.settled('n1', ['n1', 'n2']);
      const [homeId] = homesOn(state, 'n2', 1, 'peer-tls');
      const { appToken } = await provisionHome(cluster.api('n1'), ADMIN, homeId!);
      expect((await cluster.api('n1')('GET', `/v1/homes/${homeId}`, appToken)).status).toBe(200);
      expect(await admin.exists(new KeyLayout(cluster.opts.cluster).peerSecret())).toBe(0);

      const ca = pki.read(pki.ca);
      const rogue = { cert: pki.read(pki.strangerClient.cert), key: pki.read(pki.strangerClient.key) };
      const peer = peerAddress(cluster.node('n2'));
      for (const [what, channel] of [
        ['a certificate of another CA', credentials.createSsl(ca, rogue.key, rogue.cert)],
        ['no client certificate', credentials.createSsl(ca)],
        ['plaintext', credentials.createInsecure()],
      ] as const) {
        const { status: s, replies } = await exchange(peer, channel, new Metadata(), injection(homeId!));
        expect(s.code, what).toBe(status.UNAVAILABLE);
        expect(replies, what).toEqual([]);
      }
      expect((await cluster.api('n1')('GET', `/v1/homes/${homeId}/devices/front-door`, appToken)).status).toBe(404);
    },
  );
});
