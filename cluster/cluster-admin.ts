/** What ops see and do: cluster status, a dry run of a ring change, and applying one (one at a time). */
import type { RedisClient } from '../runtime/redis/redis-connection.ts';
import type { KeyLayout } from '../runtime/redis/key-layout.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { RingDoc } from './cluster-types.ts';
import { buildShardTable } from './hash-ring.ts';
import type { Membership } from './membership.ts';
import { applyChange, type RingChange, type RingStore } from './ring-store.ts';
import type { ShardManager } from './shard-manager.ts';

/** One node's handoff progress, as it reports it. */
export interface NodeProgress {
  readonly epoch: number;
  readonly owned: number;
  readonly pending: number;
  readonly done: number;
  /**
   * Milliseconds since its oldest handoff in flight began, 0 when none (ShardManager.oldestHandoffMs;
   * `npm run doctor` reads it). Absent from the reports of nodes older than this field.
   */
  readonly oldestHandoffMs?: number;
  /** Epoch ms. */
  readonly at: number;
}

export interface ClusterStatus {
  readonly epoch: number;
  readonly shardCount: number;
  readonly nodes: readonly {
    readonly id: string;
    readonly address: string;
    readonly state: string;
    readonly weight: number;
    readonly alive: boolean;
    /** Shards it owns by the current ring. */
    readonly shardsAssigned: number;
    /** Shards it reports holding now (differs while a change is in flight); 0 for a node whose heartbeat expired. */
    readonly shardsOwned: number;
  }[];
  readonly handoffs: { readonly pending: number; readonly done: number; readonly inFlight: boolean };
  /** The owner of every shard by the current ring (index = shard); empty while no node is active. */
  readonly owners: readonly string[];
}

export interface RingPlan {
  readonly epoch: number;
  readonly nextNodes: RingDoc['nodes'];
  /** Shards that would move, by destination: `{from, to, count}`. */
  readonly moving: number;
  readonly flows: readonly { readonly from: string; readonly to: string; readonly shards: number }[];
  readonly moves: readonly { readonly shard: number; readonly from: string; readonly to: string }[];
}

/** The cluster has no ring yet (no node has joined): nothing to show or change. */
export class NoRingError extends Error {
  override readonly name = 'NoRingError';
}

/** A change refused because another one is still moving shards. */
export class RingBusyError extends Error {
  override readonly name = 'RingBusyError';
}

/** Progress reports older than this are from a node that stopped reporting. */
const PROGRESS_TTL_MS = 10_000;

export class ClusterAdmin {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
    private readonly nodeId: string,
    private readonly ringStore: RingStore,
    private readonly membership: Membership,
    private readonly node: ClusterNode,
    private readonly shards: ShardManager,
    private readonly logger: Logger,
  ) {}

  /** Publishes this node's progress now and every `everyMs`. */
  startReporting(everyMs = 500): void {
    const report = (): void =>
      void this.client
        .set(this.keys.progress(this.nodeId), JSON.stringify(this.progress()), 'PX', PROGRESS_TTL_MS)
        .catch((err: unknown) => this.logger.debug({ err }, 'progress report failed'));
    report();
    this.timer = setInterval(report, everyMs);
    this.timer.unref();
  }

  /** Stops reporting and withdraws the report: a node that left holds nothing. */
  async stopReporting(): Promise<void> {
    clearInterval(this.timer);
    await this.client.del(this.keys.progress(this.nodeId)).catch(() => undefined);
  }

  progress(): NodeProgress {
    return {
      epoch: this.shards.epoch,
      owned: this.shards.count('owned'),
      pending: this.shards.pending,
      done: this.shards.done,
      oldestHandoffMs: Math.round(this.shards.oldestHandoffMs()),
      at: Date.now(),
    };
  }

  async status(): Promise<ClusterStatus> {
    const ring = await this.ringStore.read();
    if (!ring) throw new NoRingError('the cluster has no ring yet: start a node with AUTO_JOIN=true');
    const infos = await this.membership.all();
    const ids = [...new Set([...ring.nodes.map((n) => n.id), ...infos.map((i) => i.id)])];
    const alive = await this.membership.alive(ids);
    const progress = await this.readProgress(ids);
    const table = ring.nodes.some((n) => n.state === 'active') ? buildShardTable(ring) : undefined;
    const assigned = new Map<string, number>();
    for (const owner of table?.owners ?? []) assigned.set(owner, (assigned.get(owner) ?? 0) + 1);
    let pending = 0;
    let done = 0;
    let inFlight = false;
    for (const id of ids) {
      const p = progress.get(id);
      if (!p || !alive.has(id)) continue;
      pending += p.pending;
      done += p.done;
      if (p.epoch < ring.epoch || p.pending > 0) inFlight = true;
    }
    // A live ring node whose reported holdings differ from its assignment is still moving.
    for (const n of ring.nodes) {
      const p = progress.get(n.id);
      if (alive.has(n.id) && p && p.owned !== (assigned.get(n.id) ?? 0)) inFlight = true;
    }
    return {
      epoch: ring.epoch,
      shardCount: ring.shardCount,
      nodes: ids.map((id) => {
        const inRing = ring.nodes.find((n) => n.id === id);
        const info = infos.find((i) => i.id === id);
        return {
          id,
          address: info?.http ?? '',
          state: inRing?.state ?? 'left',
          weight: inRing?.weight ?? 0,
          alive: alive.has(id),
          shardsAssigned: assigned.get(id) ?? 0,
          // A dead node serves nothing, whatever its last report (kept up to PROGRESS_TTL_MS) said.
          shardsOwned: alive.has(id) ? (progress.get(id)?.owned ?? 0) : 0,
        };
      }),
      handoffs: { pending, done, inFlight },
      owners: table?.owners ?? [],
    };
  }

  /** Dry run: which shards would move where. Throws RingChangeError for an invalid change. */
  async plan(change: RingChange): Promise<RingPlan> {
    const ring = await this.ringStore.read();
    if (!ring) throw new NoRingError('the cluster has no ring yet: start a node with AUTO_JOIN=true');
    const next = applyChange(ring, change);
    const from = buildShardTable(ring);
    const to = buildShardTable({ ...ring, epoch: ring.epoch + 1, nodes: next.nodes });
    const moves: { shard: number; from: string; to: string }[] = [];
    from.owners.forEach((owner, shard) => {
      const dest = to.owners[shard]!;
      if (dest !== owner) moves.push({ shard, from: owner, to: dest });
    });
    const flows = new Map<string, number>();
    for (const m of moves) flows.set(`${m.from}\u0000${m.to}`, (flows.get(`${m.from}\u0000${m.to}`) ?? 0) + 1);
    return {
      epoch: ring.epoch,
      nextNodes: next.nodes,
      moving: moves.length,
      flows: [...flows].map(([k, shards]) => {
        const [f, t] = k.split('\u0000');
        return { from: f!, to: t!, shards };
      }),
      moves,
    };
  }

  /** Applies a change unless another is still in flight (RingBusyError → 409). */
  async apply(change: RingChange): Promise<{ epoch: number; moving: number }> {
    const status = await this.status();
    if (status.handoffs.inFlight)
      throw new RingBusyError(`a ring change is still moving shards (${status.handoffs.pending} pending): retry when it is done`);
    const plan = await this.plan(change);
    const doc = await this.node.change(change);
    this.logger.info({ epoch: doc.epoch, moving: plan.moving, change }, 'ring change applied');
    return { epoch: doc.epoch, moving: plan.moving };
  }

  private async readProgress(ids: readonly string[]): Promise<Map<string, NodeProgress>> {
    const out = new Map<string, NodeProgress>();
    if (ids.length === 0) return out;
    // One GET per node (pipelined): the keys live in different Redis Cluster slots, so no MGET.
    const raws = await Promise.all(ids.map((id) => this.client.get(this.keys.progress(id))));
    raws.forEach((raw, i) => {
      if (raw) out.set(ids[i]!, JSON.parse(raw) as NodeProgress);
    });
    return out;
  }
}
