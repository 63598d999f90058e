/** Which shards this node serves, and the handoffs that move them when the ring changes. */
import { Gauge, type Registry } from 'prom-client';
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ShardTable } from './cluster-types.ts';
import type { ShardLeases } from './shard-leases.ts';

/**
 * `released`: another node's (or nobody's yet). `acquiring`: ours by the table, waiting for the
 * lease (the old owner is flushing, or its lease must lapse). `owned`: leased and served here.
 * `handing-off`: no longer ours; its actors are being flushed and stopped before the lease goes.
 */
export type ShardState = 'released' | 'acquiring' | 'owned' | 'handing-off';

const isInFlight = (state: ShardState): boolean => state === 'acquiring' || state === 'handing-off';

export interface ShardManagerDeps {
  readonly nodeId: string;
  readonly shardCount: number;
  readonly leases: ShardLeases;
  readonly host: ActorHost;
  readonly shardOf: (actorId: string) => number;
  /** Whether a node's heartbeat is alive: a dead holder's lease is taken over at once. */
  readonly isAlive: (nodeId: string) => Promise<boolean>;
  /** A shard became owned here: whatever waited for it may now run. */
  readonly onOwned: (shard: number) => void;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Milliseconds between attempts to take a lease another node still holds. */
  readonly retryMs?: number;
  /** Monotonic milliseconds, for the age of handoffs (default `performance.now`). */
  readonly clock?: () => number;
  /**
   * Whether this node may serve at all right now (the self-fence: its heartbeat is fresh enough,
   * membership.ts `mayServe`); a cheap synchronous check, made on every `state` of an owned shard.
   * Default: always.
   */
  readonly mayServe?: () => boolean;
}

export class ShardManager {
  private readonly states: ShardState[];
  /** When each shard's handoff began (clock ms), NaN when it has none in flight. */
  private readonly inFlightSince: number[];
  private readonly clock: () => number;
  private table: ShardTable | undefined;
  private readonly log: Logger;
  private readonly wanted = new Set<number>();
  private acquiring = false;
  private releasing: Promise<void> = Promise.resolve();
  private settleWaiters: (() => void)[] = [];
  private readonly mayServe: () => boolean;
  /** Self-fenced (`fence`): every shard was dropped and none is taken until `unfence`. */
  private fenced = false;
  /** Self-fences so far: a reply computed before one must not be given after it (`servedSince`). */
  private fences = 0;
  /** Fence tokens forgotten by the self-fence, by shard: given back at `unfence` for the shards the table moved away. */
  private readonly forgotten = new Map<number, string>();
  /** Handoffs completed (shards released plus shards acquired) since start. */
  done = 0;

  constructor(private readonly deps: ShardManagerDeps) {
    this.states = Array.from({ length: deps.shardCount }, () => 'released');
    this.inFlightSince = Array.from({ length: deps.shardCount }, () => Number.NaN);
    this.clock = deps.clock ?? (() => performance.now());
    this.mayServe = deps.mayServe ?? (() => true);
    this.log = deps.logger.child({ component: 'shards' });
    const registers = [deps.registry];
    // Read at scrape time (prom-client calls `collect` with the gauge as `this`).
    const gauge = (name: string, help: string, value: () => number): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    gauge('iot_cluster_shards_owned', 'Shards this node owns and serves', () => this.count('owned'));
    gauge(
      'iot_cluster_handoffs_in_flight',
      'Shards being acquired or handed off by this node',
      () => this.count('acquiring') + this.count('handing-off'),
    );
    gauge(
      'iot_cluster_handoff_oldest_seconds',
      'Age of the oldest handoff (shard being acquired or handed off) in flight on this node, 0 when none',
      () => this.oldestHandoffMs() / 1000,
    );
    gauge('iot_cluster_ring_epoch', 'Ring epoch this node routes by', () => this.table?.epoch ?? 0);
  }

  /**
   * The shard's state. An owned shard reads `released` once this node may no longer serve (the
   * self-fence deadline passed, even if the fence itself has not run yet: after a pause, I/O can
   * run before timers), so the router refuses it as a shard it does not own.
   */
  state(shard: number): ShardState {
    const state = this.states[shard]!;
    return state === 'owned' && !this.mayServe() ? 'released' : state;
  }

  /** Whether this node may serve its shards right now (the self-fence deadline, checked synchronously). */
  get serving(): boolean {
    return !this.fenced && this.mayServe();
  }

  /** A mark to pass to `servedSince` later: the self-fences so far. */
  get fenceMark(): number {
    return this.fences;
  }

  /** Whether this node has served without a break since `mark` (`fenceMark`): no self-fence began or was due meanwhile. */
  servedSince(mark: number): boolean {
    return this.fences === mark && this.serving;
  }

  /** Whether the self-fence holds (`fence` ran, `unfence` has not). */
  get isFenced(): boolean {
    return this.fenced;
  }

  /**
   * The self-fence: this node could not refresh its heartbeat in time, so another node may soon
   * take any of its shards. Stops serving every shard at once, as for a lost lease: the actors are
   * evicted without writing (what was acked is durable; unacked reports are re-sent by the hubs),
   * the fence tokens forgotten, and nothing is acquired until `unfence`. Returns the shards dropped.
   */
  fence(): number[] {
    if (this.fenced) return [];
    this.fenced = true;
    this.fences++;
    const dropped: number[] = [];
    for (let s = 0; s < this.deps.shardCount; s++) {
      if (this.states[s] === 'released') continue;
      if (this.states[s] !== 'acquiring') dropped.push(s);
      this.set(s, 'released');
    }
    this.wanted.clear();
    for (const [s, token] of this.deps.leases.forgetAll()) {
      this.forgotten.set(s, token);
      if (!dropped.includes(s)) dropped.push(s);
    }
    for (const s of dropped) this.deps.host.dropShard(s);
    if (dropped.length > 0) {
      const set = new Set(dropped);
      this.deps.host.evict((id) => set.has(this.deps.shardOf(id)));
    }
    this.maybeSettled();
    return dropped;
  }

  /**
   * The heartbeat is fresh again: takes the shards the current table gives this node (new leases,
   * new fence tokens), and gives back the leases forgotten at the fence of the shards it moved
   * away — held by a live node, their new owners would otherwise wait for the lease TTL.
   */
  unfence(): void {
    if (!this.fenced) return;
    this.fenced = false;
    const giveBack = [...this.forgotten].filter(([s]) => this.table?.owners[s] !== this.deps.nodeId);
    this.forgotten.clear();
    if (giveBack.length > 0) {
      this.deps.leases.releaseForgotten(giveBack).then(
        (freed) => this.log.info({ shards: giveBack.length, freed }, 'gave back the leases forgotten at the self-fence'),
        (err: unknown) =>
          this.log.warn({ err, shards: giveBack.length }, 'could not give back the leases forgotten at the self-fence; they lapse'),
      );
    }
    this.wantMine();
    void this.acquireLoop();
    this.maybeSettled();
  }

  get epoch(): number {
    return this.table?.epoch ?? 0;
  }

  /** The owner of a shard by the current table (undefined before the first table). */
  ownerOf(shard: number): string | undefined {
    return this.table?.owners[shard];
  }

  count(state: ShardState): number {
    let n = 0;
    for (const s of this.states) if (s === state) n++;
    return n;
  }

  /** Handoffs this node still has to finish for the current table. */
  get pending(): number {
    return this.count('acquiring') + this.count('handing-off');
  }

  /**
   * Milliseconds since the oldest handoff in flight began (its shard became `acquiring` or
   * `handing-off`), 0 when none. Stuck is what this shows: a lease a live holder never releases,
   * a flush that does not end.
   */
  oldestHandoffMs(): number {
    const now = this.clock();
    let oldest = now;
    for (const since of this.inFlightSince) if (since < oldest) oldest = since; // NaN compares false
    return now - oldest;
  }

  /** Resolves once no shard is acquiring or handing off. */
  settled(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /** Adopts a newer table: starts releasing what is no longer ours and acquiring what now is. */
  applyTable(table: ShardTable): void {
    if (this.table && table.epoch <= this.table.epoch) return;
    this.table = table;
    if (this.fenced) {
      this.log.info({ epoch: table.epoch }, 'ring changed while self-fenced: shards are taken once the heartbeat is fresh again');
      return;
    }
    const release: number[] = [];
    for (let s = 0; s < this.deps.shardCount; s++) {
      const mine = table.owners[s] === this.deps.nodeId;
      const state = this.states[s]!;
      if (mine && state === 'released') this.wanted.add(s);
      else if (!mine && state === 'owned') release.push(s);
      // Released at once, so the router re-routes what waited for it; a lease taken meanwhile is given back in owned().
      else if (!mine && state === 'acquiring') this.abandon(s);
    }
    const moving = release.length + this.wanted.size;
    this.log.info(
      { epoch: table.epoch, releasing: release.length, acquiring: this.wanted.size },
      moving > 0 ? 'ring changed: moving shards' : 'ring changed',
    );
    if (release.length > 0) this.release(release);
    for (const s of this.wanted) this.set(s, 'acquiring');
    void this.acquireLoop();
    this.maybeSettled();
  }

  /** The lease of an owned shard was lost (fenced, renewal refused): its actors were evicted; try to take it back if it is still ours. */
  lost(shard: number): void {
    if (this.states[shard] !== 'owned') return;
    this.set(shard, 'released');
    if (this.table?.owners[shard] === this.deps.nodeId && !this.fenced) {
      this.wanted.add(shard);
      this.set(shard, 'acquiring');
      void this.acquireLoop();
    }
  }

  /** Stops serving the given shards: flush and stop their actors, then give their leases up. */
  private release(shards: number[]): void {
    for (const s of shards) {
      this.set(s, 'handing-off');
      this.deps.host.dropShard(s); // its reminders fire at the next owner, which loads them
    }
    const set = new Set(shards);
    this.releasing = this.releasing.then(async () => {
      const started = performance.now();
      try {
        await this.deps.host.passivateWhere((id) => set.has(this.deps.shardOf(id)));
        await this.deps.leases.release(shards);
      } catch (err) {
        // The leases lapse by themselves; the fence keeps this node from writing after that.
        this.log.error({ err, shards: shards.length }, 'handoff release failed; leases will lapse');
      }
      for (const s of shards) {
        this.set(s, 'released');
        this.done++;
        if (this.table?.owners[s] === this.deps.nodeId && !this.fenced) {
          this.wanted.add(s); // the ring moved it back meanwhile
          this.set(s, 'acquiring');
        }
      }
      this.log.info({ shards: shards.length, ms: Math.round(performance.now() - started) }, 'shards handed off');
      void this.acquireLoop();
      this.maybeSettled();
    });
  }

  private async acquireLoop(): Promise<void> {
    if (this.acquiring) return;
    this.acquiring = true;
    try {
      while (this.wanted.size > 0 && !this.fenced) {
        const shards = [...this.wanted].filter((s) => this.table?.owners[s] === this.deps.nodeId);
        for (const s of this.wanted) if (!shards.includes(s)) this.abandon(s);
        if (shards.length === 0) break;
        try {
          const heldElsewhere = await this.deps.leases.acquire(shards);
          for (const s of shards) if (!heldElsewhere.has(s)) this.owned(s);
          const byHolder = new Map<string, number[]>();
          for (const [s, holder] of heldElsewhere) byHolder.set(holder, [...(byHolder.get(holder) ?? []), s]);
          for (const [holder, held] of byHolder) {
            if (await this.deps.isAlive(holder)) continue; // it is flushing: wait for its release
            const stillOurs = held.filter((s) => this.wanted.has(s)); // a newer table may have moved some away meanwhile
            if (stillOurs.length === 0) continue;
            this.log.warn({ holder, shards: stillOurs.length }, 'taking over the leases of a dead node');
            await this.deps.leases.acquire(stillOurs, { force: true });
            for (const s of stillOurs) this.owned(s);
          }
        } catch (err) {
          this.log.error({ err }, 'lease acquisition failed; retrying');
        }
        if (this.wanted.size > 0) await new Promise((r) => setTimeout(r, this.deps.retryMs ?? 100));
      }
    } finally {
      this.acquiring = false;
      this.maybeSettled();
    }
  }

  private owned(shard: number): void {
    if (!this.wanted.delete(shard)) {
      // Abandoned, or self-fenced, while its lease was being taken: give the lease straight back.
      if (this.states[shard] === 'released' && this.deps.leases.token(shard) !== undefined) this.release([shard]);
      return;
    }
    if (this.table?.owners[shard] !== this.deps.nodeId) {
      // The ring moved on while we waited: give it straight back.
      this.set(shard, 'owned');
      this.release([shard]);
      return;
    }
    this.set(shard, 'owned');
    this.done++;
    void this.deps.host.takeShard(shard);
    this.deps.onOwned(shard);
  }

  /** Wants every released shard the current table gives this node. */
  private wantMine(): void {
    if (!this.table) return;
    for (let s = 0; s < this.deps.shardCount; s++) {
      if (this.table.owners[s] === this.deps.nodeId && this.states[s] === 'released') {
        this.wanted.add(s);
        this.set(s, 'acquiring');
      }
    }
  }

  private abandon(shard: number): void {
    this.wanted.delete(shard);
    if (this.states[shard] === 'acquiring') this.set(shard, 'released');
  }

  /** The one place a shard's state changes. */
  private set(shard: number, state: ShardState): void {
    const from = this.states[shard];
    if (from === state) return;
    this.states[shard] = state;
    if (!isInFlight(state)) this.inFlightSince[shard] = Number.NaN;
    else if (Number.isNaN(this.inFlightSince[shard]!)) this.inFlightSince[shard] = this.clock();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ shard, from, to: state }, 'shard state');
  }

  private maybeSettled(): void {
    if (this.pending > 0 || this.settleWaiters.length === 0) return;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const w of waiters) w();
  }
}
