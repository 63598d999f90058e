/** A node's life in the cluster: membership, joining the ring, following its epochs, failover of dead nodes, draining out. */
import type { Logger } from '../runtime/logger.ts';
import type { NodeInfo, RingDoc } from './cluster-types.ts';
import { buildShardTable } from './hash-ring.ts';
import type { Membership } from './membership.ts';
import { applyChange, type RingChange, type RingStore } from './ring-store.ts';
import type { ShardManager } from './shard-manager.ts';

export interface ClusterNodeDeps {
  readonly self: NodeInfo;
  readonly shardCount: number;
  readonly ringStore: RingStore;
  readonly membership: Membership;
  readonly shards: ShardManager;
  /** Re-sends messages that waited for shards this node no longer takes. */
  readonly reroute: () => void;
  readonly autoJoin: boolean;
  readonly logger: Logger;
  /** Milliseconds between liveness checks of the ring's nodes. */
  readonly checkEveryMs?: number;
}

/** A node is declared dead after this many consecutive checks without a heartbeat. */
const DEAD_AFTER_CHECKS = 2;

export class ClusterNode {
  private ring: RingDoc | undefined;
  private stopWatch: (() => Promise<void>) | undefined;
  private checker: NodeJS.Timeout | undefined;
  private readonly missed = new Map<string, number>();
  private readonly log: Logger;
  /** The ring read under way for `catchUp` (one at a time, shared by every caller). */
  private catchingUp: Promise<void> | undefined;

  constructor(private readonly deps: ClusterNodeDeps) {
    this.log = deps.logger.child({ component: 'cluster' });
  }

  get epoch(): number {
    return this.ring?.epoch ?? 0;
  }

  get ringDoc(): RingDoc | undefined {
    return this.ring;
  }

  /** Whether the ring this node follows lists it (in any state, draining included): false before it joined and after it left. */
  get inRing(): boolean {
    return this.ring?.nodes.some((n) => n.id === this.deps.self.id) ?? false;
  }

  /** Registers, joins the ring (AUTO_JOIN) and starts following it. */
  async start(): Promise<void> {
    const { self, ringStore, membership } = this.deps;
    await membership.start();
    let ring =
      (await ringStore.read()) ??
      (this.deps.autoJoin
        ? await ringStore.create({ shardCount: this.deps.shardCount, nodes: [{ id: self.id, weight: 1, state: 'active' }] })
        : undefined);
    if (ring && this.deps.autoJoin && ring.nodes.some((n) => n.id === self.id && n.state === 'draining')) {
      // Restarted while it was draining out: leave (if others can take over), then join afresh.
      ring = await this.change({ remove: [self.id] }).catch(() => ring);
    }
    if (ring && this.deps.autoJoin && !ring.nodes.some((n) => n.id === self.id))
      ring = await this.change({ add: [{ id: self.id, weight: 1 }] });
    if (ring) this.adopt(ring);
    this.stopWatch = ringStore.watch((doc) => this.adopt(doc));
    this.checker = setInterval(() => void this.checkLiveness(), this.deps.checkEveryMs ?? 1_000);
    this.checker.unref();
    this.log.info(
      { epoch: this.epoch, nodes: this.ring?.nodes.map((n) => n.id) ?? [] },
      this.ring ? 'following the ring' : 'waiting to be added to the ring',
    );
  }

  /**
   * Applies a ring change by compare-and-set, retrying on a concurrent change (the change is
   * recomputed on the newer document). Throws RingChangeError for an invalid change.
   */
  async change(change: RingChange): Promise<RingDoc> {
    for (;;) {
      const current = await this.deps.ringStore.read();
      if (!current) throw new Error('the cluster has no ring yet');
      const result = await this.deps.ringStore.compareAndSet(current.epoch, applyChange(current, change));
      if (result.ok) {
        this.adopt(result.doc);
        return result.doc;
      }
    }
  }

  /**
   * Planned exit: hand every shard off, then leave the ring. Resolves when this node owns nothing.
   * `signal` stops it (the shutdown's DRAIN_TIMEOUT_MS): it stops waiting for the handoffs, leaves
   * the ring as it is, and rejects with the signal's reason.
   */
  async drain(signal?: AbortSignal): Promise<void> {
    const id = this.deps.self.id;
    if (!this.ring?.nodes.some((n) => n.id === id)) return;
    const active = this.ring.nodes.filter((n) => n.state === 'active' && n.id !== id);
    if (active.length === 0) {
      this.log.warn('the last active node leaves: its shards stay unowned until a node joins');
    } else {
      // Already draining (an operator drained it through the admin API): only wait for the handoffs.
      const current = await this.deps.ringStore.read();
      signal?.throwIfAborted();
      if (!current?.nodes.some((n) => n.id === id && n.state === 'draining')) await this.change({ drain: [id] });
      await this.deps.shards.settled();
      while (this.deps.shards.count('owned') > 0 || this.deps.shards.pending > 0) {
        signal?.throwIfAborted();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // Not after a timeout: the node is closing (its Redis connection too), and a remove now would race that.
    signal?.throwIfAborted();
    await this.change({ remove: [id] }).catch((err: unknown) => this.log.warn({ err }, 'could not remove this node from the ring'));
    this.log.info('drained: this node owns no shard and has left the ring');
  }

  async stop(): Promise<void> {
    await this.stopWatch?.();
    clearInterval(this.checker);
    await this.deps.membership.stop();
  }

  /**
   * Brings this node's ring up to at least `epoch` when it is behind (a peer routed a message with
   * a newer table than the pub/sub announcement or the poll has brought yet): reads the ring
   * document and adopts it. Concurrent callers share one read.
   */
  catchUp(epoch: number): Promise<void> {
    if (epoch <= this.epoch) return Promise.resolve();
    this.catchingUp ??= (async () => {
      try {
        const ring = await this.deps.ringStore.read();
        if (ring) this.adopt(ring);
        if (this.epoch < epoch) this.log.warn({ epoch: this.epoch, wanted: epoch }, "the stored ring is older than a peer's epoch");
      } finally {
        this.catchingUp = undefined;
      }
    })();
    return this.catchingUp;
  }

  private adopt(ring: RingDoc): void {
    if (this.ring && ring.epoch <= this.ring.epoch) return;
    this.ring = ring;
    if (!ring.nodes.some((n) => n.state === 'active')) {
      this.log.error({ epoch: ring.epoch }, 'the ring has no active node');
      return;
    }
    this.deps.shards.applyTable(buildShardTable(ring));
    this.deps.reroute();
  }

  /** The coordinator (lowest live id in the ring) takes nodes whose heartbeat expired out of the ring. */
  private async checkLiveness(): Promise<void> {
    const ring = this.ring;
    if (!ring) return;
    try {
      const ids = ring.nodes.map((n) => n.id);
      const alive = await this.deps.membership.alive(ids);
      alive.add(this.deps.self.id);
      const dead: string[] = [];
      for (const id of ids) {
        if (alive.has(id)) this.missed.delete(id);
        else {
          const n = (this.missed.get(id) ?? 0) + 1;
          this.missed.set(id, n);
          if (n >= DEAD_AFTER_CHECKS) dead.push(id);
        }
      }
      if (dead.length === 0) return;
      const coordinator = [...alive].filter((id) => ids.includes(id)).sort()[0];
      if (coordinator !== this.deps.self.id) return;
      if (dead.length >= ids.length) return;
      this.log.warn({ dead }, 'heartbeats expired: taking the nodes out of the ring');
      await this.change({ remove: dead });
      for (const id of dead) this.missed.delete(id);
    } catch (err) {
      this.log.warn({ err }, 'liveness check failed');
    }
  }
}
