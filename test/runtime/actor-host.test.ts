import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorHost, type ActorHostConfig } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import type { PersistencePort } from '../../runtime/persistence-port.ts';
import { GatedStore } from '../support/gated-store.ts';
import { counterBehavior, flakyFailures, type CounterMsg } from './counter-behavior.ts';

const hosts: ActorHost[] = [];
/** Held stores opened before the hosts close. */
const gates: GatedStore[] = [];

function makeHost(config: Partial<ActorHostConfig> = {}, store: PersistencePort = new MemoryStore()) {
  const registry = new Registry();
  const effects: { from: string; effects: readonly unknown[] }[] = [];
  const host = new ActorHost(
    { behaviors: [counterBehavior], store, logger: silentLogger, registry, onEffects: (from, e) => effects.push({ from, effects: e }) },
    config,
  );
  hosts.push(host);
  return { host, registry, store, effects };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

afterEach(async () => {
  for (const gate of gates.splice(0)) gate.release();
  await Promise.all(hosts.splice(0).map((h) => h.close()));
  flakyFailures.clear();
});

describe('ActorHost', () => {
  it('activates an actor on its first message and recovers its state from the store', async () => {
    const store = new MemoryStore();
    const first = makeHost({}, store);
    expect(first.host.isResident('counter:a')).toBe(false);
    expect(await first.host.ask('counter:a', { type: 'add', n: 5 })).toEqual({ ok: true, value: 5 });
    expect(first.host.isResident('counter:a')).toBe(true);
    expect(await metric(first.registry, 'iot_actor_activations_total', { kind: 'counter' })).toBe(1);
    await first.host.close();

    const second = makeHost({}, store);
    expect(await second.host.ask('counter:a', { type: 'get' })).toEqual({ ok: true, value: 5 });
  });

  it('passivates an idle actor and re-activates it with its state on the next message', async () => {
    const { host, registry } = makeHost({ passivateAfterMs: 30 });
    await host.ask('counter:p', { type: 'add', n: 3 });
    await host.ask('counter:p', { type: 'add', n: 4 });
    await vi.waitFor(() => expect(host.isResident('counter:p')).toBe(false), { timeout: 2_000 });
    expect(await metric(registry, 'iot_actor_passivations_total', { kind: 'counter' })).toBe(1);
    expect(await host.ask('counter:p', { type: 'get' })).toEqual({ ok: true, value: 7 });
    expect(await metric(registry, 'iot_actor_activations_total', { kind: 'counter' })).toBe(2);
  });

  it('never drops a message sent while its actor is stopping: the same incarnation takes it and stays', async () => {
    const store = new GatedStore();
    const { host, registry } = makeHost({ passivateAfterMs: 20 }, store);
    await host.ask('counter:s', { type: 'add', n: 1 });
    store.hold(); // the final snapshot will wait
    gates.push(store); // a failed run must not leave close() waiting at the gate
    // The sweeper has started passivating once the final snapshot waits at the gate.
    await vi.waitFor(() => expect(store.waiting).toBe(1), { timeout: 2_000 });
    expect(host.isResident('counter:s')).toBe(true);
    expect(await metric(registry, 'iot_actor_passivations_total', { kind: 'counter' })).toBe(0);
    const during = host.ask('counter:s', { type: 'add', n: 10 }, 5_000);
    const told = host.tell('counter:s', { type: 'add', n: 100 });
    expect(told.ok).toBe(true);
    store.release();
    expect(await during).toEqual({ ok: true, value: 11 });
    await vi.waitFor(async () => expect(await host.ask('counter:s', { type: 'get' })).toEqual({ ok: true, value: 111 }));
    // The snapshot landed, but messages had come: the incarnation stayed (no second activation).
    expect(await metric(registry, 'iot_actor_activations_total', { kind: 'counter' })).toBe(1);
    // Idle again, it passivates; the next message recovers everything.
    await vi.waitFor(() => expect(host.isResident('counter:s')).toBe(false), { timeout: 2_000 });
    expect(await host.ask('counter:s', { type: 'get' })).toEqual({ ok: true, value: 111 });
  });

  it('gives each of 50,000 concurrent requests its own reply', async () => {
    const { host } = makeHost({ mailboxBound: 10_000 });
    const n = 50_000;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) => host.ask(`counter:c${i % 500}`, { type: 'echo', tag: i }, 30_000)),
    );
    const wrong = replies.filter((r, i) => !r.ok || r.value !== i);
    expect(wrong).toEqual([]);
  });

  it('applies messages to one actor in order, one at a time', async () => {
    const { host } = makeHost({ mailboxBound: 10_000 });
    const replies = await Promise.all(Array.from({ length: 1_000 }, () => host.ask('counter:o', { type: 'add', n: 1 })));
    expect(replies.map((r) => (r.ok ? r.value : -1))).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
  });

  it('restarts a crashing actor from its last durable state and retries the message', async () => {
    const { host, registry } = makeHost();
    await host.ask('counter:k', { type: 'add', n: 2 });
    flakyFailures.set('k', 2);
    expect(await host.ask('counter:k', { type: 'flaky', key: 'k' })).toEqual({ ok: true, value: 3 });
    expect(await metric(registry, 'iot_actor_crashes_total', { kind: 'counter' })).toBe(2);
    expect(await host.ask('counter:k', { type: 'get' })).toEqual({ ok: true, value: 3 });
  });

  it('rejects a message that crashes its actor on every attempt and keeps serving', async () => {
    const { host, registry } = makeHost({ maxAttempts: 3 });
    await host.ask('counter:x', { type: 'add', n: 1 });
    const r = await host.ask('counter:x', { type: 'poison' });
    expect(r).toMatchObject({ ok: false, error: { code: 'actor_crashed' } });
    expect(await metric(registry, 'iot_actor_crashes_total', { kind: 'counter' })).toBe(3);
    expect(await host.ask('counter:x', { type: 'add', n: 1 })).toEqual({ ok: true, value: 2 });
  });

  it('answers overloaded past the mailbox bound', async () => {
    const { host, registry } = makeHost({ mailboxBound: 10 });
    const results = Array.from({ length: 12 }, () => host.tell('counter:m', { type: 'add', n: 1 }));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(results[10]).toMatchObject({ ok: false, error: { code: 'overloaded' } });
    expect(await metric(registry, 'iot_actor_rejected_total', { kind: 'counter', reason: 'overloaded' })).toBe(2);
    await vi.waitFor(async () => expect(await host.ask('counter:m', { type: 'get' })).toEqual({ ok: true, value: 10 }));
    expect(host.tell('counter:m', { type: 'add', n: 1 }).ok).toBe(true);
  });

  it('answers unavailable while the store is down and acknowledges nothing it did not write', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({}, store);
    await host.ask('counter:d', { type: 'add', n: 1 });
    store.failWith = new Error('store down');
    expect(await host.ask('counter:d', { type: 'add', n: 5 })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(await host.ask('counter:d', { type: 'get' })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    store.failWith = undefined;
    // The failed add was never acknowledged, and the actor recovered without it.
    expect(await host.ask('counter:d', { type: 'get' })).toEqual({ ok: true, value: 1 });
  });

  it('runs effects only once their step is durable', async () => {
    const store = new MemoryStore();
    const { host, effects } = makeHost({}, store);
    await host.ask('counter:e', { type: 'add', n: 1 });
    store.failWith = new Error('down');
    await host.ask('counter:e', { type: 'add', n: 2 });
    expect(effects).toEqual([{ from: 'counter:e', effects: [{ added: 1 }] }]);
  });

  it('answers timeout when no reply comes before the deadline', async () => {
    const store = new GatedStore();
    const { host } = makeHost({}, store);
    await host.ask('counter:t', { type: 'get' });
    store.hold();
    expect(await host.ask('counter:t', { type: 'add', n: 1 }, 50)).toMatchObject({ ok: false, error: { code: 'timeout' } });
    store.release();
  });

  it('snapshots every N events and trims the journal behind the snapshot', async () => {
    const store = new MemoryStore();
    const { host } = makeHost({ snapshotEvery: 5 }, store);
    for (let i = 0; i < 12; i++) await host.ask('counter:j', { type: 'add', n: 1 });
    expect(store.journalLength('counter:j')).toBe(2);
    await host.close();
    const again = makeHost({ snapshotEvery: 5 }, store);
    expect(await again.host.ask('counter:j', { type: 'get' })).toEqual({ ok: true, value: 12 });
  });

  it('batches writes of one actor while a write is in flight, in order', async () => {
    const store = new GatedStore();
    store.delayMs = 5;
    const { host } = makeHost({ mailboxBound: 10_000 }, store);
    const replies = await Promise.all(Array.from({ length: 1_000 }, () => host.ask('counter:b', { type: 'add', n: 1 })));
    expect(replies.map((r) => (r.ok ? r.value : -1))).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(store.inner.writes).toBeLessThan(100);
  });

  it('delivers the wake message at the time the state asks for, also to an actor that passivated meanwhile', async () => {
    const { host, registry, store } = makeHost({ passivateAfterMs: 10 });
    const writes = vi.spyOn(store, 'commit');
    const rang = (): boolean =>
      writes.mock.calls.some(([, window]) => window.some((w) => w.batch.events.some((e) => (e.msg as CounterMsg | null)?.type === 'ring')));
    await host.ask('counter:w', { type: 'alarm', at: Date.now() + 150 });
    // It idles out long before the alarm: the wake-up is a durable reminder, not a timer in the actor.
    await vi.waitFor(() => expect(host.isResident('counter:w')).toBe(false), { timeout: 2_000 });
    expect(rang()).toBe(false);
    await vi.waitFor(() => expect(rang()).toBe(true), { timeout: 2_000 });
    expect(await metric(registry, 'iot_actor_activations_total', { kind: 'counter' })).toBe(2);
    expect(await metric(registry, 'iot_reminders_fired_total', { kind: 'counter' })).toBe(1);
    expect(await host.ask('counter:w', { type: 'rings' })).toEqual({ ok: true, value: 1 });
    expect(host.pendingReminders).toBe(0);
  });

  it('re-arms a wake-up after recovery', async () => {
    const store = new MemoryStore();
    const first = makeHost({}, store);
    await first.host.ask('counter:r', { type: 'alarm', at: Date.now() + 100 });
    await first.host.close();
    const again = makeHost({}, store);
    await again.host.ask('counter:r', { type: 'get' }); // activates and recovers
    await vi.waitFor(async () => {
      const recovered = await store.recover('counter:r');
      expect(recovered.events.at(-1)?.msg).toEqual({ type: 'ring' });
    });
  });

  it('answers stopping once it is closed', async () => {
    const { host } = makeHost();
    await host.close();
    expect(host.tell('counter:z', { type: 'get' })).toMatchObject({ ok: false, error: { code: 'stopping' } });
  });

  it('exports mailbox and resident gauges', async () => {
    const { host, registry } = makeHost();
    host.tell('counter:g', { type: 'add', n: 1 });
    expect(await metric(registry, 'iot_actor_mailbox_messages')).toBe(1);
    expect(await metric(registry, 'iot_actor_resident', { kind: 'counter' })).toBe(1);
  });
});
