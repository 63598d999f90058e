/** Log appends (`ActorHostDeps.logOf`): the entries of a step's effects are written by its window's store call, and only with it. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorHost } from '../../runtime/actor-host.ts';
import type { Behavior } from '../../runtime/behavior.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { ActorWrite, LogAppend } from '../../runtime/persistence-port.ts';
import { counterBehavior } from './counter-behavior.ts';

/** An actor that announces without changing its state (a step that journals nothing). */
const announcer: Behavior<null, { type: 'announce'; what: string }> = {
  kind: 'announcer',
  initial: () => null,
  receive: (state, msg) => ({ state, reply: msg.what, effects: [{ added: msg.what }] }),
};

/**
 * Writes (journals) on `write`; on `announce` journals nothing and emits an event (a log entry) and a
 * command (no log entry), as a home's step that sends a hub command and tells apps does.
 */
const mixed: Behavior<number, { type: 'write' } | { type: 'announce'; what: string } | { type: 'bad' }> = {
  kind: 'mixed',
  initial: () => 0,
  receive: (state, msg) => {
    if (msg.type === 'write') return { state: state + 1, journal: true };
    if (msg.type === 'bad') return { state, reply: 'bad', effects: [{ added: { big: 1n } }, { command: 'bad' }] };
    return { state, reply: msg.what, effects: [{ added: msg.what }, { command: msg.what }] };
  },
};

const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** A host over a memory store that records every commit; every `{added}` effect is an entry of log "L". */
function makeHost(now = 1_000) {
  const store = new MemoryStore();
  const commits: { writes: readonly ActorWrite[]; appends: readonly LogAppend[] | undefined }[] = [];
  const commit = store.commit.bind(store);
  store.commit = (shard, writes, appends) => {
    commits.push({ writes, appends });
    return commit(shard, writes, appends);
  };
  const effects: unknown[] = [];
  const host = new ActorHost({
    behaviors: [counterBehavior, announcer, mixed],
    store,
    logger: silentLogger,
    registry: new Registry(),
    clock: () => now,
    logOf: (e) => ('added' in (e as object) ? { log: 'L', entry: e } : undefined),
    onEffects: (_from, e) => {
      // Run only once the window is durable: its entries are in the store by now.
      effects.push(...e.map((x) => ({ effect: x, logged: store.logEntries('L').length })));
    },
  });
  hosts.push(host);
  return { host, store, commits, effects };
}

describe('log appends written with the window', () => {
  it("hands a step's log entries to the same commit as its journal entry, with the step's time, before its effects run", async () => {
    const { host, store, commits, effects } = makeHost(1_234);
    expect(await host.ask('counter:h1:a', { type: 'add', n: 3 })).toEqual({ ok: true, value: 3 });
    expect(commits).toHaveLength(1);
    expect(commits[0]!.writes.map((w) => w.actorId)).toEqual(['counter:h1:a']);
    expect(commits[0]!.appends).toEqual([{ log: 'L', at: 1_234, entry: { added: 3 } }]);
    expect(store.logEntries('L')).toEqual([{ at: 1_234, entry: { added: 3 } }]);
    expect(effects).toEqual([{ effect: { added: 3 }, logged: 1 }]);
  });

  it('writes the entries of a step that journals nothing in a window of their own', async () => {
    const { host, store, commits, effects } = makeHost();
    // The reply depends on nothing unwritten, so it does not wait; the effect waits for the entry's window.
    expect(await host.ask('announcer:h1:x', { type: 'announce', what: 'hello' })).toEqual({ ok: true, value: 'hello' });
    await vi.waitFor(() => expect(effects).toHaveLength(1));
    expect(commits).toEqual([{ writes: [], appends: [{ log: 'L', at: 1_000, entry: { added: 'hello' } }] }]);
    expect(store.logEntries('L').map((e) => e.entry)).toEqual([{ added: 'hello' }]);
    expect(effects).toEqual([{ effect: { added: 'hello' }, logged: 1 }]);
  });

  it('passes no appends for a window without any (the store call is as before)', async () => {
    const { host, commits } = makeHost();
    await host.ask('counter:h1:a', { type: 'alarm', at: 99_999 });
    expect(commits).toHaveLength(1);
    expect(commits[0]!.appends).toBeUndefined();
  });

  it('appends nothing, and runs no effect, when the window is not written', async () => {
    const { host, store, effects } = makeHost();
    store.failWith = new Error('store down');
    const r = await host.ask('counter:h1:a', { type: 'add', n: 1 });
    expect(r).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    store.failWith = undefined;
    expect(store.logEntries('L')).toEqual([]);
    expect(effects).toEqual([]);
  });
});

describe('log appends of a step that journals nothing and depends on a window in flight', () => {
  it('keeps its other effects on the window it depends on: a later window that fails does not drop its hub command', async () => {
    const { host, store, commits, effects } = makeHost();
    // The first commit (the write) waits until released; the second (the announce's log entry) fails.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const commit = store.commit.bind(store);
    let n = 0;
    store.commit = async (shard, writes, appends) => {
      n++;
      if (n === 1) {
        await gate;
        return commit(shard, writes, appends);
      }
      throw new Error('second window refused');
    };
    const written = host.ask('mixed:h1:m', { type: 'write' });
    await vi.waitFor(() => expect(n).toBe(1));
    // Handled while the write's window is in flight: it depends on it.
    const announced = host.ask('mixed:h1:m', { type: 'announce', what: 'go' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    expect(await written).toMatchObject({ ok: true });
    expect(await announced).toEqual({ ok: true, value: 'go' });
    await vi.waitFor(() => expect(n).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The command ran once, with the window the step depends on; the event (its entry's window failed) did not.
    expect(effects.map((e) => (e as { effect: unknown }).effect)).toEqual([{ command: 'go' }]);
    expect(store.logEntries('L')).toEqual([]);
    expect(commits.length).toBeLessThanOrEqual(1);
  });

  it('crashes only the message whose log entry cannot be encoded: its window and the next ones are written', async () => {
    const { host, store, effects } = makeHost();
    const bad = await host.ask('mixed:h1:b', { type: 'bad' });
    // A crash of the message (its reducer's outcome), not a store write that failed.
    expect(bad).toMatchObject({ ok: false });
    expect(bad).not.toMatchObject({ error: { code: 'unavailable' } });
    expect(effects).toEqual([]);
    expect(await host.ask('mixed:h1:b', { type: 'announce', what: 'fine' })).toEqual({ ok: true, value: 'fine' });
    await vi.waitFor(() => expect(store.logEntries('L').map((e) => e.entry)).toEqual([{ added: 'fine' }]));
  });
});
