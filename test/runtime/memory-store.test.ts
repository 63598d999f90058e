import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { JournalEntry, Snapshot } from '../../runtime/persistence-port.ts';

describe('MemoryStore', () => {
  it('returns whole journal entries and snapshots, as JSON round-trips them', async () => {
    const store = new MemoryStore();
    const entries: JournalEntry[] = [
      { seq: 1, at: 10, msg: { type: 'report' }, rem: [['+', 'for.r.0', 500, { v: [1] }]], from: 'home:h1#3' },
      { seq: 2, at: 11, msg: null, rem: [['-', 'for.r.0']], sys: 1 },
    ];
    await store.write('home:h1', { events: entries });
    expect(await store.recover('home:h1')).toEqual({ events: entries });
    const snapshot: Snapshot = { seq: 2, state: { n: 2 }, rem: [['x', 7]], inbox: ['hub:h1:a#1'] };
    await store.write('home:h1', { events: [], snapshot });
    expect(await store.recover('home:h1')).toEqual({ snapshot, events: [] });
    expect(store.journalLength('home:h1')).toBe(0);
  });

  it('keeps one reminder index per shard given to commit', async () => {
    const store = new MemoryStore();
    await store.commit(3, [{ actorId: 'home:a', batch: { events: [{ seq: 1, at: 1, msg: 1, rem: [['+', 'r', 9]] }] } }]);
    await store.commit(4, [{ actorId: 'home:b', batch: { events: [{ seq: 1, at: 1, msg: 1, rem: [['+', 'r', 8]] }] } }]);
    expect(await store.loadReminders(3)).toEqual([{ actorId: 'home:a', name: 'r', at: 9 }]);
    expect(await store.loadReminders(4)).toEqual([{ actorId: 'home:b', name: 'r', at: 8 }]);
    expect(await store.loadReminders(5)).toEqual([]);
  });

  it('fails loadReminders while the store is down', async () => {
    const store = new MemoryStore();
    store.failWith = new Error('down');
    await expect(store.loadReminders(0)).rejects.toThrow('down');
  });

  it('writes nothing of a window with state that is not JSON', async () => {
    const store = new MemoryStore();
    await expect(
      store.commit(0, [
        { actorId: 'home:a', batch: { events: [{ seq: 1, at: 1, msg: 1, rem: [['+', 'r', 9]] }] } },
        { actorId: 'home:b', batch: { events: [{ seq: 1, at: 1, msg: { big: 1n } }] } },
      ]),
    ).rejects.toThrow(/cannot encode the write of home:b/);
    expect(await store.recover('home:a')).toEqual({ events: [] });
    expect(await store.loadReminders(0)).toEqual([]);
  });
});
