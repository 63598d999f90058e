/** ClusterRouter with tracing on: a message held while its shard is being taken over keeps its caller's trace. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterRouter, type PeerPort } from '../../cluster/cluster-router.ts';
import type { ShardManager, ShardState } from '../../cluster/shard-manager.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import { runInSpan, SpanKind, startSpanFrom } from '../../runtime/tracing.ts';
import { parentOf, startInMemoryTracing, type InMemoryTracing } from '../support/in-memory-tracing.ts';
import { counterBehavior } from '../runtime/counter-behavior.ts';

let tracing: InMemoryTracing | undefined;
const hosts: ActorHost[] = [];

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
  await tracing?.stop();
  tracing = undefined;
});

describe('ClusterRouter with tracing on', () => {
  it('runs an ask and a tell held for a shard being acquired in their callers’ trace once the shard is owned', async () => {
    tracing = startInMemoryTracing();
    const registry = new Registry();
    const host = new ActorHost({ behaviors: [counterBehavior], store: new MemoryStore(), logger: silentLogger, registry });
    hosts.push(host);
    const states = new Map<number, ShardState>([[1, 'acquiring']]);
    const shards = {
      epoch: 1,
      state: (s: number) => states.get(s) ?? 'released',
      ownerOf: () => 'n1',
      fenceMark: 0,
      servedSince: () => true,
    };
    const peers: PeerPort = { ask: () => Promise.reject(new Error('no peers here')), tell: () => {} };
    const router = new ClusterRouter({
      nodeId: 'n1',
      host,
      shards: shards as unknown as ShardManager,
      shardOf: () => 1,
      peers,
      logger: silentLogger,
      registry,
    });
    const caller = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    const asked = runInSpan(caller, () => {
      expect(router.tell('counter:a', { type: 'add', n: 1 })).toEqual({ ok: true, value: undefined });
      return router.ask('counter:a', { type: 'add', n: 2 });
    });
    // The shard is taken over later, outside the caller's span.
    states.set(1, 'owned');
    router.onOwned(1);
    expect(await asked).toEqual({ ok: true, value: 3 });
    const t = tracing;
    await vi.waitFor(() => expect(t.spans().filter((s) => s.name === 'step counter add')).toHaveLength(2));
    for (const step of t.spans().filter((s) => s.name === 'step counter add')) {
      expect(parentOf(step)).toBe(caller.spanContext().spanId);
      expect(step.spanContext().traceId).toBe(caller.spanContext().traceId);
    }
  });
});
