import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import {
  keySlot,
  ReplicaWait,
  ReplicaWaitError,
  shardConnection,
  WAIT_REPLY_MARGIN_MS,
  type WaitConnection,
} from '../../../runtime/redis/replica-wait.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { freePortPair, halt } from '../../support/redis-cluster.ts';
import { waitForReplicas } from '../../support/redis-sentinel.ts';
import { RedisClients } from '../../support/redis-node.ts';

/** A connection that records each command and answers WAIT with `answer` (a number of replicas, or an error). */
class FakeConnection implements WaitConnection {
  stream: unknown = {};
  readonly sent: string[][] = [];
  constructor(public answer: number | Error) {}
  sendCommand(command: Command): unknown {
    this.sent.push([command.name, ...command.args.map(String)]);
    const answer = this.answer;
    setTimeout(() => (answer instanceof Error ? command.reject(answer) : command.resolve(answer)), 1);
    return command.promise;
  }
}

function replicaWait(connOf: (shard: number) => WaitConnection, replicas = 1, timeoutMs = 50) {
  const registry = new Registry();
  const wait = new ReplicaWait(connOf, { replicas, timeoutMs }, registry, silentLogger);
  /** A counter's value. */
  const value = async (name: string, reason?: string): Promise<number> =>
    (await registry.getSingleMetric(name)!.get()).values
      .filter((v) => reason === undefined || v.labels.reason === reason)
      .reduce((sum, v) => sum + v.value, 0);
  return { wait, registry, value };
}

const outcome = (p: Promise<void>): Promise<'ok' | Error> =>
  p.then(
    () => 'ok' as const,
    (err: Error) => err,
  );

describe('ReplicaWait', () => {
  it('resolves when WAIT answers at least the replicas asked for, sending WAIT <replicas> <timeoutMs>', async () => {
    const conn = new FakeConnection(2);
    const { wait } = replicaWait(() => conn, 2, 700);
    await expect(wait.confirm(3)).resolves.toBeUndefined();
    expect(conn.sent).toEqual([['wait', '2', '700']]);
  });

  it('fails the window when WAIT answers fewer replicas than asked, and counts it', async () => {
    const conn = new FakeConnection(0);
    const { wait, value } = replicaWait(() => conn, 1);
    const err = await outcome(wait.confirm(1));
    expect(err).toBeInstanceOf(ReplicaWaitError);
    expect((err as ReplicaWaitError).code).toBe('REDIS_REPLICAS_SHORT');
    expect((err as ReplicaWaitError).reached).toBe(0);
    expect((err as Error).message).toBe('only 0 of 1 Redis replicas acknowledged the write within 50 ms');
    expect(await value('iot_redis_replica_wait_failures_total', 'short')).toBe(1);
  });

  it('shares one WAIT among the windows confirmed in the same tick on the same connection', async () => {
    const conn = new FakeConnection(1);
    const { wait, value } = replicaWait(() => conn);
    const all = await Promise.all([0, 1, 2, 3, 4].map((s) => outcome(wait.confirm(s))));
    expect(all).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(conn.sent).toHaveLength(1);
    expect(await value('iot_redis_replica_wait_windows_total')).toBe(5);
    // A later tick gets a WAIT of its own (the earlier one says nothing about writes answered after it was sent).
    await wait.confirm(0);
    expect(conn.sent).toHaveLength(2);
  });

  it('fails every window sharing a WAIT that answers too few, and only those', async () => {
    const conn = new FakeConnection(0);
    const { wait, value } = replicaWait(() => conn);
    const first = await Promise.all([0, 1, 2].map((s) => outcome(wait.confirm(s))));
    expect(first.every((e) => e instanceof ReplicaWaitError)).toBe(true);
    expect(conn.sent).toHaveLength(1);
    expect(await value('iot_redis_replica_wait_failures_total', 'short')).toBe(3);
    conn.answer = 1; // the replica is back: the next windows are acked
    expect(await outcome(wait.confirm(0))).toBe('ok');
  });

  it('sends one WAIT per connection: on a Redis Cluster each master is asked for its own writes', async () => {
    const a = new FakeConnection(1);
    const b = new FakeConnection(0);
    const { wait } = replicaWait((shard) => (shard % 2 === 0 ? a : b));
    const all = await Promise.all([0, 1, 2, 3].map((s) => outcome(wait.confirm(s))));
    expect(all[0]).toBe('ok');
    expect(all[2]).toBe('ok');
    expect(all[1]).toBeInstanceOf(ReplicaWaitError);
    expect(all[3]).toBeInstanceOf(ReplicaWaitError);
    expect(a.sent).toHaveLength(1);
    expect(b.sent).toHaveLength(1);
  });

  it('fails the window when WAIT itself fails (connection lost, a replica asked, timeout)', async () => {
    const conn = new FakeConnection(new Error('Connection is closed.'));
    const { wait, value } = replicaWait(() => conn);
    const err = await outcome(wait.confirm(0));
    expect(err).toBeInstanceOf(ReplicaWaitError);
    expect((err as Error).message).toBe('WAIT for 1 Redis replicas failed: Connection is closed.');
    expect((err as ReplicaWaitError).reached).toBeUndefined();
    expect(await value('iot_redis_replica_wait_failures_total', 'unknown')).toBe(1);
    expect(await value('iot_redis_replica_wait_failures_total', 'short')).toBe(0);
  });

  it('fails, without asking, the windows whose connection changed before the WAIT went (a reconnect: it would not cover them)', async () => {
    const conn = new FakeConnection(1);
    const { wait } = replicaWait(() => conn);
    const before = outcome(wait.confirm(0));
    conn.stream = {}; // reconnected in the same tick
    const after = outcome(wait.confirm(1));
    expect(await before).toBeInstanceOf(ReplicaWaitError);
    expect(((await before) as Error).message).toContain('the Redis connection changed after the write');
    expect(await after).toBe('ok');
    expect(conn.sent).toHaveLength(1);
  });

  it("bounds a WAIT that gets no reply at its timeout plus a margin (a silent socket), over the client's command timeout", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate'] });
    try {
      const silent: WaitConnection = { stream: {}, sendCommand: (c: Command) => c.promise };
      const { wait } = replicaWait(() => silent, 1, 7_000);
      const result = outcome(wait.confirm(0));
      await vi.advanceTimersByTimeAsync(7_000 + WAIT_REPLY_MARGIN_MS - 1);
      let settled = false;
      void result.then(() => (settled = true));
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(((await result) as Error).message).toBe('WAIT for 1 Redis replicas failed: Command timed out');
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails the window when the shard has no connection yet (a Cluster without slot information)', async () => {
    const { wait } = replicaWait(() => {
      throw new Error('the Redis Cluster has no node for slot 7 yet');
    });
    const err = await outcome(wait.confirm(0));
    expect(err).toBeInstanceOf(ReplicaWaitError);
    expect((err as Error).message).toBe('no connection for shard 0: the Redis Cluster has no node for slot 7 yet');
  });

  it('refuses replicas < 1 or a timeout < 1 ms', () => {
    const conn = new FakeConnection(1);
    expect(() => replicaWait(() => conn, 0)).toThrow('replicas must be an integer ≥ 1, got 0');
    expect(() => replicaWait(() => conn, 1, 0)).toThrow('timeoutMs must be an integer ≥ 1, got 0');
  });
});

describe('keySlot', () => {
  it('hashes keys as Redis Cluster does (CRC16 of the hash tag when there is one)', () => {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('123456789')).toBe(0x31c3 & 0x3fff);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot('{iot:17}:fence')).toBe(keySlot('{iot:17}:j:device:h:d'));
  });
});

describe('RedisStore with REDIS_WAIT_REPLICAS on a real Redis', () => {
  let redis: TestRedis;
  const clients = new RedisClients(() => redis.url);
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    clients.disconnectAll();
    await redis.stop();
  });

  it('fails windows and recoveries while the master has no replica, and acks them once one is connected', async () => {
    const shardOf = shardOfActor(16);
    const keys = new KeyLayout(redis.cluster);
    const node = await clients.node(keys);
    const registry = new Registry();
    const wait = new ReplicaWait(shardConnection(node.client, keys), { replicas: 1, timeoutMs: 100 }, registry, silentLogger);
    const store = new RedisStore({
      client: node.client,
      keys,
      shardOf,
      fenceToken: (s) => node.leases.token(s),
      onFenced: () => {},
      registry,
      logger: silentLogger,
      replicated: (s) => wait.confirm(s),
    });
    const id = 'device:h1:d1';
    const started = performance.now();
    await expect(store.write(id, { events: [{ seq: 1, at: 1, msg: { a: 1 } }] })).rejects.toThrow(
      'only 0 of 1 Redis replicas acknowledged the write within 100 ms',
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(90); // WAIT waited its timeout
    // The window is in the master (WAIT cannot undo it): its state is not handed out before a replica holds it.
    expect(await node.client.hget(keys.actorMeta(shardOf(id), id), 'last')).toBe('1');
    await expect(store.recoverMany([id])).rejects.toBeInstanceOf(ReplicaWaitError);

    await node.client.config('SET', 'repl-diskless-sync-delay', '0'); // the replica syncs at once (default: after 5 s)
    const port = await freePortPair();
    const dir = mkdtempSync(join(tmpdir(), 'iot-redis-replica-')); // the replica writes the RDB it syncs
    const replica = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--replicaof', '127.0.0.1', redis.url.split(':').pop()!],
      {
        stdio: 'ignore',
      },
    );
    try {
      await waitForReplicas(Number(redis.url.split(':').pop()), 1);
      // Online for the master, the replica may still be loading what it synced (it acks after): retried until it acks.
      await vi.waitFor(
        async () => expect((await store.recoverMany([id])).get(id)).toEqual({ events: [{ seq: 1, at: 1, msg: { a: 1 } }] }),
        { timeout: 10_000, interval: 50 },
      );
      // A write acks once the replica answers within the 100 ms WAIT (on a loaded machine a first one may still miss it:
      // that window failed but is on the master, so the next write follows it).
      let seq = 2;
      await vi.waitFor(
        async () => {
          const next = seq++;
          await store.write(id, { events: [{ seq: next, at: next, msg: { a: next } }] });
        },
        { timeout: 10_000, interval: 50 },
      );
      const failures = (await registry.getSingleMetric('iot_redis_replica_wait_failures_total')!.get()).values;
      expect(failures.map((v) => v.labels.reason)).toEqual(['short']);
      expect(failures[0]!.value).toBeGreaterThanOrEqual(2);
    } finally {
      await halt(replica);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
