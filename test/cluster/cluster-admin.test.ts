/** ClusterAdmin.progress: the report a node publishes for the admin API and `npm run doctor`. */
import { describe, expect, it } from 'vitest';
import { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import type { ClusterNode } from '../../cluster/cluster-node.ts';
import type { Membership } from '../../cluster/membership.ts';
import type { RingStore } from '../../cluster/ring-store.ts';
import type { ShardManager } from '../../cluster/shard-manager.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { KeyLayout } from '../../runtime/redis/key-layout.ts';
import type { RedisClient } from '../../runtime/redis/redis-connection.ts';

describe('ClusterAdmin.progress', () => {
  it("reports the shard manager's epoch, counts and the age of its oldest handoff in whole milliseconds", () => {
    const shards = {
      epoch: 7,
      pending: 2,
      done: 40,
      count: (state: string) => (state === 'owned' ? 12 : 0),
      oldestHandoffMs: () => 1_234.6,
    } as unknown as ShardManager;
    const admin = new ClusterAdmin(
      undefined as unknown as RedisClient,
      undefined as unknown as KeyLayout,
      'n1',
      undefined as unknown as RingStore,
      undefined as unknown as Membership,
      undefined as unknown as ClusterNode,
      shards,
      silentLogger,
    );
    const before = Date.now();
    const progress = admin.progress();
    expect(progress).toEqual({ epoch: 7, owned: 12, pending: 2, done: 40, oldestHandoffMs: 1_235, at: expect.any(Number) });
    expect(progress.at).toBeGreaterThanOrEqual(before);
  });
});

describe('ClusterAdmin.status', () => {
  it('gives a dead node 0 shards owned at once, whatever its last progress report (still in Redis) said', async () => {
    const keys = { progress: (id: string) => `p:${id}` } as unknown as KeyLayout;
    const reports: Record<string, string> = {
      'p:n1': JSON.stringify({ epoch: 3, owned: 4, pending: 0, done: 4, at: 0 }),
      'p:n2': JSON.stringify({ epoch: 3, owned: 4, pending: 0, done: 0, at: 0 }),
      // Killed before it could report its handoff: its last report still says 5.
      'p:n3': JSON.stringify({ epoch: 2, owned: 5, pending: 3, done: 0, at: 0 }),
    };
    const client = { get: async (key: string) => reports[key] ?? null } as unknown as RedisClient;
    const ring = {
      epoch: 3,
      shardCount: 8,
      nodes: [
        { id: 'n1', weight: 1, state: 'active' },
        { id: 'n2', weight: 1, state: 'active' },
      ],
    };
    const membership = {
      all: async () => ['n1', 'n2', 'n3'].map((id) => ({ id, http: `h-${id}`, grpc: '', peer: '', startedAt: 0 })),
      alive: async () => new Set(['n1', 'n2']),
    } as unknown as Membership;
    const admin = new ClusterAdmin(
      client,
      keys,
      'n1',
      { read: async () => ring } as unknown as RingStore,
      membership,
      undefined as unknown as ClusterNode,
      undefined as unknown as ShardManager,
      silentLogger,
    );
    const status = await admin.status();
    expect(status.nodes.find((n) => n.id === 'n3')).toMatchObject({ state: 'left', alive: false, shardsOwned: 0 });
    expect(status.nodes.filter((n) => n.alive).reduce((sum, n) => sum + n.shardsOwned, 0)).toBe(8);
  });
});
