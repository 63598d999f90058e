import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorHost, type ActorHostConfig } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { PersistencePort } from '../../runtime/persistence-port.ts';
import { GatedStore } from '../support/gated-store.ts';
import type { Behavior } from '../../runtime/behavior.ts';
import { counterBehavior, counterTellOf } from './counter-behavior.ts';

/** An actor whose wake-up time throws once `bad` is set (a bug outside the reducer), and that can be woken. */
interface AlarmState {
  readonly n: number;
  readonly bad?: boolean;
  readonly dueAt?: number;
  readonly fired?: number;
}
type AlarmMsg = { type: 'add' } | { type: 'bad' } | { type: 'get' } | { type: 'due'; at: number } | { type: 'tick' };
const alarmBehavior: Behavior<AlarmState, AlarmMsg> = {
  kind: 'alarm',
  initial: () => ({ n: 0 }),
  nextWakeAt: (s) => {
    if (s.bad) throw new Error('nextWakeAt bug');
    return s.fired ? undefined : s.dueAt;
  },
  wakeMessage: { type: 'tick' },
  receive(s, m, ctx) {
    switch (m.type) {
      case 'add':
        return { state: { ...s, n: s.n + 1 }, reply: s.n + 1, journal: true };
      case 'bad':
        return { state: { ...s, bad: true }, reply: 'bad' };
      case 'get':
        return { state: s, reply: s };
      case 'due':
        return { state: { ...s, dueAt: m.at }, reply: 'ok', journal: true };
      case 'tick':
        // Early (the clock is behind the timer): nothing changes, and the wake-up must be armed again.
        if (s.dueAt !== undefined && ctx.now >= s.dueAt && !s.fired) return { state: { ...s, fired: ctx.now }, journal: true };
        return { state: s };
    }
  },
};

const hosts: ActorHost[] = [];
const gates: GatedStore[] = [];

/** Actors `counter:<shard>:<name>` live in shard `<shard>`. */
const shardOf = (id: string): number => Number(id.split(':')[1]);

function makeHost(config: Partial<ActorHostConfig> = {}, store: PersistencePort = new MemoryStore(), clock?: () => number) {
  const effects: { from: string; effects: readonly unknown[] }[] = [];
  // Effects that leave a shard come back through onEffects (the node's effect dispatcher routes them).
  const host: ActorHost = new ActorHost(
    {
      behaviors: [counterBehavior, alarmBehavior],
      store,
      ...(clock ? { clock } : {}),
      logger: silentLogger,
      registry: new Registry(),
      shardOf,
      tellOf: counterTellOf,
      onEffects: (from, e) => {
        effects.push({ from, effects: e });
        for (const effect of e) {
          const tell = counterTellOf(effect);
          if (tell) host.deliver(tell.to, tell.msg);
        }
      },
    },
    config,
  );
  hosts.push(host);
  return { host, effects };
}

afterEach(async () => {
  for (const gate of gates.splice(0)) gate.release();
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

describe('shards of the actor host', () => {
  it('serves the idle actors of a shard without waiting behind a hot actor’s queue', async () => {
    const { host, effects } = makeHost({ turnBudget: 16, mailboxBound: 10_000 });
    await host.ask('counter:1:hot', { type: 'get' });
    await host.ask('counter:1:idle', { type: 'get' });
    for (let i = 0; i < 2_000; i++) expect(host.tell('counter:1:hot', { type: 'add', n: 1 }).ok).toBe(true);
    const answered = await host.ask('counter:1:idle', { type: 'add', n: 1 });
    expect(answered).toEqual({ ok: true, value: 1 });
    // Rounds give each ready actor one message: the hot one had handled only a few when the idle one was served.
    const hotDone = effects.filter((e) => e.from === 'counter:1:hot').length;
    expect(hotDone).toBeLessThan(200);
    await vi.waitFor(async () => expect(await host.ask('counter:1:hot', { type: 'get' })).toEqual({ ok: true, value: 2_000 }));
  });

  it('writes a step and the steps it caused in its shard in one window; a message to another shard waits for it', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host, effects } = makeHost({}, store);
    await host.ask('counter:1:a', { type: 'get' });
    store.hold();
    const relayed = host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 3 });
    const away = host.ask('counter:1:c', { type: 'relay', to: 'counter:2:d', n: 4 });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    // Nothing released while the window waits: no reply, no effect, and the other shard has not heard.
    expect(effects).toEqual([]);
    store.release();
    expect(await relayed).toEqual({ ok: true, value: 3 });
    expect(await away).toEqual({ ok: true, value: 4 });
    expect(await host.ask('counter:1:b', { type: 'get' })).toEqual({ ok: true, value: 3 });
    await vi.waitFor(async () => expect(await host.ask('counter:2:d', { type: 'get' })).toEqual({ ok: true, value: 4 }));
    // The held window (a, b, c, with c's message to d in c's outbox), d's step in shard 2, then c
    // deleting the delivered outbox entry.
    await vi.waitFor(() => expect(store.inner.writes).toBe(3));
  });

  it('waits for a consequence whose actor must first be recovered: the step and its consequence share one window', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({}, store);
    await host.ask('counter:1:a', { type: 'get' });
    const windows: string[][] = [];
    const commit = store.commit.bind(store);
    store.commit = (shard, writes) => {
      windows.push(writes.map((w) => w.actorId));
      return commit(shard, writes);
    };
    // b is not resident: it is recovered (a read) before it handles the relayed add.
    expect(await host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 2 })).toEqual({ ok: true, value: 2 });
    expect(windows).toEqual([['counter:1:a', 'counter:1:b']]);
    expect(host.isResident('counter:1:b')).toBe(true);
  });

  it('does not wait for a consequence whose actor crashed on it: the sender is answered, the consequence follows', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({ maxAttempts: 2 }, store);
    await host.ask('counter:1:a', { type: 'get' });
    await host.ask('alarm:1:z', { type: 'bad' }); // its wake-up time now throws on every change
    // The relayed 'add' message is not an alarm message: the alarm actor's reducer throws on it.
    expect(await host.ask('counter:1:a', { type: 'relay', to: 'alarm:1:z', n: 1 })).toEqual({ ok: true, value: 1 });
  });

  it('fails a causal chain together: no reply, no effect, the caused step withdrawn, both actors back to durable state', async () => {
    const store = new GatedStore();
    const { host, effects } = makeHost({}, store);
    await host.ask('counter:1:a', { type: 'add', n: 1 });
    await host.ask('counter:1:b', { type: 'add', n: 10 });
    store.fail((id) => id === 'counter:1:a');
    expect(await host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 5 })).toMatchObject({
      ok: false,
      error: { code: 'unavailable' },
    });
    store.heal();
    expect(await host.ask('counter:1:a', { type: 'get' })).toEqual({ ok: true, value: 1 });
    expect(await host.ask('counter:1:b', { type: 'get' })).toEqual({ ok: true, value: 10 });
    expect(effects.filter((e) => e.effects.some((x) => (x as { added?: number }).added === 5))).toEqual([]);
  });

  it('keeps windows of different shards independent: a shard whose window waits does not hold another', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host } = makeHost({}, store);
    await host.ask('counter:1:a', { type: 'get' });
    await host.ask('counter:2:b', { type: 'get' });
    store.hold((id) => id === 'counter:1:a');
    const held = host.ask('counter:1:a', { type: 'add', n: 1 });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    expect(await host.ask('counter:2:b', { type: 'add', n: 2 })).toEqual({ ok: true, value: 2 });
    store.release();
    expect(await held).toEqual({ ok: true, value: 1 });
  });

  it('keeps one shard’s windows in order: steps that arrive while one is written go in the next, after it', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host } = makeHost({ mailboxBound: 10_000 }, store);
    await host.ask('counter:1:a', { type: 'get' });
    await host.ask('counter:1:x', { type: 'get' });
    store.hold();
    const first = host.ask('counter:1:a', { type: 'add', n: 1 });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    const later = Array.from({ length: 50 }, (_, i) => host.ask(i % 2 ? 'counter:1:a' : 'counter:1:x', { type: 'add', n: 1 }));
    await new Promise((r) => setImmediate(r));
    expect(store.waiting).toBe(1); // the second window waits for the first, not for the gate
    store.release();
    await Promise.all([first, ...later]);
    expect(store.inner.writes).toBe(2);
    expect(await host.ask('counter:1:a', { type: 'get' })).toEqual({ ok: true, value: 26 });
  });

  it('keeps serving the shard when something outside a reducer throws: that message is a crash, the rest of the round goes on', async () => {
    const { host } = makeHost({ maxAttempts: 2, askTimeoutMs: 2_000 });
    await host.ask('alarm:1:a', { type: 'get' });
    await host.ask('alarm:1:b', { type: 'get' });
    const [bad, fine] = await Promise.all([host.ask('alarm:1:a', { type: 'bad' }), host.ask('alarm:1:b', { type: 'add' })]);
    expect(bad).toMatchObject({ ok: false, error: { code: 'actor_crashed' } });
    expect(fine).toEqual({ ok: true, value: 1 });
    expect(await host.ask('alarm:1:b', { type: 'add' })).toEqual({ ok: true, value: 2 });
    expect(await host.ask('alarm:1:a', { type: 'get' })).toEqual({ ok: true, value: { n: 0 } });
  });

  it('arms a wake-up again when the wake message came early and changed nothing', async () => {
    let now = 1_000_000;
    const { host } = makeHost({}, new MemoryStore(), () => now);
    await host.ask('alarm:1:t', { type: 'due', at: now + 30 });
    // The timer fires after ~30 ms of real time while the injected clock has not moved: too early.
    await new Promise((r) => setTimeout(r, 60));
    now += 1_000;
    await vi.waitFor(async () => {
      const s = await host.ask<AlarmState>('alarm:1:t', { type: 'get' });
      expect(s.ok && s.value.fired).toBeTruthy();
    });
  });

  it('sends the windows of every shard that ran in one pass together (one pipeline write, one fsync)', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({}, store);
    const ids = [1, 2, 3, 4].map((shard) => `counter:${shard}:w`);
    await Promise.all(ids.map((id) => host.ask(id, { type: 'get' })));
    // Each commit notes whether a nextTick queued at the first commit has run since: it must not
    // have (ioredis writes its auto-pipeline on nextTick: windows split by one went in separate writes).
    let firstCommitTickDone: boolean | undefined;
    const seenAfterTick: boolean[] = [];
    const commit = store.commit.bind(store);
    store.commit = (shard, writes) => {
      if (firstCommitTickDone === undefined) {
        firstCommitTickDone = false;
        process.nextTick(() => (firstCommitTickDone = true));
      }
      seenAfterTick.push(firstCommitTickDone);
      return commit(shard, writes);
    };
    await Promise.all(ids.map((id) => host.ask(id, { type: 'add', n: 1 })));
    expect(seenAfterTick).toEqual([false, false, false, false]);
  });

  it('splits what piles up behind a slow window into bounded windows, written in order; a failed one fails those behind it', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host } = makeHost({ maxWindowActors: 10, mailboxBound: 10_000 }, store);
    const ids = Array.from({ length: 50 }, (_, i) => `counter:1:b${i}`);
    await Promise.all(ids.map((id) => host.ask(id, { type: 'get' })));
    const sizes: number[] = [];
    const commit = store.commit.bind(store);
    store.commit = (shard, writes) => {
      sizes.push(writes.length);
      return commit(shard, writes);
    };
    store.hold();
    const first = host.ask('counter:1:b0', { type: 'add', n: 1 });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    const later = ids.map((id) => host.ask(id, { type: 'add', n: 1 }));
    await new Promise((r) => setImmediate(r));
    store.release();
    expect(await first).toEqual({ ok: true, value: 1 });
    expect((await Promise.all(later)).every((r) => r.ok)).toBe(true);
    expect(sizes).toEqual([1, 10, 10, 10, 10, 10]);
    expect(await host.ask('counter:1:b0', { type: 'get' })).toEqual({ ok: true, value: 2 });

    // Now the first of three piled-up windows fails: all three fail with it, nothing of them stays.
    store.hold();
    const held = host.ask('counter:1:b0', { type: 'add', n: 1 });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    const piled = ids.slice(0, 25).map((id) => host.ask(id, { type: 'add', n: 1 }));
    await new Promise((r) => setImmediate(r));
    store.fail(() => true);
    store.release();
    expect(await held).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect((await Promise.all(piled)).every((r) => !r.ok)).toBe(true);
    store.heal();
    expect(await host.ask('counter:1:b1', { type: 'get' })).toEqual({ ok: true, value: 1 });
  });

  it('recovers the actors activated in one turn with one read', async () => {
    const store = new MemoryStore();
    const first = makeHost({}, store);
    const ids = Array.from({ length: 200 }, (_, i) => `counter:${i % 4}:c${i}`);
    await Promise.all(ids.map((id, i) => first.host.ask(id, { type: 'add', n: i })));
    await first.host.close();
    const reads = vi.spyOn(store, 'recoverMany');
    const single = vi.spyOn(store, 'recover');
    const { host } = makeHost({}, store);
    const replies = await Promise.all(ids.map((id) => host.ask(id, { type: 'get' })));
    expect(replies).toEqual(ids.map((_, i) => ({ ok: true, value: i })));
    expect(single).not.toHaveBeenCalled();
    expect(reads.mock.calls.length).toBe(4); // one per shard
  });
});

describe('a step that asks to leave memory (Step.passivate)', () => {
  it('removes an actor that was never written as soon as it has answered', async () => {
    const { host } = makeHost(); // passivateAfterMs is minutes: only the step can make it leave
    expect(await host.ask('counter:1:ghost', { type: 'peek' })).toEqual({ ok: true, value: 0 });
    expect(host.isResident('counter:1:ghost')).toBe(false);
    const many = await Promise.all(Array.from({ length: 500 }, (_, i) => host.ask(`counter:${i % 4}:g${i}`, { type: 'peek' })));
    expect(many.every((r) => r.ok && r.value === 0)).toBe(true);
    expect(host.residentCount).toBe(0);
  });

  it('serves the messages queued behind it, stays when a later step does not ask, and comes back on the next message', async () => {
    const { host } = makeHost();
    // Queued together: the read that asks to leave, then a write, then a read.
    const peek = host.ask('counter:1:q', { type: 'peek' });
    const add = host.ask('counter:1:q', { type: 'add', n: 2 });
    const get = host.ask('counter:1:q', { type: 'get' });
    expect(await Promise.all([peek, add, get])).toEqual([
      { ok: true, value: 0 },
      { ok: true, value: 2 },
      { ok: true, value: 2 },
    ]);
    expect(host.isResident('counter:1:q')).toBe(true);
    // Several reads that ask to leave, queued: each answered, and the actor leaves after the last.
    const peeks = await Promise.all([1, 2, 3].map(() => host.ask('counter:1:q', { type: 'peek' })));
    expect(peeks).toEqual([1, 2, 3].map(() => ({ ok: true, value: 2 })));
    await vi.waitFor(() => expect(host.isResident('counter:1:q')).toBe(false));
    // Re-activated from the store with its state.
    expect(await host.ask('counter:1:q', { type: 'add', n: 1 })).toEqual({ ok: true, value: 3 });
    expect(host.isResident('counter:1:q')).toBe(true);
  });

  it('writes a final snapshot first when its state has unsnapshotted steps, and leaves only once its window is written', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host } = makeHost({}, store);
    expect(await host.ask('counter:1:w', { type: 'add', n: 4 })).toEqual({ ok: true, value: 4 });
    store.hold();
    const added = host.ask('counter:1:w', { type: 'add', n: 1 });
    const peeked = host.ask('counter:1:w', { type: 'peek' });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    // The read depends on the held write: no answer and no departure before it is durable.
    expect(host.isResident('counter:1:w')).toBe(true);
    store.release();
    expect(await added).toEqual({ ok: true, value: 5 });
    expect(await peeked).toEqual({ ok: true, value: 5 });
    await vi.waitFor(() => expect(host.isResident('counter:1:w')).toBe(false));
    const stored = await store.inner.recover('counter:1:w');
    expect(stored.snapshot).toMatchObject({ seq: 2, state: { count: 5 } });
    expect(await host.ask('counter:1:w', { type: 'get' })).toEqual({ ok: true, value: 5 });
  });

  it('leaves memory when its recovery fails and no message waits (a read of a random id during a store outage)', async () => {
    const store = new GatedStore();
    const { host } = makeHost({}, store);
    store.fail((id) => id.startsWith('counter:1:down'));
    // A plain read (no Step.passivate: the reducer never ran) and many more of random ids.
    expect(await host.ask('counter:1:down', { type: 'get' })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(host.isResident('counter:1:down')).toBe(false);
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => host.ask(`counter:1:down-${i}`, { type: 'peek' })));
    expect(many.every((r) => !r.ok && r.error.code === 'unavailable')).toBe(true);
    expect(host.residentCount).toBe(0);
    store.heal();
    expect(await host.ask('counter:1:down', { type: 'add', n: 2 })).toEqual({ ok: true, value: 2 });
    expect(host.isResident('counter:1:down')).toBe(true);
  });

  it('leaves memory when its window fails and nothing waits for it, then comes back with its durable state', async () => {
    const store = new GatedStore();
    gates.push(store);
    const { host } = makeHost({}, store);
    expect(await host.ask('counter:1:f', { type: 'add', n: 4 })).toEqual({ ok: true, value: 4 });
    store.fail((id) => id === 'counter:1:f');
    expect(await host.ask('counter:1:f', { type: 'add', n: 1 })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(host.isResident('counter:1:f')).toBe(false);
    // A read that asked to leave, depending on a write whose window fails: it leaves as well.
    store.heal();
    expect(await host.ask('counter:1:f', { type: 'get' })).toEqual({ ok: true, value: 4 });
    store.hold();
    const added = host.ask('counter:1:f', { type: 'add', n: 1 });
    const peeked = host.ask('counter:1:f', { type: 'peek' });
    await vi.waitFor(() => expect(store.waiting).toBe(1));
    store.fail((id) => id === 'counter:1:f');
    store.release();
    expect(await Promise.all([added, peeked])).toMatchObject([
      { ok: false, error: { code: 'unavailable' } },
      { ok: false, error: { code: 'unavailable' } },
    ]);
    expect(host.isResident('counter:1:f')).toBe(false);
    store.heal();
    expect(await host.ask('counter:1:f', { type: 'get' })).toEqual({ ok: true, value: 4 });
  });

  it('leaves even with a wake-up set: the wake-up is a durable reminder that activates it again', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({}, store);
    await host.ask('counter:1:alarm', { type: 'alarm', at: Date.now() + 300 });
    expect(await host.ask('counter:1:alarm', { type: 'peek' })).toEqual({ ok: true, value: 0 });
    await vi.waitFor(() => expect(host.isResident('counter:1:alarm')).toBe(false));
    expect((await store.recover('counter:1:alarm')).events.some((e) => (e.msg as { type?: string } | null)?.type === 'ring')).toBe(false);
    // Due, the reminder activates it and the ring is journaled (the step deleting the reminder).
    await vi.waitFor(async () => {
      const recovered = await store.recover('counter:1:alarm');
      expect(recovered.events.some((e) => (e.msg as { type?: string } | null)?.type === 'ring' && e.rem?.[0]?.[0] === '-')).toBe(true);
    });
  });
});
