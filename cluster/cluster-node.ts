/** A node's life in the cluster: membership, joining the ring, following its epochs, failover of dead nodes (suspicion, confirmation, removal), the self-fence, draining out. */
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import { counterOf } from '../runtime/metrics.ts';
import type { NodeInfo, RingDoc } from './cluster-types.ts';
import { buildShardTable } from './hash-ring.ts';
import type { Membership } from './membership.ts';
import { applyChange, RingChangeError, type RingChange, type RingStore } from './ring-store.ts';
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
  /** Milliseconds between liveness checks of every node of the ring (default 500). */
  readonly checkEveryMs?: number;
  /** Milliseconds between heartbeat reads of a suspected node (default 100). */
  readonly suspectEveryMs?: number;
  /** Milliseconds between checks of this node's own serving deadline (default min(100, TTL / 10)). */
  readonly fenceCheckEveryMs?: number;
  /** Where `iot_cluster_self_fences_total` is registered (none: not counted). */
  readonly registry?: Registry;
}

/**
 * What a suspicion watch ended with: `dead` (confirmed and taken out), `alive` (its heartbeat was
 * refreshed, or never expired while watched), `unjudged` (this node was fenced, or just back from a
 * fence, or could not read Redis, for the whole watch: it says nothing of the suspect), `gone`
 * (not in the ring), `stopped`.
 */
export type SuspicionOutcome = 'dead' | 'alive' | 'unjudged' | 'gone' | 'stopped';

export class ClusterNode {
  private ring: RingDoc | undefined;
  private stopWatch: (() => Promise<void>) | undefined;
  private checker: NodeJS.Timeout | undefined;
  private fenceChecker: NodeJS.Timeout | undefined;
  /** Suspected nodes being watched closely, and how each watch ends. */
  private readonly suspects = new Map<string, Promise<SuspicionOutcome>>();
  /** The removal of dead nodes under way (one at a time; a later one waits and re-reads the ring). */
  private removing: Promise<void> = Promise.resolve();
  /** A liveness check is under way (a slow Redis must not pile them up). */
  private checkingLiveness = false;
  /** Self-fenced since (Date.now ms), while the serving deadline has passed and the heartbeat is not fresh again. */
  private fencedAt: number | undefined;
  /** Whether this node was in the ring when it fenced itself (it then re-joins once fresh again, with AUTO_JOIN). */
  private fencedInRing = false;
  private recovering: Promise<void> | undefined;
  /**
   * Until when (performance.now ms) a ring without this node, after a self-fence it recovered
   * from, makes it join again: the other nodes may take it out just after it read the ring.
   */
  private rejoinUntil = 0;
  private rejoining: Promise<void> | undefined;
  /**
   * Until when (performance.now ms) this node judges nobody after recovering from a self-fence:
   * an outage of Redis fences every node, and the others need a refresh interval or two to write
   * their heartbeats again; judged at once, they would be taken out (and join again) for nothing.
   */
  private judgeAfter = 0;
  /** The last set of dead nodes that could not be taken out (logged once, not at every check). */
  private cannotRemove = '';
  private stopped = false;
  private readonly log: Logger;
  /** The ring read under way for `catchUp` (one at a time, shared by every caller). */
  private catchingUp: Promise<void> | undefined;

  private readonly selfFences: { inc(): void } | undefined;

  constructor(private readonly deps: ClusterNodeDeps) {
    this.log = deps.logger.child({ component: 'cluster' });
    this.selfFences =
      deps.registry &&
      counterOf(
        deps.registry,
        'iot_cluster_self_fences_total',
        'Self-fences: times this node stopped serving every shard because it could not refresh its heartbeat within HEARTBEAT_TTL_MS (minus a margin)',
        [],
      );
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
    this.checker = setInterval(() => void this.checkLiveness(), this.deps.checkEveryMs ?? 500);
    this.checker.unref();
    const fenceEvery = this.deps.fenceCheckEveryMs ?? Math.max(1, Math.min(100, Math.floor(membership.ttlMs / 10)));
    this.fenceChecker = setInterval(() => this.checkFence(), fenceEvery);
    this.fenceChecker.unref();
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
    this.rejoinUntil = 0; // leaving on purpose: a ring without this node is what it wants now
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
    this.stopped = true;
    await this.stopWatch?.();
    clearInterval(this.checker);
    clearInterval(this.fenceChecker);
    await Promise.all(this.suspects.values());
    await this.removing;
    await this.recovering;
    await this.deps.membership.stop();
  }

  /** Whether this node has fenced itself (its heartbeat went stale) and not recovered yet. */
  get fenced(): boolean {
    return this.fencedAt !== undefined;
  }

  /** Whether this node may judge others dead now: not fenced, and not just back from a fence. */
  private get judging(): boolean {
    return this.fencedAt === undefined && performance.now() >= this.judgeAfter;
  }

  /**
   * A peer stream to or from `nodeId` broke: it may be dead. Its heartbeat is read every
   * `suspectEveryMs` until it has expired (the node is taken out of the ring: Redis confirmed it)
   * or until Redis shows it was refreshed after the suspicion began (alive: its expiry lies
   * beyond suspicion + TTL), at most TTL + a check interval. Resolves how the watch ended; one
   * watch per node.
   */
  suspect(nodeId: string): Promise<SuspicionOutcome> {
    if (nodeId === this.deps.self.id || this.stopped) return Promise.resolve('gone');
    if (!this.ring?.nodes.some((n) => n.id === nodeId)) return Promise.resolve('gone');
    const watching = this.suspects.get(nodeId);
    if (watching) return watching;
    this.log.info({ suspect: nodeId }, 'peer stream broke: watching its heartbeat');
    const watch = this.watchSuspect(nodeId).finally(() => this.suspects.delete(nodeId));
    this.suspects.set(nodeId, watch);
    return watch;
  }

  /** The watch of `nodeId` under way, if it is suspected now. */
  suspicion(nodeId: string): Promise<SuspicionOutcome> | undefined {
    return this.suspects.get(nodeId);
  }

  private async watchSuspect(nodeId: string): Promise<SuspicionOutcome> {
    const { membership } = this.deps;
    const every = this.deps.suspectEveryMs ?? 100;
    const since = performance.now();
    const until = since + membership.ttlMs + (this.deps.checkEveryMs ?? 500);
    /** Whether a heartbeat read was made while this node could judge: else the watch says nothing. */
    let judged = false;
    for (;;) {
      if (this.stopped) return 'stopped';
      if (!this.ring?.nodes.some((n) => n.id === nodeId)) return 'gone';
      try {
        const sent = performance.now();
        // Not judging (fenced, or just back): no read, no verdict; the watch runs out unjudged.
        const left = this.judging ? await membership.heartbeatLeftMs(nodeId) : null;
        if (left !== null) judged = true;
        if (left === undefined && this.judging) {
          await this.removeDead([nodeId], 'suspicion confirmed: its heartbeat expired');
          return 'dead';
        }
        // Expiring later than a heartbeat written before the suspicion could: refreshed since.
        if (left !== null && left !== undefined && sent + left > since + membership.ttlMs) {
          this.log.info({ suspect: nodeId }, 'suspected node is alive: its heartbeat was refreshed');
          return 'alive';
        }
      } catch (err) {
        this.log.warn({ err, suspect: nodeId }, 'could not read the heartbeat of a suspected node');
      }
      if (performance.now() >= until) {
        if (!judged) {
          this.log.info({ suspect: nodeId }, 'suspicion ended unjudged: this node could not judge while it watched');
          return 'unjudged';
        }
        this.log.info({ suspect: nodeId }, 'suspected node is alive: its heartbeat did not expire while watched');
        return 'alive';
      }
      await new Promise((r) => setTimeout(r, every).unref());
    }
  }

  /**
   * Takes nodes whose heartbeat expired out of the ring, by compare-and-set: any node that saw them
   * dead may, and concurrent removals converge (each attempt re-reads the ring and removes only
   * the ones still in it; nothing is left to do once another node removed them).
   */
  private removeDead(ids: readonly string[], why: string): Promise<void> {
    const run = this.removing.then(async () => {
      let attempts = 0;
      for (;;) {
        if (this.stopped) return;
        const current = await this.deps.ringStore.read();
        if (!current) return;
        const present = ids.filter((id) => current.nodes.some((n) => n.id === id));
        if (present.length === 0) return this.adopt(current);
        let next;
        try {
          next = applyChange(current, { remove: present });
        } catch (err) {
          // Removing them would leave no active node, say: they stay until one comes back or joins.
          if (!(err instanceof RingChangeError)) throw err;
          const key = `${present.join(',')}@${current.epoch}`;
          if (key !== this.cannotRemove) this.log.warn({ dead: present, reason: err.message }, 'cannot take dead nodes out');
          this.cannotRemove = key;
          return;
        }
        const result = await this.deps.ringStore.compareAndSet(current.epoch, next);
        if (result.ok) {
          this.log.warn({ dead: present, why, epoch: result.doc.epoch }, 'heartbeats expired: took the nodes out of the ring');
          return this.adopt(result.doc);
        }
        // Another node changed the ring first (most likely removing the same dead): back off a
        // little, with jitter, so nodes that all saw the death do not retry in lockstep.
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * Math.min(++attempts, 5)).unref());
      }
    });
    this.removing = run.catch(() => {});
    return run;
  }

  /**
   * The self-fence, checked every few tens of milliseconds: past the serving deadline (its
   * heartbeat not refreshed for TTL − margin), this node stops serving every shard at once, before
   * any other node may see its heartbeat expired and take them; once a heartbeat succeeds again,
   * it follows the ring afresh (re-joining it with AUTO_JOIN when it was taken out meanwhile).
   */
  private checkFence(): void {
    if (this.stopped) return;
    const { membership, shards } = this.deps;
    const may = membership.mayServe();
    if (!may && this.fencedAt === undefined) {
      this.fencedAt = Date.now();
      this.fencedInRing = this.inRing;
      const dropped = shards.fence();
      this.selfFences?.inc();
      // When serving stopped by the wall clock (the deadline passed then; this check can run much
      // later, after a pause): comparable with other nodes' logs on the same clock.
      const late = performance.now() - membership.servingDeadline;
      const stoppedServingAt = Number.isFinite(late) ? new Date(this.fencedAt - late).toISOString() : undefined;
      this.log.error(
        { shards: dropped.length, ttlMs: membership.ttlMs, stoppedServingAt, fencedAt: new Date(this.fencedAt).toISOString() },
        'self-fence: the heartbeat could not be refreshed in time; stopped serving every shard before another node may take them',
      );
      this.deps.reroute(); // what waited for shards being acquired is refused now
    } else if (this.fencedAt !== undefined && membership.fresh) {
      // Fresh again (the lapse stays latched in `mayServe` until `recover` resumes it).
      this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
    }
  }

  /**
   * Back from a self-fence: follows the stored ring, re-joins it if taken out meanwhile (AUTO_JOIN),
   * and only then serves again. Every await is followed by a re-check (stopped, or stale again:
   * the next fence check retries); the fence is lifted (`fencedAt` cleared, the lapse resumed,
   * `unfence`) in one synchronous step at the end.
   */
  private async recover(): Promise<void> {
    const { membership } = this.deps;
    const stale = (): boolean => this.stopped || this.fencedAt === undefined || !membership.fresh;
    try {
      // The ring may have moved on while this node was paused: follow the stored one first.
      const stored = await this.deps.ringStore.read();
      if (stored) this.adopt(stored);
      if (stale()) return; // stale again meanwhile: the next check retries
      if (this.fencedInRing && this.deps.autoJoin) {
        this.rejoinUntil = performance.now() + 2 * membership.ttlMs + (this.deps.checkEveryMs ?? 500);
        // Taken out as dead while it was fenced: join again as a restarted node would.
        if (this.ring && !this.inRing) await this.rejoin();
        if (stale()) return;
      }
      if (!membership.resume()) return;
      const fencedFor = Date.now() - this.fencedAt!;
      this.fencedAt = undefined;
      this.judgeAfter = performance.now() + membership.ttlMs;
      this.log.info({ fencedForMs: fencedFor, inRing: this.inRing }, 'heartbeat fresh again: serving the shards the ring gives this node');
      this.deps.shards.unfence();
    } catch (err) {
      this.log.warn({ err }, 'could not read the ring after the self-fence; retrying');
    }
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

  /** Adds this node to the ring again after the others took it out while it was self-fenced (one attempt at a time). */
  private rejoin(): Promise<void> {
    this.rejoining ??= this.change({ add: [{ id: this.deps.self.id, weight: 1 }] })
      .then(
        (doc) => this.log.warn({ epoch: doc.epoch }, 'taken out of the ring while self-fenced: joined it again'),
        (err: unknown) => this.log.warn({ err }, 'could not join the ring again after the self-fence'),
      )
      .finally(() => (this.rejoining = undefined));
    return this.rejoining;
  }

  private adopt(ring: RingDoc): void {
    if (this.ring && ring.epoch <= this.ring.epoch) return;
    const wasIn = this.inRing;
    this.ring = ring;
    if (wasIn && !this.inRing && !this.stopped && performance.now() < this.rejoinUntil) void this.rejoin();
    if (!ring.nodes.some((n) => n.state === 'active')) {
      this.log.error({ epoch: ring.epoch }, 'the ring has no active node');
      return;
    }
    this.deps.shards.applyTable(buildShardTable(ring));
    this.deps.reroute();
  }

  /**
   * Every node checks the heartbeats of the ring's nodes (the ones nobody streams to included):
   * one read showing a heartbeat expired is enough (Redis measured the TTL), and the node that saw
   * it takes the dead out of the ring. A fenced node judges nobody: its own view is stale.
   */
  private async checkLiveness(): Promise<void> {
    const ring = this.ring;
    if (!ring || !this.judging || this.stopped || this.checkingLiveness) return;
    this.checkingLiveness = true;
    try {
      const ids = ring.nodes.map((n) => n.id).filter((id) => id !== this.deps.self.id);
      const alive = await this.deps.membership.alive(ids);
      const dead = ids.filter((id) => !alive.has(id));
      if (dead.length === 0 || !this.judging) return;
      await this.removeDead(dead, 'liveness check');
    } catch (err) {
      this.log.warn({ err }, 'liveness check failed');
    } finally {
      this.checkingLiveness = false;
    }
  }
}
