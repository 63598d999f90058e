import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ShardLeases } from '../../../cluster/shard-leases.ts';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import type { JournalEntry, Recovered, Snapshot } from '../../../runtime/persistence-port.ts';
import { BulkRecoveryError, decodeRecovered, recoverMany } from '../../../runtime/redis/bulk-recovery.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { connectRedis, createRedisClient, type RedisClient } from '../../../runtime/redis/redis-connection.ts';
import { RedisStore } from '../../../runtime/redis/redis-store.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { mulberry32, pick, randomInt, shuffle } from '../../support/prng.ts';
import { RedisClients } from '../../support/redis-node.ts';

/**
 * Activation in bulk: `recoverMany` must hand the host exactly what `RedisStore.recover` hands it
 * one actor at a time, for any write history, in far fewer round trips.
 */

const SHARDS = 8;
const shardOf = shardOfActor(SHARDS);
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}b${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/** A random JSON value: what reducers put in messages and states (unicode, quotes, floats, nesting). */
function randomJson(r: () => number, depth = 0): unknown {
  const roll = r();
  if (depth > 2 || roll < 0.15) return pick(r, [null, true, false, 0, -1.5, 1e21, 'ü"\\\n🔥', '']);
  if (roll < 0.35) return randomInt(r, 1_000_000) / pick(r, [1, 7, 1000]);
  if (roll < 0.55) return `s${randomInt(r, 1000)}${pick(r, ['', ' ', 'é', '"q"', '\u2028'])}`;
  if (roll < 0.75) return Array.from({ length: randomInt(r, 4) }, () => randomJson(r, depth + 1));
  return Object.fromEntries(
    Array.from({ length: randomInt(r, 4) }, (_, i) => [`k${i}${pick(r, ['', '.', ':'])}`, randomJson(r, depth + 1)]),
  );
}

/** What the test knows about one actor's writes so far. */
interface History {
  last: number;
  snap: number;
}

interface Trial {
  readonly client: RedisClient;
  readonly keys: KeyLayout;
  /** Every id the trial asks for: written, never written, and some twice, shuffled. */
  readonly ids: readonly string[];
  readonly histories: ReadonlyMap<string, History>;
  /** Actors whose journal got a leftover entry at or below their snapshot. */
  readonly leftovers: readonly string[];
}

/**
 * Random write histories through a real RedisStore: rounds in which random actors each write a
 * batch of 0–4 entries, some with a snapshot (which trims the journal), some with a stale one.
 */
async function writeHistories(seed: number): Promise<Trial> {
  const r = mulberry32(seed);
  const keys = freshKeys();
  const { client, store } = await clients.node(keys, { shards: SHARDS });
  const homes = Array.from({ length: 6 + randomInt(r, 6) }, (_, i) => `h${seed % 1000}x${i}`);
  const actors = homes.flatMap((h) => [
    `home:${h}`,
    `hub:${h}:hub1`,
    ...Array.from({ length: 1 + randomInt(r, 4) }, (_, i) => `device:${h}:d${i}`),
  ]);
  const written = shuffle(r, actors).slice(0, Math.ceil(actors.length * 0.8));
  const histories = new Map<string, History>(written.map((id) => [id, { last: 0, snap: 0 }]));
  const rounds = 10 + randomInt(r, 20);
  for (let round = 0; round < rounds; round++) {
    const movers = shuffle(r, written).slice(0, 1 + randomInt(r, written.length));
    await Promise.all(
      movers.map((id) => {
        const h = histories.get(id)!;
        const n = h.last === 0 ? 1 + randomInt(r, 4) : randomInt(r, 5);
        const events: JournalEntry[] = Array.from({ length: n }, (_, i) => ({
          seq: h.last + 1 + i,
          at: 1_700_000_000_000 + round,
          msg: randomJson(r),
        }));
        const last = h.last + n;
        let snapshot: Snapshot | undefined;
        const roll = r();
        // A snapshot covers some prefix of what is journaled after this write; a stale one (at or
        // below the stored snapshot) is skipped by the store; a snapshot-only write needs a seq.
        if (roll < 0.3 && last > 0) snapshot = { seq: 1 + randomInt(r, last), state: randomJson(r) };
        else if (roll < 0.4 && last > 0) snapshot = { seq: last, state: randomJson(r) };
        if (n === 0 && !snapshot) snapshot = { seq: Math.max(1, last - randomInt(r, 3)), state: randomJson(r) };
        h.last = last;
        if (snapshot && snapshot.seq > h.snap) h.snap = snapshot.seq;
        return store.write(id, snapshot ? { events, snapshot } : { events });
      }),
    );
  }
  // A leftover at or below the snapshot (as if a trim had not run): both paths must drop it.
  const leftovers = shuffle(
    r,
    written.filter((id) => histories.get(id)!.snap > 0),
  ).slice(0, 3);
  for (const id of leftovers) {
    const h = histories.get(id)!;
    await client.lpush(keys.journal(shardOf(id), id), JSON.stringify({ seq: h.snap - randomInt(r, h.snap), at: 1, msg: 'stale' }));
  }
  const neverWritten = [...actors.filter((id) => !histories.has(id)), `device:nowhere${seed}:d0`, `home:empty${seed}`];
  const ids = shuffle(r, [...actors, ...neverWritten, ...shuffle(r, actors).slice(0, 5)]);
  return { client, keys, ids, histories, leftovers };
}

/** What one-by-one recovery returns, in request order, each id once. */
async function oneByOne(trial: Trial): Promise<[string, Recovered][]> {
  const keys = trial.keys;
  // A second node over the same keys, as after a takeover: it recovers what the first one wrote.
  const { store } = await clients.node(keys, { shards: SHARDS });
  const out = new Map<string, Recovered>();
  for (const id of trial.ids) if (!out.has(id)) out.set(id, await store.recover(id));
  return [...out];
}

describe('recoverMany (property, fixed seeds)', () => {
  it.each([
    { seed: 0xb01c0001, chunkSize: 500 },
    { seed: 0xb01c0002, chunkSize: 7 },
    { seed: 0xb01c0003, chunkSize: 1 },
    { seed: 0xb01c0004, chunkSize: 3 },
    { seed: 0xb01c0005, chunkSize: 500 },
    { seed: 0xb01c0006, chunkSize: 16 },
  ])('seed $seed, chunks of $chunkSize: bulk recovery returns exactly what one-by-one recovery returns', async ({ seed, chunkSize }) => {
    const trial = await writeHistories(seed);
    const expected = await oneByOne(trial);
    const bulk = await recoverMany(trial.client, trial.keys, shardOf, trial.ids, { chunkSize });
    expect([...bulk]).toStrictEqual(expected);

    // Not vacuous: several shards, never-written actors, trimmed journals with tails, leftovers dropped.
    expect(new Set(trial.ids.map(shardOf)).size).toBeGreaterThanOrEqual(3);
    const recovered = new Map(expected);
    expect([...recovered.values()].filter((x) => !x.snapshot && x.events.length === 0).length).toBeGreaterThanOrEqual(2);
    expect([...recovered.values()].filter((x) => x.snapshot && x.events.length > 0).length).toBeGreaterThan(0);
    expect(trial.leftovers.length).toBeGreaterThan(0);
    for (const [id, h] of trial.histories) {
      const x = recovered.get(id)!;
      expect(x.snapshot?.seq ?? 0, id).toBe(h.snap);
      expect(
        x.events.map((e) => e.seq),
        id,
      ).toEqual(Array.from({ length: h.last - h.snap }, (_, i) => h.snap + 1 + i));
    }
  });
});

describe('recoverMany', () => {
  it('reads 1,000 actors in two pipelines of 500, not a round trip per actor', async () => {
    const client = await clients.connect();
    const ids = Array.from({ length: 1_000 }, (_, i) => `device:h${i % 37}:d${i}`);
    const pipeline = vi.spyOn(client, 'pipeline');
    const get = vi.spyOn(client, 'get');
    const lrange = vi.spyOn(client, 'lrange');
    const out = await recoverMany(client, freshKeys(), shardOf, ids);
    expect(out.size).toBe(1_000);
    expect([...out.values()].every((x) => x.events.length === 0 && !x.snapshot)).toBe(true);
    expect(pipeline).toHaveBeenCalledTimes(2);
    expect(get).not.toHaveBeenCalled();
    expect(lrange).not.toHaveBeenCalled();
  });

  it('on a Redis Cluster client sends one pipeline per shard, each within one slot', async () => {
    const keys = freshKeys();
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    const ids = Array.from({ length: 40 }, (_, i) => `device:h${i % 11}:d${i}`);
    for (const id of ids.slice(0, 20)) await store.write(id, { events: [{ seq: 1, at: 1, msg: id }] });
    const tags: string[][] = [];
    // The standalone client posing as a Cluster client: the pipelines it is asked for are
    // recorded by the hash tags of their keys (ioredis refuses a Cluster pipeline across nodes).
    const asCluster = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'isCluster') return true;
        if (prop === 'pipeline') {
          return () => {
            const real = target.pipeline();
            const seen: string[] = [];
            tags.push(seen);
            const record = (key: string): void => void seen.push(/^\{[^}]*\}/.exec(key)![0]);
            return {
              get: (key: string) => (record(key), real.get(key)),
              lrange: (key: string, from: number, to: number) => (record(key), real.lrange(key, from, to)),
              hget: (key: string, field: string) => (record(key), real.hget(key, field)),
              exec: () => real.exec(),
            };
          };
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const out = await recoverMany(asCluster, keys, shardOf, ids);
    expect([...out]).toStrictEqual([...(await recoverMany(client, keys, shardOf, ids))]);
    expect(tags.length).toBe(new Set(ids.map(shardOf)).size);
    for (const seen of tags) expect(new Set(seen).size).toBe(1);
    expect(out.get(ids[0]!)).toStrictEqual({ events: [{ seq: 1, at: 1, msg: ids[0] }] });
  });

  it('returns an empty map for no ids without touching Redis', async () => {
    const client = await clients.connect();
    const pipeline = vi.spyOn(client, 'pipeline');
    expect(await recoverMany(client, freshKeys(), shardOf, [])).toEqual(new Map());
    expect(pipeline).not.toHaveBeenCalled();
  });

  it('refuses a chunk size that is not a positive integer', async () => {
    const client = await clients.connect();
    for (const chunkSize of [0, -1, 1.5, Number.NaN]) {
      await expect(recoverMany(client, freshKeys(), shardOf, ['home:h1'], { chunkSize })).rejects.toMatchObject({
        name: 'RangeError',
        code: 'invalid_argument',
      });
    }
  });

  it('names an actor whose stored state is not JSON or not a list, and still returns the others', async () => {
    const keys = freshKeys();
    const { client, store } = await clients.node(keys, { shards: SHARDS });
    await store.write('home:good', { events: [{ seq: 1, at: 1, msg: 'ok' }] });
    await client.set(keys.snapshot(shardOf('home:bad'), 'home:bad'), '{"seq": 1, "state"');
    await client.set(keys.journal(shardOf('home:wrong'), 'home:wrong'), 'not a list');
    const ids = ['home:bad', 'home:good', 'home:wrong', 'home:never'];
    // Chunks of one: a reply error (WRONGTYPE) concerns one actor, the chunks after it are still read.
    const err = await recoverMany(client, keys, shardOf, ids, { chunkSize: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BulkRecoveryError);
    const bulk = err as BulkRecoveryError;
    expect(bulk.code).toBe('recovery_failed');
    expect([...bulk.failed.keys()]).toEqual(['home:bad', 'home:wrong']);
    expect(bulk.message).toContain('home:bad');
    expect(bulk.failed.get('home:bad')!.message).toMatch(/cannot recover home:bad: stored snapshot is not JSON/);
    expect(bulk.failed.get('home:wrong')!.message).toMatch(/cannot recover home:wrong: WRONGTYPE/);
    expect([...bulk.recovered]).toStrictEqual([
      ['home:good', { events: [{ seq: 1, at: 1, msg: 'ok' }] }],
      ['home:never', { events: [] }],
    ]);
  });

  it('fails every actor when the connection is down, sending nothing after the first chunk', async () => {
    const client = await clients.connect();
    client.disconnect(); // fail-fast client: commands fail at once instead of queueing
    const pipeline = vi.spyOn(client, 'pipeline');
    const ids = Array.from({ length: 10 }, (_, i) => `home:down${i}`);
    const err = await recoverMany(client, freshKeys(), shardOf, ids, { chunkSize: 3 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BulkRecoveryError);
    expect([...(err as BulkRecoveryError).failed.keys()]).toEqual(ids);
    expect((err as BulkRecoveryError).recovered.size).toBe(0);
    expect(pipeline).toHaveBeenCalledTimes(1);
  });
});

describe('decodeRecovered', () => {
  const entry = (seq: number): string => JSON.stringify({ seq, at: seq * 10, msg: { n: seq } });

  it('decodes a snapshot and drops journal entries at or below it', () => {
    expect(decodeRecovered(JSON.stringify({ seq: 2, state: { s: 1 } }), [1, 2, 3, 4].map(entry))).toStrictEqual({
      snapshot: { seq: 2, state: { s: 1 } },
      events: [
        { seq: 3, at: 30, msg: { n: 3 } },
        { seq: 4, at: 40, msg: { n: 4 } },
      ],
    });
  });

  it('keeps the whole journal and no snapshot key when there is no snapshot', () => {
    expect(decodeRecovered(null, [1, 2].map(entry))).toStrictEqual({
      events: [
        { seq: 1, at: 10, msg: { n: 1 } },
        { seq: 2, at: 20, msg: { n: 2 } },
      ],
    });
    expect(decodeRecovered(null, [])).toStrictEqual({ events: [] });
  });

  it('names the part that is not JSON', () => {
    expect(() => decodeRecovered('{', [])).toThrow(/stored snapshot is not JSON/);
    expect(() => decodeRecovered(null, [entry(1), 'x'])).toThrow(/stored journal entry 1 is not JSON/);
  });
});

/** Three private redis-servers in cluster mode, the 16,384 slots split between them, no replicas. */
async function startRedisCluster(): Promise<{ url: string; stop: () => Promise<void> }> {
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    ports.push(
      await new Promise<number>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as { port: number };
          srv.close(() => resolve(port));
        });
      }),
    );
  }
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'iot-redis-cluster-')));
  const children: ChildProcess[] = ports.map((port, i) =>
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dirs[i]!, '--cluster-enabled', 'yes', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    ),
  );
  // Refused until each redis-server listens: the offline queue holds the setup commands meanwhile.
  const nodes = ports.map((port) => new Redis(port, '127.0.0.1', { retryStrategy: (n) => (n > 100 ? null : 50) }).on('error', () => {}));
  const exited = (c: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  const stop = async (): Promise<void> => {
    for (const n of nodes) n.disconnect();
    await Promise.all(children.map(exited));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    const per = Math.ceil(16_384 / ports.length);
    await Promise.all(
      nodes.map((n, i) => n.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16_383, (i + 1) * per - 1)))),
    );
    for (const port of ports.slice(1)) await nodes[0]!.call('CLUSTER', 'MEET', '127.0.0.1', String(port));
    await vi.waitFor(
      async () => {
        for (const n of nodes) expect(await n.call('CLUSTER', 'INFO')).toMatch(/cluster_state:ok/);
      },
      { timeout: 15_000, interval: 100 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}

describe('recoverMany on Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  /** The node's kind of client (autopipelining on): what recovery reads through. */
  let client: RedisClient;
  /**
   * Writes go through a client without autopipelining: ioredis 5.9 routes an autopipelined
   * script call by its first argument (numkeys, not a key), so on a Cluster the lease and fence
   * scripts land in mixed-slot pipelines that it refuses (redis/ioredis#2109).
   */
  let writer: RedisClient;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = createRedisClient(cluster.url, { failFast: true, commandTimeoutMs: 2_000 });
    client.on('error', () => {});
    await vi.waitFor(() => connectRedis(client), { timeout: 15_000, interval: 200 });
    const hosts = cluster.url
      .slice('redis-cluster://'.length)
      .split(',')
      .map((hp) => ({ host: '127.0.0.1', port: Number(hp.split(':')[1]) }));
    writer = new Cluster(hosts, { enableAutoPipelining: false, lazyConnect: true });
    writer.on('error', () => {});
    await connectRedis(writer);
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    writer?.disconnect();
    await cluster?.stop();
  });

  it('reads actors of shards on every node, as one-by-one recovery does (a pipeline across nodes is refused)', async () => {
    const keys = new KeyLayout('cl');
    const shards = 32;
    const shardOfCluster = shardOfActor(shards);
    const leases = new ShardLeases(writer, keys, 'n1', () => {}, silentLogger);
    expect((await leases.acquire(Array.from({ length: shards }, (_, i) => i))).size).toBe(0);
    const store = new RedisStore({
      client: writer,
      keys,
      shardOf: shardOfCluster,
      fenceToken: (s) => leases.token(s),
      onFenced: () => {},
      registry: new Registry(),
      logger: silentLogger,
    });
    const ids = Array.from({ length: 120 }, (_, i) => `device:c${i % 40}:d${i}`);
    await Promise.all(
      ids.slice(0, 90).map((id, i) =>
        store.write(id, {
          events: [1, 2, 3].map((seq) => ({ seq, at: seq, msg: { id, seq } })),
          ...(i % 2 === 0 ? { snapshot: { seq: 2, state: { id } } } : {}),
        }),
      ),
    );
    // Why recoverMany splits per shard on a Cluster: ioredis refuses one pipeline over two nodes.
    const nodes = new Map<string, string>();
    for (const id of ids) {
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', keys.snapshot(shardOfCluster(id), id)));
      nodes.set(id, String((client as Cluster).slots[slot]));
    }
    const a = ids[0]!;
    const b = ids.find((id) => nodes.get(id) !== nodes.get(a))!;
    const across = client
      .pipeline()
      .get(keys.snapshot(shardOfCluster(a), a))
      .get(keys.snapshot(shardOfCluster(b), b));
    await expect(across.exec()).rejects.toThrow(/same slots allocation group/);

    const expected = new Map<string, Recovered>();
    for (const id of ids) expected.set(id, await store.recover(id));
    const bulk = await recoverMany(client, keys, shardOfCluster, ids, { chunkSize: 50 });
    expect([...bulk]).toStrictEqual([...expected]);
    expect(new Set(nodes.values()).size).toBe(3);
    expect(bulk.get(ids[0]!)).toStrictEqual({
      snapshot: { seq: 2, state: { id: ids[0] } },
      events: [{ seq: 3, at: 3, msg: { id: ids[0], seq: 3 } }],
    });
    await leases.releaseAll();
  });
});
