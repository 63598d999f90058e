/** Durable reminders and the outbox in the actor host: set, cancel, replace, fire once, across crashes and takeovers. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorHost } from '../../runtime/actor-host.ts';
import type { Behavior, ReminderFired, ReminderOp } from '../../runtime/behavior.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { ActorWrite, PersistencePort, Recovered } from '../../runtime/persistence-port.ts';
import { mulberry32 } from '../support/prng.ts';

interface TimerState {
  /** Payload ids of the reminders that fired, in order, with how late. */
  readonly fired: readonly { readonly id: number; readonly name: string; readonly lateMs: number; readonly early: boolean }[];
  readonly count: number;
  /** Every `add` applied, in order. */
  readonly adds?: readonly number[];
}

type TimerMsg =
  | { readonly type: 'set'; readonly name: string; readonly at: number; readonly id: number }
  | { readonly type: 'cancel'; readonly name: string }
  | { readonly type: 'fired' }
  | { readonly type: 'pending' }
  | { readonly type: 'add'; readonly n: number }
  | { readonly type: 'send'; readonly to: string; readonly n: number }
  /** Tells `to` to add 1, 2, ..., count, in one step. */
  | { readonly type: 'sendMany'; readonly to: string; readonly count: number }
  | { readonly type: 'adds' }
  | ReminderFired;

/** Actors that crash once on `add` of 99 (then the id is removed). */
const crashOnce = new Set<string>();

/** A behaviour that sets and cancels reminders on request and records each firing. */
const timerBehavior: Behavior<TimerState, TimerMsg, unknown> = {
  kind: 'timer',
  initial: () => ({ fired: [], count: 0 }),
  receive(state, msg, ctx) {
    switch (msg.type) {
      case 'set': {
        const op: ReminderOp = {
          op: 'set',
          name: msg.name,
          at: msg.at,
          payload: msg.id < 0 ? { id: msg.id, crash: true } : { id: msg.id },
        };
        return { state, reminders: [op], reply: true };
      }
      case 'cancel':
        return { state, reminders: [{ op: 'cancel', name: msg.name }], reply: true };
      case 'reminder': {
        const { id, crash } = msg.payload as { id: number; crash?: boolean };
        if (crash === true) throw new Error('this reminder crashes its actor');
        const early = ctx.now < msg.dueAt;
        return { state: { ...state, fired: [...state.fired, { id, name: msg.name, lateMs: msg.lateMs, early }] }, journal: true };
      }
      case 'fired':
        return { state, reply: state.fired };
      case 'pending':
        return { state, reply: [...(ctx.reminders ?? new Map()).keys()].sort() };
      case 'add':
        if (msg.n === 99 && crashOnce.delete(ctx.id)) throw new Error('crashes once on 99');
        return {
          state: { ...state, count: state.count + msg.n, adds: [...(state.adds ?? []), msg.n] },
          reply: state.count + msg.n,
          journal: true,
        };
      case 'adds':
        return { state, reply: state.adds ?? [] };
      case 'sendMany': {
        const effects = Array.from({ length: msg.count }, (_, i) => ({ tell: { to: msg.to, msg: { type: 'add', n: i + 1 } } }));
        return { state, reply: true, journal: true, effects };
      }
      case 'send':
        return { state, reply: true, journal: true, effects: [{ tell: { to: msg.to, msg: { type: 'add', n: msg.n } } }] };
    }
  },
};

/** `timer:<k>` lives in shard k mod 3. */
const shardOf = (id: string): number => Number(id.split(':')[1]) % 3;
const SHARDS = [0, 1, 2];

/**
 * One process's view of a shared store: once `kill()`ed it answers nothing more, as a process
 * SIGKILLed mid-flight — a window it had not written is lost, one it had is kept.
 */
class ProcessView implements PersistencePort {
  readonly durable = true;
  readonly shardOf = shardOf;
  private dead = false;
  /** Commits fail while set (a store outage); reads still work. */
  failCommits = false;
  /** Actors whose recovery fails (a damaged journal). */
  readonly unreadable = new Set<string>();
  /** Commits that went through. */
  commits = 0;
  constructor(private readonly inner: MemoryStore) {}
  kill(): void {
    this.dead = true;
  }
  private check(): void {
    if (this.dead) throw new Error('this process is dead');
  }
  async recover(actorId: string): Promise<Recovered> {
    this.check();
    return this.inner.recover(actorId);
  }
  async recoverMany(actorIds: readonly string[]): Promise<ReadonlyMap<string, Recovered | Error>> {
    this.check();
    const read = new Map<string, Recovered | Error>(await this.inner.recoverMany(actorIds));
    for (const id of actorIds) if (this.unreadable.has(id)) read.set(id, new Error(`${id} is unreadable`));
    return read;
  }
  /** Milliseconds a commit takes (random up to this): a kill can land between a step and its write. */
  commitDelayMs = 0;
  /** Draws the delays (the property test passes its seeded generator). */
  rand: () => number = Math.random;
  /** Shards whose commits fail (after a little while, as a timeout would). */
  readonly failingShards = new Set<number>();
  async commit(shard: number, writes: readonly ActorWrite[]): Promise<void> {
    this.check();
    if (this.failingShards.has(shard)) {
      await new Promise((r) => setTimeout(r, 100));
      throw new Error(`shard ${shard}: store down`);
    }
    if (this.commitDelayMs > 0) {
      await new Promise((r) => setTimeout(r, Math.floor(this.rand() * this.commitDelayMs)));
      this.check(); // killed meanwhile: the window never reached the store
    }
    if (this.failCommits) throw new Error('store down');
    this.commits++;
    return this.inner.commit(shard, writes);
  }
  async loadReminders(shard: number) {
    this.check();
    return this.inner.loadReminders(shard);
  }
  async close(): Promise<void> {}
}

const hosts: ActorHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) {
    for (const s of SHARDS) h.dropShard(s);
    await h.close().catch(() => {});
  }
});

/** A host as a node process would run it over `store`, owning every shard (reminders loaded). */
function startProcess(
  store: MemoryStore,
  unreachable: ReadonlySet<string> = new Set(),
  registry = new Registry(),
  /** Awaited before each delivery (tests hold one back). */
  beforeSend: (n: number) => Promise<void> = async () => {},
): { host: ActorHost; view: ProcessView; registry: Registry; sends: string[] } {
  const view = new ProcessView(store);
  const sends: string[] = [];
  const host: ActorHost = new ActorHost({
    behaviors: [timerBehavior],
    store: view,
    logger: silentLogger,
    registry,
    shardOf,
    tellOf: (effect) => (effect as { tell?: { to: string; msg: unknown } }).tell,
    // As a router would: an actor elsewhere may be unreachable for a while.
    sendDurably: async (to, msg) => {
      await beforeSend(sends.push(to));
      return unreachable.has(to) ? { ok: false, error: { code: 'unavailable', message: `${to} is unreachable` } } : host.ask(to, msg);
    },
  });
  hosts.push(host);
  for (const s of SHARDS) void host.takeShard(s);
  return { host, view, registry, sends };
}

/** SIGKILL: nothing more of this process reaches the store, and nothing of it runs on. */
function kill(p: { host: ActorHost; view: ProcessView }): void {
  p.view.kill();
  for (const s of SHARDS) p.host.dropShard(s);
}

const fired = async (host: ActorHost, id: string) =>
  ((await host.ask(id, { type: 'fired' })) as { value: { id: number; name: string; lateMs: number; early: boolean }[] }).value;

describe('durable reminders', () => {
  it('fires a reminder once, with its payload and how late, and deletes it with the step that handles it', async () => {
    const store = new MemoryStore();
    const { host, registry } = startProcess(store);
    await host.ask('timer:1', { type: 'set', name: 'a', at: Date.now() + 50, id: 7 });
    expect((await host.ask('timer:1', { type: 'pending' })).ok && (await host.ask('timer:1', { type: 'pending' }))).toEqual({
      ok: true,
      value: ['a'],
    });
    await vi.waitFor(async () => expect((await fired(host, 'timer:1')).map((f) => f.id)).toEqual([7]));
    expect(await host.ask('timer:1', { type: 'pending' })).toEqual({ ok: true, value: [] });
    expect(await store.loadReminders(1)).toEqual([]);
    const metric = await registry.getSingleMetric('iot_reminders_fired_total')!.get();
    expect(metric.values.find((v) => v.labels.kind === 'timer')?.value).toBe(1);
  });

  it('never fires a cancelled reminder, and fires a replaced one only at its new time', async () => {
    const store = new MemoryStore();
    const { host } = startProcess(store);
    const now = Date.now();
    await host.ask('timer:1', { type: 'set', name: 'gone', at: now + 40, id: 1 });
    await host.ask('timer:1', { type: 'cancel', name: 'gone' });
    await host.ask('timer:1', { type: 'set', name: 'moved', at: now + 40, id: 2 });
    await host.ask('timer:1', { type: 'set', name: 'moved', at: now + 250, id: 3 });
    await new Promise((r) => setTimeout(r, 150));
    expect(await fired(host, 'timer:1')).toEqual([]);
    await vi.waitFor(async () => expect((await fired(host, 'timer:1')).map((f) => f.id)).toEqual([3]));
    await new Promise((r) => setTimeout(r, 100));
    expect((await fired(host, 'timer:1')).map((f) => f.id)).toEqual([3]);
  });

  it('fires a reminder at the next owner after a crash, reporting how late it is', async () => {
    const store = new MemoryStore();
    const first = startProcess(store);
    await first.host.ask('timer:2', { type: 'set', name: 'late', at: Date.now() + 30, id: 9 });
    kill(first);
    await new Promise((r) => setTimeout(r, 300));
    const second = startProcess(store);
    await vi.waitFor(async () => expect((await fired(second.host, 'timer:2')).map((f) => f.id)).toEqual([9]));
    expect((await fired(second.host, 'timer:2'))[0]!.lateMs).toBeGreaterThanOrEqual(250);
  });

  it('fires a reminder of an actor that passivated, without the actor in memory until then', async () => {
    const store = new MemoryStore();
    const { host } = startProcess(store);
    await host.ask('timer:4', { type: 'set', name: 'x', at: Date.now() + 150, id: 4 });
    await host.passivateWhere((id) => id === 'timer:4');
    expect(host.isResident('timer:4')).toBe(false);
    expect(host.pendingReminders).toBe(1);
    await vi.waitFor(async () =>
      expect((await store.recover('timer:4')).events.some((e) => (e.msg as ReminderFired).type === 'reminder')).toBe(true),
    );
  });

  it('fires each reminder exactly once and none after its cancel, across random crash points (fixed seeds)', async () => {
    for (const seed of [11, 2024, 7777]) {
      const rand = mulberry32(seed);
      const store = new MemoryStore();
      let proc = startProcess(store);
      // Windows take a while to write, so a kill can land between a reminder firing and the write
      // of the step that deletes it (that step is then lost, and the next process fires it again).
      proc.view.commitDelayMs = 10;
      proc.view.rand = rand;
      /** name@actor → the payload id of its live set (undefined: cancelled or none). */
      const live = new Map<string, number>();
      const everSet = new Set<number>();
      let nextId = 1;
      for (let step = 0; step < 40; step++) {
        const actor = `timer:${Math.floor(rand() * 4)}`;
        const name = `n${Math.floor(rand() * 3)}`;
        const r = rand();
        if (r < 0.55) {
          const id = nextId++;
          const answer = await proc.host.ask(actor, { type: 'set', name, at: Date.now() + Math.floor(rand() * 120), id });
          expect(answer.ok).toBe(true);
          live.set(`${name}@${actor}`, id);
          everSet.add(id);
        } else if (r < 0.75) {
          await proc.host.ask(actor, { type: 'cancel', name });
          live.delete(`${name}@${actor}`);
        } else if (r < 0.88) {
          kill(proc);
          proc = startProcess(store);
          proc.view.commitDelayMs = 10;
          proc.view.rand = rand;
        } else {
          await new Promise((res) => setTimeout(res, Math.floor(rand() * 80)));
        }
        // A reminder that fired is no longer live: its set fired, exactly once (checked below).
      }
      await new Promise((res) => setTimeout(res, 200));
      const firedIds: number[] = [];
      for (let k = 0; k < 4; k++) {
        await vi.waitFor(async () => expect(await proc.host.ask(`timer:${k}`, { type: 'pending' })).toEqual({ ok: true, value: [] }));
        for (const f of await fired(proc.host, `timer:${k}`)) {
          firedIds.push(f.id);
          expect(f.early, `seed ${seed}: id ${f.id} fired before it was due`).toBe(false);
        }
      }
      // No id fires twice; every id still live at the end fired; no cancelled or replaced id fired
      // after its cancel (a set may fire before its later cancel, which then cancels nothing).
      expect(new Set(firedIds).size, `seed ${seed}`).toBe(firedIds.length);
      for (const id of live.values()) expect(firedIds, `seed ${seed}: id ${id}`).toContain(id);
      for (const id of firedIds) expect(everSet.has(id)).toBe(true);
    }
  }, 30_000);
});

describe('durable reminders when things fail', () => {
  it('deletes a reminder whose handling crashes its actor on every attempt, instead of firing it for ever', async () => {
    const store = new MemoryStore();
    const { host, registry } = startProcess(store);
    await host.ask('timer:1', { type: 'set', name: 'bad', at: Date.now() + 20, id: -1 });
    await vi.waitFor(async () => expect(await host.ask('timer:1', { type: 'pending' })).toEqual({ ok: true, value: [] }));
    expect(await store.loadReminders(1)).toEqual([]);
    const crashed = (await registry.getSingleMetric('iot_reminders_crashed_total')!.get()).values[0]?.value;
    expect(crashed).toBe(1);
    const crashes = (await registry.getSingleMetric('iot_actor_crashes_total')!.get()).values[0]?.value ?? 0;
    await new Promise((r) => setTimeout(r, 200));
    expect((await registry.getSingleMetric('iot_actor_crashes_total')!.get()).values[0]?.value).toBe(crashes);
  });

  it('fires a reminder again once the store is back when the window of its first firing failed', async () => {
    const store = new MemoryStore();
    const { host, view } = startProcess(store);
    await host.ask('timer:1', { type: 'set', name: 'a', at: Date.now() + 30, id: 5 });
    view.failCommits = true;
    await new Promise((r) => setTimeout(r, 150)); // it fired; the window deleting it failed
    expect((await store.loadReminders(1)).map((r) => r.name)).toEqual(['a']);
    view.failCommits = false;
    // No other message reaches the actor: the host reads the shard's reminders again by itself.
    await vi.waitFor(async () => expect(await store.loadReminders(1)).toEqual([]), { timeout: 3_000 });
    expect((await fired(host, 'timer:1')).map((f) => f.id)).toEqual([5]);
  });
});

describe('messages within a shard', () => {
  it("keeps a message whose target crashes on it and then cannot be read: it goes into the sender's outbox", async () => {
    const store = new MemoryStore();
    const { host, view } = startProcess(store);
    await host.ask('timer:4', { type: 'add', n: 0 }); // resident
    // timer:4 crashes on 'add' of 99 once, and cannot be read for a while after.
    crashOnce.add('timer:4');
    view.unreadable.add('timer:4');
    expect(await host.ask('timer:1', { type: 'send', to: 'timer:4', n: 99 })).toEqual({ ok: true, value: true });
    await new Promise((r) => setTimeout(r, 100));
    view.unreadable.clear();
    await vi.waitFor(async () => expect(await host.ask('timer:4', { type: 'adds' })).toEqual({ ok: true, value: [0, 99] }), {
      timeout: 5_000,
    });
  });

  it('turns a message to an actor of its shard that cannot be read into an outbox entry of the step that sent it', async () => {
    const store = new MemoryStore();
    const { host, view } = startProcess(store);
    view.unreadable.add('timer:4'); // shard 1, like timer:1
    // The step is acked: its message to timer:4 is written with it, in timer:1's outbox.
    expect(await host.ask('timer:1', { type: 'send', to: 'timer:4', n: 1 })).toEqual({ ok: true, value: true });
    expect((await store.loadReminders(1)).map((r) => r.name)).toEqual([expect.stringMatching(/^~out\./)]);
    view.unreadable.clear();
    // Delivered once timer:4 can be read, once only.
    await vi.waitFor(async () => expect(await host.ask('timer:4', { type: 'adds' })).toEqual({ ok: true, value: [1] }), { timeout: 5_000 });
    await vi.waitFor(async () => expect(await store.loadReminders(1)).toEqual([]));
    expect(await host.ask('timer:4', { type: 'adds' })).toEqual({ ok: true, value: [1] });
  });
});

describe('the outbox', () => {
  it('sends an outbox entry only once the step that wrote it is durable', async () => {
    const store = new MemoryStore();
    let release: (() => void) | undefined;
    // The first delivery is held back until the second step's window is on its way.
    const proc = startProcess(store, new Set(), new Registry(), (n) =>
      n === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve(),
    );
    expect(await proc.host.ask('timer:1', { type: 'send', to: 'timer:2', n: 1 })).toEqual({ ok: true, value: true });
    await vi.waitFor(() => expect(release).toBeDefined());
    proc.view.failingShards.add(1);
    const second = proc.host.ask('timer:1', { type: 'send', to: 'timer:2', n: 2 }); // its window fails
    await new Promise((r) => setTimeout(r, 20));
    release!(); // entry 1 delivered: the sender goes on to its next entry — which is not written
    expect(await second).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    proc.view.failingShards.clear();
    expect(await proc.host.ask('timer:1', { type: 'send', to: 'timer:2', n: 3 })).toEqual({ ok: true, value: true });
    // Step 2 never happened: its message never arrives, and step 3's (which reuses its seq) does.
    await vi.waitFor(async () => expect(await proc.host.ask('timer:2', { type: 'adds' })).toEqual({ ok: true, value: [1, 3] }));
  });

  it("delivers a sender's messages to another shard one at a time, in the order its steps sent them", async () => {
    const store = new MemoryStore();
    const { host } = startProcess(store);
    await host.ask('timer:1', { type: 'sendMany', to: 'timer:2', count: 12 });
    await host.ask('timer:1', { type: 'send', to: 'timer:2', n: 13 });
    const expected = Array.from({ length: 13 }, (_, i) => i + 1);
    await vi.waitFor(async () => expect(await host.ask('timer:2', { type: 'adds' })).toEqual({ ok: true, value: expected }));
    await vi.waitFor(async () => expect(await store.loadReminders(1)).toEqual([]));
  });

  it('tries a failed delivery again with one chain of retries, not one per re-read of the sender', async () => {
    const store = new MemoryStore();
    const unreachable = new Set(['timer:2']);
    const { host, sends } = startProcess(store, unreachable);
    await host.ask('timer:1', { type: 'sendMany', to: 'timer:2', count: 3 });
    await new Promise((r) => setTimeout(r, 700)); // tries at ~0, ~200 and ~600 ms
    // One entry at a time, one chain of retries: three tries, not three per entry.
    expect(sends.length).toBeLessThanOrEqual(3);
    unreachable.clear();
    await vi.waitFor(async () => expect(await host.ask('timer:2', { type: 'adds' })).toEqual({ ok: true, value: [1, 2, 3] }), {
      timeout: 5_000,
    });
  });

  it('delivers a message to an actor of another shard once, after the step that sent it is durable', async () => {
    const store = new MemoryStore();
    const { host, registry } = startProcess(store);
    expect(await host.ask('timer:1', { type: 'send', to: 'timer:2', n: 5 })).toEqual({ ok: true, value: true });
    await vi.waitFor(async () => expect(await host.ask('timer:2', { type: 'add', n: 0 })).toEqual({ ok: true, value: 5 }));
    // The entry is deleted once delivered: nothing left to deliver.
    await vi.waitFor(async () => expect(await store.loadReminders(1)).toEqual([]));
    const outcomes = (await registry.getSingleMetric('iot_outbox_deliveries_total')!.get()).values;
    expect(outcomes.find((v) => v.labels.outcome === 'delivered')?.value).toBe(1);
  });

  it('delivers what a crashed sender had written but not yet sent, and the receiver applies it once', async () => {
    const store = new MemoryStore();
    // The target is unreachable from the first process: the entry waits in the sender's outbox.
    const first = startProcess(store, new Set(['timer:2']));
    await first.host.ask('timer:1', { type: 'send', to: 'timer:2', n: 3 });
    expect((await store.loadReminders(1)).map((r) => r.name)).toEqual([expect.stringMatching(/^~out\./)]);
    kill(first);
    const second = startProcess(store);
    await vi.waitFor(async () => expect(await store.loadReminders(1)).toEqual([]));
    expect(await second.host.ask('timer:2', { type: 'add', n: 0 })).toEqual({ ok: true, value: 3 });
  });

  it('drops a re-delivered outbox message by its key (sender and seq) and answers it', async () => {
    const store = new MemoryStore();
    const { host } = startProcess(store);
    const envelope = { type: '~outbox', from: 'timer:1#5.0', msg: { type: 'add', n: 2 } };
    expect(await host.ask('timer:2', envelope)).toEqual({ ok: true, value: 2 });
    expect(await host.ask('timer:2', envelope)).toEqual({ ok: true, value: undefined });
    await host.passivateWhere(() => true);
    // The key survives passivation (it is in the snapshot): still a duplicate.
    expect(await host.ask('timer:2', envelope)).toEqual({ ok: true, value: undefined });
    expect(await host.ask('timer:2', { type: 'add', n: 0 })).toEqual({ ok: true, value: 2 });
  });
});
