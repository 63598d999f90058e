/** The node's peer authentication from its configuration, the secret its cluster keeps in Redis, and the peer address it advertises. */
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { advertisedPeerHost, hostPort, resolvePeerAuth, unreachablePeerHost } from '../../node/cluster-backend.ts';
import { openRedisBackend, type RedisBackend } from '../../node/redis-backend.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { makeTestPki, type TestPki } from '../support/test-certificates.ts';

const SECRET = 'a-configured-peer-secret-0123456789abcdef';

describe('resolvePeerAuth', () => {
  let pki: TestPki;
  let peerTls: { cert: string; key: string; ca: string };
  const fromRedis = { sharedPeerSecret: async () => 'the-secret-kept-in-redis-0123456789abcdef' };
  const noRedis = {
    sharedPeerSecret: async (): Promise<string> => {
      throw new Error('the shared secret must not be read when peer credentials are configured');
    },
  };

  beforeAll(() => {
    pki = makeTestPki();
    peerTls = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca };
  });
  afterAll(() => pki.remove());

  it('uses the secret the cluster keeps in Redis when neither PEER_SECRET nor PEER_TLS is set', async () => {
    expect(await resolvePeerAuth({ cluster: 'c', peerSecret: undefined, peerTls: undefined }, fromRedis)).toEqual({
      cluster: 'c',
      secret: 'the-secret-kept-in-redis-0123456789abcdef',
    });
  });

  it('uses PEER_SECRET, and PEER_TLS alone, without touching Redis; both together require both', async () => {
    expect(await resolvePeerAuth({ cluster: 'c', peerSecret: SECRET, peerTls: undefined }, noRedis)).toEqual({
      cluster: 'c',
      secret: SECRET,
      tls: undefined,
    });
    const tlsOnly = await resolvePeerAuth({ cluster: 'c', peerSecret: undefined, peerTls }, noRedis);
    expect(tlsOnly.secret).toBeUndefined();
    expect(tlsOnly.tls?.cert.toString()).toContain('BEGIN CERTIFICATE');
    const both = await resolvePeerAuth({ cluster: 'c', peerSecret: SECRET, peerTls }, noRedis);
    expect(both.secret).toBe(SECRET);
    expect(both.tls?.ca.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('refuses certificates without the cluster CA rather than fall back to the secret in Redis', async () => {
    await expect(
      resolvePeerAuth({ cluster: 'c', peerSecret: undefined, peerTls: { ...peerTls, ca: undefined } }, fromRedis),
    ).rejects.toThrow('PEER_TLS_CA must be set');
  });

  it('names the variable whose file cannot be read', async () => {
    await expect(
      resolvePeerAuth({ cluster: 'c', peerSecret: undefined, peerTls: { ...peerTls, ca: '/nonexistent/ca.crt' } }, noRedis),
    ).rejects.toThrow('PEER_TLS_CA=/nonexistent/ca.crt');
  });
});

describe('the peer secret kept in Redis', () => {
  let redis: TestRedis;
  const backends: RedisBackend[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await redis?.stop();
  });

  const open = async (nodeId: string, cluster: string, registry = new Registry(), peerSecretCheckMs?: number) => {
    const b = await openRedisBackend(
      { url: redis.url, cluster, nodeId, shards: 8, onShardLost: () => {}, peerSecretCheckMs },
      registry,
      silentLogger,
    );
    backends.push(b);
    return b;
  };

  const mismatch = async (registry: Registry) => (await registry.getSingleMetric('iot_peer_secret_mismatch')!.get()).values[0]?.value;

  it('is kept by every node that uses it: restored when the key is lost, a mismatch shown when another value replaced it', async () => {
    const registry = new Registry();
    const node = await open('n1', `${redis.cluster}keep`, registry, 50);
    const secret = await node.sharedPeerSecret();
    const key = node.keys.peerSecret();
    // Evicted or deleted: the next check writes it back, so a node started later reads the same secret.
    await node.client.del(key);
    await vi.waitFor(async () => expect(await node.client.get(key)).toBe(secret), { timeout: 5_000, interval: 20 });
    const later = await open('n2', `${redis.cluster}keep`);
    expect(await later.sharedPeerSecret()).toBe(secret);
    expect(await mismatch(registry)).toBe(0);
    // Replaced (a node generated another one while the key was missing): the split is shown, not hidden.
    await node.client.set(key, 'f'.repeat(64));
    await vi.waitFor(async () => expect(await mismatch(registry)).toBe(1), { timeout: 5_000, interval: 20 });
    expect(await node.client.get(key)).toBe('f'.repeat(64));
    await node.client.set(key, secret);
    await vi.waitFor(async () => expect(await mismatch(registry)).toBe(0), { timeout: 5_000, interval: 20 });
  });

  it('is generated once, by whichever node asks first, and is the same for every node of the cluster', async () => {
    const [a, b] = await Promise.all([open('n1', `${redis.cluster}s1`), open('n2', `${redis.cluster}s1`)]);
    const [sa, sb] = await Promise.all([a.sharedPeerSecret(), b.sharedPeerSecret()]);
    expect(sa).toMatch(/^[0-9a-f]{64}$/);
    expect(sb).toBe(sa);
    expect(await a.sharedPeerSecret()).toBe(sa);
    expect(await a.client.get(a.keys.peerSecret())).toBe(sa);
    // Another cluster on the same Redis has its own.
    const other = await open('n1', `${redis.cluster}s2`);
    expect(await other.sharedPeerSecret()).not.toBe(sa);
  });
});

describe('advertisedPeerHost', () => {
  it.each([
    ['127.0.0.1', '0.0.0.0', '127.0.0.1'],
    ['10.0.0.7', '0.0.0.0', '10.0.0.7'],
    ['0.0.0.0', '10.0.0.7', '10.0.0.7'],
    ['::', 'node1.internal', 'node1.internal'],
    ['0.0.0.0', '0.0.0.0', hostname()],
    ['::', '::', hostname()],
  ])('PEER_HOST=%s with HOST=%s is reached at %s', (peerHost, host, advertised) => {
    expect(advertisedPeerHost(peerHost, host)).toBe(advertised);
  });

  it('says when other machines cannot reach the peer port: loopback PEER_HOST with a non-loopback HOST (an upgrade that set only HOST)', () => {
    expect(unreachablePeerHost('127.0.0.1', '10.0.0.7')).toContain('nodes on other machines cannot reach this node');
    expect(unreachablePeerHost('127.0.0.1', '0.0.0.0')).toContain('PEER_HOST');
    expect(unreachablePeerHost('::1', 'node1.internal')).toContain('PEER_HOST');
    expect(unreachablePeerHost('127.0.0.1', '127.0.0.1')).toBeUndefined();
    expect(unreachablePeerHost('127.0.0.2', 'localhost')).toBeUndefined();
    expect(unreachablePeerHost('10.0.0.7', '0.0.0.0')).toBeUndefined();
    expect(unreachablePeerHost('0.0.0.0', '10.0.0.7')).toBeUndefined();
    // ADVERTISE_HOST tells the others where to dial: a loopback-only PEER_HOST refuses them all.
    expect(unreachablePeerHost('127.0.0.1', '0.0.0.0', 'n1.iot-peers')).toContain('other nodes dial it at n1.iot-peers (ADVERTISE_HOST)');
    expect(unreachablePeerHost('::1', '10.0.0.7', '10.0.0.7')).toContain('PEER_HOST');
    expect(unreachablePeerHost('0.0.0.0', '0.0.0.0', 'n1.iot-peers')).toBeUndefined();
    expect(unreachablePeerHost('10.0.0.7', '127.0.0.1', 'n1.iot-peers')).toBeUndefined();
    // Advertised loopback: every node on this machine, nothing to warn about.
    expect(unreachablePeerHost('127.0.0.1', '10.0.0.7', '127.0.0.1')).toBeUndefined();
  });

  it('brackets an IPv6 host in the address', () => {
    expect(hostPort('::1', 50052)).toBe('[::1]:50052');
    expect(hostPort('10.0.0.7', 50052)).toBe('10.0.0.7:50052');
  });
});
