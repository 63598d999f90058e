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
    behaviors: [counterBehavior, announcer],
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
