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
