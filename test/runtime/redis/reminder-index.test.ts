import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import type { ActorWrite, IndexedReminder, JournalEntry, PersistencePort, StoredReminderOp } from '../../../runtime/persistence-port.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import type { FencedWriteClient } from '../../../runtime/redis/fenced-write.ts';
import { FencedError, RedisStore, type RedisStoreDeps } from '../../../runtime/redis/redis-store.ts';
import { mulberry32, pick, randomInt } from '../../support/prng.ts';
import { RedisClients, type TestRedisNode } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

const SHARDS = 16;
const shardOf = shardOfActor(SHARDS);
let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let clusters = 0;
const freshKeys = (): KeyLayout => new KeyLayout(`${redis.cluster}rem${clusters++}`);

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

type ReminderStore = PersistencePort & Required<Pick<PersistencePort, 'loadReminders'>>;

/** Journals steps with consecutive seqs per actor, as the host does, and commits them as windows. */
class Journal {
  private readonly seqs = new Map<string, number>();

  constructor(readonly store: ReminderStore) {}

  /** The next entry of `actorId` carrying `rem` (the actor's seq moves on only once it is written). */
  entry(actorId: string, rem?: StoredReminderOp[], offset = 0): JournalEntry {
    const seq = (this.seqs.get(actorId) ?? 0) + 1 + offset;
    return { seq, at: 1_000 + seq, msg: { n: seq }, ...(rem ? { rem } : {}) };
  }

  /** Commits one window of the shard of its first actor; on success the actors' seqs move on. */
  async commit(writes: ActorWrite[]): Promise<void> {
    await this.store.commit(shardOf(writes[0]!.actorId), writes);
    for (const { actorId, batch } of writes) {
      const end = batch.events.at(-1);
      if (end) this.seqs.set(actorId, end.seq);
    }
  }

  /** One window of one actor with one entry per element of `steps`. */
  steps(actorId: string, ...steps: StoredReminderOp[][]): Promise<void> {
    return this.commit([{ actorId, batch: { events: steps.map((rem, i) => this.entry(actorId, rem, i)) } }]);
  }

  load(actorId: string): Promise<readonly IndexedReminder[]> {
    return this.store.loadReminders(shardOf(actorId));
  }
}

const sorted = (xs: readonly IndexedReminder[]): IndexedReminder[] =>
  [...xs].sort((a, b) => a.at - b.at || a.actorId.localeCompare(b.actorId) || a.name.localeCompare(b.name));

interface Subject {
  readonly name: string;
  open(): Promise<ReminderStore>;
}

const subjects: Subject[] = [
  { name: 'MemoryStore', open: async () => new MemoryStore() },
  { name: 'RedisStore', open: async () => (await clients.node(freshKeys(), { shards: SHARDS })).store },
];

// Same home, so one shard: actor ids with '@' and ':' in them, as device ids may have.
const A = 'device:h1:lamp';
const B = 'device:h1:lamp@kitchen:2';
const C = 'home:h1';

describe.each(subjects)('reminder index of $name', (subject) => {
  it('holds a reminder from the window that set it until a later window cancels it', async () => {
    const j = new Journal(await subject.open());
    expect(await j.load(A)).toEqual([]);
    await j.steps(A, [['+', 'for.r1.0', 5_000, { rule: 'r1' }]]);
    expect(await j.load(A)).toEqual([{ actorId: A, name: 'for.r1.0', at: 5_000 }]);
    await j.steps(A, [['-', 'for.r1.0']]);
    expect(await j.load(A)).toEqual([]);
  });

  it('keeps the last op per actor and name within a window, across entries and actors', async () => {
    const j = new Journal(await subject.open());
    await j.steps(A, [['+', 'gone', 1]], [['+', 'back', 2]], [['+', 'moved', 3]]);
    await j.commit([
      {
        actorId: A,
        batch: {
          events: [
            j.entry(A, [
              ['-', 'gone'],
              ['-', 'back'],
              ['+', 'moved', 30],
            ]),
            j.entry(
              A,
              [
                ['+', 'back', 20],
                ['+', 'new', 10],
                ['-', 'new'],
                ['+', 'twice', 7],
                ['+', 'twice', 70],
              ],
              1,
            ),
          ],
        },
      },
      {
        actorId: C,
        batch: {
          events: [
            j.entry(C, [
              ['+', 'gone', 99],
              ['+', 'x', 4],
            ]),
          ],
        },
      },
    ]);
    expect(sorted(await j.load(A))).toEqual([
      { actorId: C, name: 'x', at: 4 },
      { actorId: A, name: 'back', at: 20 },
      { actorId: A, name: 'moved', at: 30 },
      { actorId: A, name: 'twice', at: 70 },
      { actorId: C, name: 'gone', at: 99 },
    ]);
  });

  it('lets the later part of an actor named twice in one window win', async () => {
    const j = new Journal(await subject.open());
    await j.commit([
      { actorId: A, batch: { events: [j.entry(A, [['+', 'r', 10]])] } },
      { actorId: B, batch: { events: [j.entry(B, [['+', 'r', 11]])] } },
      { actorId: A, batch: { events: [j.entry(A, [['-', 'r']], 1)] } },
    ]);
    expect(await j.load(A)).toEqual([{ actorId: B, name: 'r', at: 11 }]);
  });

  it('replaces a reminder set again in a later window', async () => {
    const j = new Journal(await subject.open());
    await j.steps(A, [['+', 'at.r2.0', 1_000]]);
    await j.steps(A, [['+', 'at.r2.0', 2_000]]);
    expect(await j.load(A)).toEqual([{ actorId: A, name: 'at.r2.0', at: 2_000 }]);
  });

  it('writes no reminder change of a window it refuses for a journal gap, not even of its other actors', async () => {
    const j = new Journal(await subject.open());
    await j.steps(A, [['+', 'keep', 1]]);
    await expect(
      j.commit([
        { actorId: C, batch: { events: [j.entry(C, [['+', 'c', 2]])] } },
        {
          actorId: A,
          batch: {
            events: [
              j.entry(
                A,
                [
                  ['-', 'keep'],
                  ['+', 'a', 3],
                ],
                1,
              ),
            ],
          },
        }, // skips a seq
      ]),
    ).rejects.toThrow();
    expect(await j.load(A)).toEqual([{ actorId: A, name: 'keep', at: 1 }]);
    expect((await j.store.recover(C)).events).toEqual([]);
  });

  it('refuses a window with a malformed reminder op, naming the actor, and writes nothing of it', async () => {
    const j = new Journal(await subject.open());
    await expect(j.steps(A, [['+', 'bad@name', 1]])).rejects.toThrow(new RegExp(A));
    await expect(j.steps(A, [['+', 'nan', Number.NaN]])).rejects.toThrow(/finite/);
    await expect(j.steps(A, [['-', '']])).rejects.toThrow(/name/);
    expect(await j.load(A)).toEqual([]);
    expect((await j.store.recover(A)).events).toEqual([]);
  });

  it('loads the pending reminders of the asked shard only, by due time, parsing ids with @ and :', async () => {
    const j = new Journal(await subject.open());
    const other = ['home:h2', 'home:h3', 'home:h4'].find((id) => shardOf(id) !== shardOf(A))!;
    await j.steps(B, [
      ['+', 'z', 300],
      ['+', 'a:b.c-d_e', 100],
    ]);
    await j.steps(A, [['+', '~wake', 200]]);
    await j.steps(other, [['+', 'elsewhere', 50]]);
    expect(await j.load(A)).toEqual([
      { actorId: B, name: 'a:b.c-d_e', at: 100 },
      { actorId: A, name: '~wake', at: 200 },
      { actorId: B, name: 'z', at: 300 },
    ]);
    expect(await j.load(other)).toEqual([{ actorId: other, name: 'elsewhere', at: 50 }]);
  });

  it("returns each entry's rem, sys and from and the snapshot's rem and inbox through recoverMany", async () => {
    const j = new Journal(await subject.open());
    const e1: JournalEntry = {
      seq: 1,
      at: 10,
      msg: { type: 'x' },
      rem: [
        ['+', 'n', 99, { p: [1, 'two'] }],
        ['-', 'm'],
      ],
      from: 'home:h1#7',
    };
    const e2: JournalEntry = { seq: 2, at: 11, msg: null, rem: [['-', 'n']], sys: 1 };
    await j.commit([{ actorId: A, batch: { events: [e1, e2] } }]);
    const snapshot = { seq: 2, state: { s: 1 }, rem: [['n', 99, { p: 1 }] as const], inbox: ['home:h1#6', 'home:h1#7'] };
    await j.commit([{ actorId: B, batch: { events: [j.entry(B), { ...j.entry(B, undefined, 1), from: 'hub:h1:x#1' }], snapshot } }]);
    const got = await j.store.recoverMany([A, B]);
    expect(got.get(A)).toEqual({ events: [e1, e2] });
    expect(got.get(B)).toEqual({ snapshot, events: [] });
  });

  it('matches a model of the index over random windows (fixed seed)', async () => {
    const rand = mulberry32(0x5eed12);
    const j = new Journal(await subject.open());
    const actors = [A, B, C, 'hub:h1:hub@1'];
    const names = ['r0', 'r1', '~wake', 'for.x.0'];
    const model = new Map<string, number>();
    for (let w = 0; w < 60; w++) {
      const writes: ActorWrite[] = [];
      const pending = new Map<string, number>(); // this window's model changes, applied only if it is written
      const offsets = new Map<string, number>();
      const refuse = rand() < 0.15;
      for (let k = 1 + randomInt(rand, 3); k > 0; k--) {
        const actorId = pick(rand, actors);
        const events: JournalEntry[] = [];
        for (let e = 1 + randomInt(rand, 3); e > 0; e--) {
          const rem: StoredReminderOp[] = [];
          for (let o = randomInt(rand, 4); o > 0; o--) {
            const name = pick(rand, names);
            const key = `${actorId}|${name}`;
            if (rand() < 0.6) {
              const at = randomInt(rand, 10_000);
              rem.push(['+', name, at]);
              pending.set(key, at);
            } else {
              rem.push(['-', name]);
              pending.set(key, -1);
            }
          }
          const offset = offsets.get(actorId) ?? 0;
          events.push(j.entry(actorId, rem, offset));
          offsets.set(actorId, offset + 1);
        }
        writes.push({ actorId, batch: { events } });
      }
      if (refuse) {
        const last = writes.at(-1)!;
        const bad = { ...last.batch.events[0]!, seq: last.batch.events[0]!.seq + 5 };
        writes[writes.length - 1] = { actorId: last.actorId, batch: { events: [bad] } };
        await expect(j.commit(writes)).rejects.toThrow();
      } else {
        await j.commit(writes);
        for (const [key, at] of pending) {
          if (at < 0) model.delete(key);
          else model.set(key, at);
        }
      }
      const expected = [...model].map(([key, at]) => {
        const [actorId, name] = key.split('|') as [string, string];
        return { actorId, name, at };
      });
      expect(sorted(await j.load(A)), `window ${w}`).toEqual(sorted(expected));
    }
  });
});

describe('reminder index in Redis', () => {
  /** What a second store over a test node's client, keys and leases needs, logging to `logger`. */
  const depsOf = (n: TestRedisNode & { keys: KeyLayout }, logger: Logger): RedisStoreDeps => ({
    client: n.client,
    keys: n.keys,
    shardOf,
    fenceToken: (s) => n.leases.token(s),
    onFenced: () => {},
    registry: new Registry(),
    logger,
  });
  const storeOver = (n: TestRedisNode & { keys: KeyLayout }, logger: Logger): RedisStore => new RedisStore(depsOf(n, logger));

  async function node(keys = freshKeys()): Promise<TestRedisNode & { journal: Journal; keys: KeyLayout }> {
    const n = await clients.node(keys, { shards: SHARDS });
    return { ...n, journal: new Journal(n.store), keys };
  }

  it('stores members as name@actorId scored by due time in the shard-tagged sorted set', async () => {
    const { client, journal, keys } = await node();
    await journal.steps(B, [['+', 'for.r1.0', 1_764_198_000_123]]);
    const key = keys.reminders(shardOf(B));
    expect(key).toBe(`{${keys.cluster}:${shardOf(B)}}:rem`);
    expect(await client.zrange(key, 0, -1, 'WITHSCORES')).toEqual([`for.r1.0@${B}`, '1764198000123']);
  });

  it('writes no reminder change of a window sent with a stale fence token', async () => {
    const keys = freshKeys();
    const old = await node(keys);
    await old.journal.steps(A, [['+', 'r', 1]]);
    const successor = await node(keys); // takes every shard with newer tokens
    await expect(
      old.journal.steps(A, [
        ['-', 'r'],
        ['+', 'stale', 2],
      ]),
    ).rejects.toBeInstanceOf(FencedError);
    expect(await successor.store.loadReminders(shardOf(A))).toEqual([{ actorId: A, name: 'r', at: 1 }]);
  });

  it('fails a window whose reminder index key has the wrong type before writing any of it', async () => {
    const { client, journal, keys, store } = await node();
    await client.set(keys.reminders(shardOf(A)), 'not a sorted set');
    await expect(journal.steps(A, [['+', 'r', 1]])).rejects.toThrow(/WRONGTYPE/);
    expect(await store.recover(A)).toEqual({ events: [] });
    // A window without reminder changes does not touch the index and is written.
    await journal.steps(A, []);
    expect((await store.recover(A)).events).toHaveLength(1);
  });

  it('releases a window whose reply was lost but that was written, with its reminder changes', async () => {
    const n = await node();
    const logged: string[] = [];
    const watched = storeOver(n, pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) }));
    const sent = n.client as unknown as FencedWriteClient; // the script is defined on the client itself
    const fencedWrite = sent.fencedWrite.bind(sent);
    const lose = vi.spyOn(sent, 'fencedWrite').mockImplementationOnce(async (...args) => {
      await fencedWrite(...args);
      throw new Error('Command timed out');
    });
    await new Journal(watched).steps(A, [['+', 'late', 42]]);
    lose.mockRestore();
    expect(logged.join('')).toMatch(/reported failed but it was written/);
    expect(await n.store.loadReminders(shardOf(A))).toEqual([{ actorId: A, name: 'late', at: 42 }]);
    expect((await n.store.recover(A)).events).toHaveLength(1);
  });

  it('fails a window whose reply was lost and that was not written, and no reminder change is in Redis', async () => {
    const n = await node();
    const watched = storeOver(n, pino({ level: 'silent' }));
    const lose = vi
      .spyOn(n.client as unknown as FencedWriteClient, 'fencedWrite')
      .mockRejectedValueOnce(new Error('Connection is closed.'));
    await expect(new Journal(watched).steps(A, [['+', 'never', 42]])).rejects.toThrow('Connection is closed.');
    lose.mockRestore();
    expect(await n.store.loadReminders(shardOf(A))).toEqual([]);
  });

  it('refuses a reminder load chunk that is not a positive integer', async () => {
    const n = await node();
    expect(() => new RedisStore({ ...depsOf(n, pino({ level: 'silent' })), reminderLoadChunk: 0 })).toThrow(/reminderLoadChunk/);
  });

  it('skips members that are not name@actorId when loading', async () => {
    const { client, journal, keys, store } = await node();
    await journal.steps(A, [['+', 'ok', 5]]);
    await client.zadd(keys.reminders(shardOf(A)), 1, 'no-at-sign', 2, '@no-name', 3, 'no-actor@');
    expect(await store.loadReminders(shardOf(A))).toEqual([{ actorId: A, name: 'ok', at: 5 }]);
  });

  it('writes 20,000 reminders in a few windows and loads them back in bounded chunks', async () => {
    const { client, journal, keys, store } = await node();
    const actors = Array.from({ length: 200 }, (_, i) => `device:h1:d${i}@x:${i}`);
    const model = new Map<string, IndexedReminder>();
    for (let w = 0; w < 4; w++) {
      const writes = actors.slice(w * 50, (w + 1) * 50).map((actorId, i) => {
        const rem: StoredReminderOp[] = [];
        for (let r = 0; r < 100; r++) {
          // Many share a due time, as a schedule at 06:30 in every home would.
          const at = 1_764_000_000_000 + ((w * 50 + i + r) % 37) * 1_000;
          rem.push(['+', `run.r${r}.0`, at]);
          model.set(`${actorId}|run.r${r}.0`, { actorId, name: `run.r${r}.0`, at });
        }
        return { actorId, batch: { events: [journal.entry(actorId, rem)] } };
      });
      await journal.commit(writes);
    }
    // One window cancels 3,000 of them (the script removes them in chunks too).
    await journal.commit(
      actors.slice(0, 30).map((actorId) => {
        const rem: StoredReminderOp[] = [];
        for (let r = 0; r < 100; r++) {
          rem.push(['-', `run.r${r}.0`]);
          model.delete(`${actorId}|run.r${r}.0`);
        }
        return { actorId, batch: { events: [journal.entry(actorId, rem)] } };
      }),
    );
    expect(await client.zcard(keys.reminders(shardOf(A)))).toBe(17_000);

    const replies: number[] = [];
    const zscan = client.zscan.bind(client);
    const spy = vi.spyOn(client, 'zscan').mockImplementation(async (...args: Parameters<typeof client.zscan>) => {
      const reply = await zscan(...args);
      replies.push(reply[1].length / 2);
      return reply;
    });
    try {
      const loaded = await store.loadReminders(shardOf(A));
      expect(loaded).toHaveLength(17_000);
      expect(sorted(loaded)).toEqual(sorted([...model.values()]));
      expect(loaded.every((r, i) => i === 0 || loaded[i - 1]!.at <= r.at)).toBe(true);
    } finally {
      spy.mockRestore();
    }
    expect(replies.length).toBeGreaterThan(5);
    expect(Math.max(...replies)).toBeLessThanOrEqual(3_000); // about the 1,000 asked for, never the whole set
  });
});
