/** The actor host: virtual actors over nact, with a registry, passivation, deadlines and backpressure. */
import { dispatch, spawn, spawnStateless, start, stop } from 'nact';
import type { Registry } from 'prom-client';
import { ActorCell, type Envelope } from './actor-cell.ts';
import type { Behavior } from './behavior.ts';
import type { Logger } from './logger.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { PersistencePort } from './persistence-port.ts';
import { runtimeError, type Result } from './result.ts';

export interface ActorHostConfig {
  /** Milliseconds without a message after which an actor is snapshotted and stopped. */
  readonly passivateAfterMs: number;
  /** Messages that may wait for one actor; past it `tell`/`ask` answer `overloaded`. */
  readonly mailboxBound: number;
  /** Journal entries between snapshots. */
  readonly snapshotEvery: number;
  /** Attempts at a message that crashes its actor before it is rejected with `actor_crashed`. */
  readonly maxAttempts: number;
  /** Default `ask` deadline, milliseconds. */
  readonly askTimeoutMs: number;
}

export const defaultActorHostConfig: ActorHostConfig = {
  passivateAfterMs: 5 * 60_000,
  mailboxBound: 1_000,
  snapshotEvery: 100,
  maxAttempts: 3,
  askTimeoutMs: 5_000,
};

export interface ActorHostDeps {
  // Behaviours are heterogeneous; each actor only ever sees messages of its own kind.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Behavior is invariant in S and M: only `any` admits every kind.
  readonly behaviors: readonly Behavior<any, any, any, any>[];
  readonly store: PersistencePort;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Epoch ms; injectable for tests. */
  readonly clock?: () => number;
  /** Runs the effects of a durable step, in order. Exceptions are logged, never thrown back. */
  readonly onEffects?: (fromId: string, effects: readonly unknown[]) => void;
  /** The nact parent an actor lives under (default: its kind); the shard, once there are shards. */
  readonly groupOf?: (actorId: string) => string;
}

type NactRef = ReturnType<typeof spawn>;

interface Resident {
  readonly cell: ActorCell;
  readonly ref: NactRef;
  /** Set while it passivates: resolves when it has stopped (or stayed, if the snapshot failed). */
  stopping?: Promise<void>;
}

/**
 * Hosts virtual actors. A message to an id activates its actor if it is not resident (the actor
 * recovers its state from the store before its first message); idle actors are passivated and
 * come back on the next message. nact silently drops a dispatch to a stopped actor, so the host
 * never dispatches to one: while an actor passivates, its messages wait in the cell and are
 * handed to its next incarnation.
 */
export class ActorHost {
  private readonly config: ActorHostConfig;
  private readonly behaviors = new Map<string, Behavior<unknown, unknown>>();
  private readonly residents = new Map<string, Resident>();
  private readonly parents = new Map<string, NactRef>();
  private readonly system = start();
  private readonly metrics: RuntimeMetrics;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly deps: ActorHostDeps,
    config: Partial<ActorHostConfig> = {},
  ) {
    this.config = { ...defaultActorHostConfig, ...config };
    for (const b of deps.behaviors) this.behaviors.set(b.kind, b);
    this.log = deps.logger.child({ component: 'actor-host' });
    this.clock = deps.clock ?? Date.now;
    this.metrics = new RuntimeMetrics(deps.registry, () => this.sample());
    const sweepEvery = Math.max(10, Math.min(1_000, this.config.passivateAfterMs / 4));
    this.sweeper = setInterval(() => this.sweep(), sweepEvery);
    this.sweeper.unref();
  }

  /** Sends without waiting for an answer. Fails only with `overloaded` or `stopping`. */
  tell(actorId: string, msg: unknown): Result<void> {
    return this.send(actorId, { msg, deadline: 0 }, true);
  }

  /**
   * Sends a message that an actor's durable step produced (an effect). It is not subject to the
   * mailbox bound: backpressure belongs at the edges, and dropping a consequence of an
   * acknowledged step would lose it. Fails only with `stopping`.
   */
  deliver(actorId: string, msg: unknown): Result<void> {
    return this.send(actorId, { msg, deadline: 0 }, false);
  }

  /**
   * Sends and waits for the actor's reply, which is released only once the step is durable.
   * @param timeoutMs milliseconds until the answer is `timeout` (the message may still apply).
   */
  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs = this.config.askTimeoutMs): Promise<Result<R>> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.metrics.reject(kindOf(actorId), 'timeout');
        resolve(runtimeError('timeout', `no reply from ${actorId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const reply = (result: Result<unknown>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result as Result<R>);
      };
      const sent = this.send(actorId, { msg, reply, deadline: this.clock() + timeoutMs }, true);
      if (!sent.ok) reply(sent);
    });
  }

  /** True when the actor is in memory (tests and diagnostics). */
  isResident(actorId: string): boolean {
    return this.residents.has(actorId);
  }

  get residentCount(): number {
    return this.residents.size;
  }

  /**
   * Stops the matching actors at once, without writing anything (their shard was lost to another
   * owner, whose state must not be overwritten). Messages still queued for them are answered
   * `unavailable`; a later message activates the actor afresh from the store.
   * @returns how many actors were evicted.
   */
  evict(filter: (actorId: string) => boolean): number {
    let n = 0;
    for (const [id, resident] of this.residents) {
      if (!filter(id)) continue;
      n++;
      const { cell, ref } = resident;
      cell.evicted = true;
      cell.disarm();
      this.residents.delete(id);
      for (const env of cell.waiting.splice(0)) env.reply?.(runtimeError('unavailable', `actor ${id} is no longer served by this node`));
      // Stop behind whatever is already in its nact mailbox, which the evicted cell answers.
      dispatch(ref, { msg: undefined, deadline: 0, control: async () => stop(ref) });
    }
    if (n > 0) this.log.warn({ evicted: n }, 'actors evicted');
    return n;
  }

  /**
   * Passivates the matching actors (each after the messages already in its mailbox, with a final
   * snapshot) and resolves when all have stopped. The caller keeps new messages away from them
   * (a message sent meanwhile would activate the actor again).
   */
  async passivateWhere(filter: (actorId: string) => boolean): Promise<void> {
    const matching = [...this.residents.entries()].filter(([id]) => filter(id)).map(([, r]) => r);
    await Promise.all(matching.map((r) => this.passivate(r)));
  }

  /** Passivates every actor (final snapshots) and stops the actor system. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweeper);
    await Promise.all([...this.residents.values()].map((r) => this.passivate(r)));
    stop(this.system);
  }

  private send(actorId: string, env: Envelope, bounded: boolean): Result<void> {
    if (this.closing) {
      this.metrics.reject(kindOf(actorId), 'stopping');
      return runtimeError('stopping', 'the actor host is shutting down');
    }
    const resident = this.residents.get(actorId) ?? this.activate(actorId);
    const { cell } = resident;
    if (bounded && cell.inflight >= this.config.mailboxBound) {
      this.metrics.reject(kindOf(actorId), 'overloaded');
      return runtimeError('overloaded', `mailbox of ${actorId} is full (${this.config.mailboxBound} messages)`);
    }
    cell.inflight++;
    cell.lastActive = this.clock();
    if (cell.status === 'stopping') cell.waiting.push(env);
    else dispatch(resident.ref, env);
    return { ok: true, value: undefined };
  }

  private activate(actorId: string): Resident {
    const kind = kindOf(actorId);
    const behavior = this.behaviors.get(kind);
    if (!behavior) throw new TypeError(`no behaviour for actor kind "${kind}" (actor id ${actorId})`);
    const cell = new ActorCell(
      actorId,
      behavior,
      this.deps.store,
      {
        snapshotEvery: this.config.snapshotEvery,
        maxAttempts: this.config.maxAttempts,
        clock: this.clock,
        runEffects: (id, effects) => this.runEffects(id, effects),
        wake: (id, msg) => void this.deliver(id, msg),
      },
      this.metrics,
      this.log,
    );
    const ref = spawn(this.parentFor(actorId), (_state: unknown, env: Envelope) => cell.handle(env), nactName(actorId), {
      onCrash: (_msg: unknown, err: unknown, ctx: { resume: symbol }) => {
        // ActorCell catches reducer errors itself; reaching here is a bug in the host.
        this.log.error({ err, actor: actorId }, 'actor handler failed outside the reducer');
        return ctx.resume;
      },
    } as never);
    const resident = { cell, ref };
    this.residents.set(actorId, resident);
    this.metrics.kind(kind).activations.inc();
    return resident;
  }

  private parentFor(actorId: string): NactRef {
    const group = this.deps.groupOf?.(actorId) ?? kindOf(actorId);
    let parent = this.parents.get(group);
    if (!parent) {
      parent = spawnStateless(this.system, () => undefined, nactName(group));
      this.parents.set(group, parent);
    }
    return parent;
  }

  private sweep(): void {
    const idleBefore = this.clock() - this.config.passivateAfterMs;
    for (const resident of this.residents.values()) {
      const { cell } = resident;
      if (cell.status === 'active' && cell.lastActive <= idleBefore && cell.quiescent) void this.passivate(resident);
    }
  }

  /**
   * Snapshots and stops an actor. The stop runs through the actor's own mailbox, after every
   * message already dispatched to it; messages that arrive meanwhile wait in the cell and go to
   * a new incarnation (or back to this one if the final snapshot fails).
   */
  private passivate(resident: Resident): Promise<void> {
    const { cell, ref } = resident;
    if (cell.status === 'stopping') return resident.stopping ?? Promise.resolve();
    cell.status = 'stopping';
    resident.stopping = new Promise((resolve) => {
      const control = async (): Promise<void> => {
        await this.finishPassivation(resident);
        resident.stopping = undefined;
        resolve();
      };
      dispatch(ref, { msg: undefined, deadline: 0, control });
    });
    return resident.stopping;
  }

  private async finishPassivation(resident: Resident): Promise<void> {
    const { cell, ref } = resident;
    if (cell.evicted) return; // evict() stopped it and answered its messages
    const flushed = await cell.flushForPassivation();
    if (!flushed) {
      this.log.warn({ actor: cell.id }, 'passivation postponed: final snapshot failed');
      cell.status = 'active';
      for (const env of cell.waiting.splice(0)) dispatch(ref, env);
      return;
    }
    cell.disarm();
    stop(ref);
    if (this.residents.get(cell.id) === resident) this.residents.delete(cell.id);
    this.metrics.kind(kindOf(cell.id)).passivations.inc();
    if (cell.waiting.length === 0) return;
    if (this.closing) {
      for (const env of cell.waiting.splice(0)) env.reply?.(runtimeError('stopping', 'the actor host is shutting down'));
      return;
    }
    // Messages that came in while it stopped: a new incarnation recovers and takes them.
    const next = this.activate(cell.id);
    next.cell.inflight += cell.waiting.length;
    for (const env of cell.waiting.splice(0)) dispatch(next.ref, env);
  }

  private runEffects(fromId: string, effects: readonly unknown[]): void {
    if (!this.deps.onEffects) return;
    try {
      this.deps.onEffects(fromId, effects);
    } catch (err) {
      this.log.error({ err, actor: fromId }, 'effect handler threw');
    }
  }

  private sample(): { resident: Map<string, number>; queued: number; deepest: number } {
    const resident = new Map<string, number>();
    let queued = 0;
    let deepest = 0;
    for (const [id, { cell }] of this.residents) {
      const kind = kindOf(id);
      resident.set(kind, (resident.get(kind) ?? 0) + 1);
      queued += cell.inflight;
      if (cell.inflight > deepest) deepest = cell.inflight;
    }
    return { resident, queued, deepest };
  }
}

/** The kind is the id's prefix up to the first `:` (`device:h1:d1` → `device`). */
export function kindOf(actorId: string): string {
  const i = actorId.indexOf(':');
  return i < 0 ? actorId : actorId.slice(0, i);
}

/**
 * nact accepts only `[a-z0-9-$_.+!*'(),]` in names and throws inside `spawn` otherwise; ids
 * carry `:` and arbitrary characters, so every other character (and `$`) becomes `$<hex>$`.
 */
export function nactName(id: string): string {
  return id.replace(/[^a-zA-Z0-9\-_.+!*'(),]/g, (c) => `$${c.codePointAt(0)!.toString(16)}$`);
}
