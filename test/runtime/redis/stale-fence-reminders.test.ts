/**
 * A reminder set by a host whose fence token is stale never fires, on real Redis and deterministic:
 * an old process (leases never renewed, so only the fence script can stop it) and its successor
 * under the same owner id (new fence tokens), each an ActorHost over its own RedisStore.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import type { Behavior, ReminderFired } from '../../../runtime/behavior.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { RedisClients, type TestRedisNode } from '../../support/redis-node.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';

const SHARDS = 16;
const ACTOR = 'timer:h1';
const SHARD = shardOfActor(SHARDS)(ACTOR);

interface TimerState {
  /** Names of the reminders whose firing step was handled, in order. */
  readonly fired: readonly string[];
}
type TimerMsg = { readonly type: 'set'; readonly name: string; readonly at: number } | { readonly type: 'fired' } | ReminderFired;

const timerBehavior: Behavior<TimerState, TimerMsg, unknown> = {
  kind: 'timer',
  initial: () => ({ fired: [] }),
  receive(state, msg) {
    switch (msg.type) {
      case 'set':
        return { state, reminders: [{ op: 'set', name: msg.name, at: msg.at }], reply: true };
      case 'fired':
        return { state, reply: state.fired };
      case 'reminder':
        return { state: { fired: [...state.fired, msg.name] }, journal: true };
    }
  },
};

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
const hosts: ActorHost[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  for (const h of hosts) await h.close().catch(() => {});
  clients.disconnectAll();
  await redis?.stop();
});

/** A host over `node`'s store serving every shard (its reminders loaded), as a node process runs it. */
async function hostOver(node: TestRedisNode): Promise<ActorHost> {
  const host = new ActorHost({
    behaviors: [timerBehavior],
    store: node.store,
    logger: silentLogger,
    registry: node.registry,
    shardOf: node.store.shardOf,
  });
  hosts.push(host);
  await Promise.all(Array.from({ length: SHARDS }, (_, s) => host.takeShard(s)));
  return host;
}

const firedCount = async (node: TestRedisNode): Promise<number> =>
  (await node.registry.getSingleMetric('iot_reminders_fired_total')?.get())?.values.find((v) => v.labels.kind === 'timer')?.value ?? 0;

describe('reminders and stale fence tokens (real Redis)', () => {
  it('refuses a reminder set with a stale fence token; it fires nowhere, and the one set before fires once, at the successor', async () => {
    const keys = new KeyLayout(`${redis.cluster}sf`);
    // Leases are never renewed: the old process cannot learn it lost them except from the fence script.
    const leases = { renewEveryMs: 600_000 };
    const old = await clients.node(keys, { owner: 'n1', shards: SHARDS, leases });
    const oldHost = await hostOver(old);
    const keptAt = Date.now() + 1_500;
    expect(await oldHost.ask(ACTOR, { type: 'set', name: 'kept', at: keptAt })).toEqual({ ok: true, value: true });

    // The successor (same owner id, as a restarted process) takes every shard with new tokens and loads 'kept'.
    const next = await clients.node(keys, { owner: 'n1', shards: SHARDS, leases });
    const nextHost = await hostOver(next);
    expect(await next.store.loadReminders(SHARD)).toEqual([{ actorId: ACTOR, name: 'kept', at: keptAt }]);

    // The old process still serves the shard and sets a reminder: its window is fenced by Redis.
    const staleAt = Date.now() + 300;
    const refused = await oldHost.ask(ACTOR, { type: 'set', name: 'stale', at: staleAt });
    expect(refused).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(old.fenced).toEqual([SHARD]);
    expect(await next.store.loadReminders(SHARD)).toEqual([{ actorId: ACTOR, name: 'kept', at: keptAt }]);

    // Past the stale reminder's due time: it reached no reducer on either host.
    await new Promise((r) => setTimeout(r, staleAt + 500 - Date.now()));
    expect(await firedCount(old)).toBe(0);
    expect(await firedCount(next)).toBe(0);

    // 'kept' fires once, durably, at the successor; nothing of 'stale' ever does.
    await vi.waitFor(async () => expect(await nextHost.ask(ACTOR, { type: 'fired' })).toEqual({ ok: true, value: ['kept'] }), {
      timeout: 5_000,
      interval: 20,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await nextHost.ask(ACTOR, { type: 'fired' })).toEqual({ ok: true, value: ['kept'] });
    expect(await next.store.loadReminders(SHARD)).toEqual([]);
    // The journal holds the old process's durable set and the successor's firing, nothing of the stale step.
    const journal = (await next.store.recover(ACTOR)).events.map((e) => e.msg as { type: string; name: string });
    expect(journal.map((m) => `${m.type}:${m.name}`)).toEqual(['set:kept', 'reminder:kept']);
  });
});
