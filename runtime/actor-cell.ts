/** One resident actor: its state, journal position and write queue, and how it handles a message. */
import type { Behavior } from './behavior.ts';
import { JournalWriter } from './journal-writer.ts';
import type { Logger } from './logger.ts';
import type { KindMetrics, RuntimeMetrics } from './metrics.ts';
import type { PersistencePort } from './persistence-port.ts';
import { ok, runtimeError, type Result } from './result.ts';

/** A message on its way to an actor, with the caller's reply callback and deadline. */
export interface Envelope {
  readonly msg: unknown;
  /** Called exactly once for an `ask`; absent for a `tell`. */
  readonly reply?: (result: Result<unknown>) => void;
  /** Epoch ms after which the caller has given up (0 = never): the message is skipped. */
  readonly deadline: number;
  /** Host work that must run in mailbox order (passivation); not counted in `inflight`. */
  readonly control?: () => Promise<void>;
}

/** `active` handles messages; `stopping` is passivating and diverts new messages to `waiting`. */
export type CellStatus = 'active' | 'stopping';

export interface CellOptions {
  readonly snapshotEvery: number;
  readonly maxAttempts: number;
  readonly clock: () => number;
  readonly runEffects: (actorId: string, effects: readonly unknown[]) => void;
  /** Delivers the behaviour's wake message to the actor (through the host, not the bound). */
  readonly wake: (actorId: string, msg: unknown) => void;
}

export class ActorCell {
  status: CellStatus = 'active';
  /** Messages sent and not yet taken up by the handler (the mailbox depth). */
  inflight = 0;
  lastActive: number;
  /** Messages that arrived while passivating; they go to the next incarnation. */
  waiting: Envelope[] = [];
  /** Set when the host evicts the actor (its shard was lost): what is left is answered `unavailable`. */
  evicted = false;
  private state: unknown;
  private seq = 0;
  private snapshotSeq = 0;
  private sinceSnapshot = 0;
  /** Set at birth and after a failed write: the state must be reloaded before the next message. */
  private needsRecovery = true;
  private readonly writer: JournalWriter;
  private readonly km: KindMetrics;
  /** Epoch ms of the armed wake-up, if any. */
  private wakeAt: number | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    private readonly behavior: Behavior<unknown, unknown>,
    private readonly store: PersistencePort,
    private readonly opts: CellOptions,
    private readonly metrics: RuntimeMetrics,
    private readonly log: Logger,
  ) {
    this.lastActive = opts.clock();
    this.km = metrics.kind(behavior.kind);
    this.writer = new JournalWriter(id, store, (err) => {
      this.needsRecovery = true;
      this.log.error({ err, actor: id }, 'journal write failed; actor will recover before its next message');
    });
  }

  /** True when passivating loses nothing: no message pending, every step written, no wake-up due. */
  get quiescent(): boolean {
    return this.inflight === 0 && this.waiting.length === 0 && this.writer.idle && this.wakeAt === undefined;
  }

  /** Disarms the wake-up timer (the actor stops). */
  disarm(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = undefined;
  }

  /** Handles one envelope; runs inside the actor's nact mailbox, one at a time. */
  async handle(env: Envelope): Promise<void> {
    if (env.control) return env.control();
    this.inflight--;
    if (this.evicted) {
      env.reply?.(runtimeError('unavailable', `actor ${this.id} is no longer served by this node`));
      return;
    }
    const now = this.opts.clock();
    if (env.deadline !== 0 && now > env.deadline) {
      this.metrics.reject(this.behavior.kind, 'expired');
      return;
    }
    this.km.messages.inc();
    if (this.needsRecovery && !(await this.tryRecover(env))) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const step = this.behavior.receive(this.state, env.msg, { id: this.id, now, replaying: false });
        this.commit(step, env, now);
        return;
      } catch (err) {
        this.km.crashes.inc();
        this.log.error({ err, actor: this.id, attempt }, 'actor crashed; restarting from its last durable state');
        if (!(await this.tryRecover(env))) return;
        if (attempt >= this.opts.maxAttempts) {
          this.metrics.reject(this.behavior.kind, 'actor_crashed');
          env.reply?.(runtimeError('actor_crashed', `message crashed actor ${this.id} ${attempt} times and was rejected`));
          return;
        }
      }
    }
  }

  /**
   * Writes a final snapshot if anything changed since the last one. Resolves true when the
   * actor may stop: everything it acknowledged is in the store.
   */
  async flushForPassivation(): Promise<boolean> {
    await this.writer.drained();
    if (this.needsRecovery) return true; // nothing in memory that the store lacks
    if (this.seq === this.snapshotSeq) return true;
    const snapshot = { seq: this.seq, state: this.state };
    return new Promise((resolve) => {
      this.writer.push({
        snapshot,
        done: () => {
          this.snapshotSeq = snapshot.seq;
          this.sinceSnapshot = 0;
          resolve(true);
        },
        fail: () => resolve(false),
      });
    });
  }

  private commit(
    step: { state: unknown; reply?: unknown; effects?: readonly unknown[]; journal?: boolean },
    env: Envelope,
    now: number,
  ): void {
    this.state = step.state;
    this.arm();
    let entry;
    let snapshot;
    if (step.journal) {
      this.seq++;
      this.sinceSnapshot++;
      entry = { seq: this.seq, at: now, msg: env.msg };
      if (this.sinceSnapshot >= this.opts.snapshotEvery) {
        snapshot = { seq: this.seq, state: this.state };
        this.sinceSnapshot = 0;
        this.snapshotSeq = this.seq;
      }
    }
    const { reply } = env;
    const effects = step.effects;
    this.writer.push({
      entry,
      snapshot,
      done: () => {
        if (effects && effects.length > 0) this.opts.runEffects(this.id, effects);
        reply?.(ok(step.reply));
      },
      fail: (error) => {
        this.metrics.reject(this.behavior.kind, 'unavailable');
        reply?.(runtimeError('unavailable', `store write failed: ${error.message}`));
      },
    });
  }

  /** Restarts the actor from the store; on failure answers `env` with `unavailable`. */
  private async tryRecover(env: Envelope): Promise<boolean> {
    try {
      await this.recover();
      return true;
    } catch (err) {
      this.needsRecovery = true;
      this.log.error({ err, actor: this.id }, 'actor recovery failed');
      this.metrics.reject(this.behavior.kind, 'unavailable');
      env.reply?.(runtimeError('unavailable', `could not recover actor ${this.id}: ${(err as Error).message}`));
      return false;
    }
  }

  /** State = latest snapshot + the journal after it, replayed through the reducer. */
  private async recover(): Promise<void> {
    await this.writer.drained();
    const started = performance.now();
    const recovered = await this.store.recover(this.id);
    let state = recovered.snapshot ? recovered.snapshot.state : this.behavior.initial(this.id);
    let seq = recovered.snapshot?.seq ?? 0;
    for (const e of recovered.events) {
      state = this.behavior.receive(state, e.msg, { id: this.id, now: e.at, replaying: true }).state;
      seq = e.seq;
    }
    this.state = state;
    this.seq = seq;
    this.snapshotSeq = recovered.snapshot?.seq ?? 0;
    this.sinceSnapshot = recovered.events.length;
    this.needsRecovery = false;
    this.km.activationSeconds.observe((performance.now() - started) / 1000);
    this.arm();
  }

  /** (Re)arms the wake-up timer from the state; one timer per actor, replaced only on change. */
  private arm(): void {
    const at = this.behavior.nextWakeAt?.(this.state);
    if (at === this.wakeAt) return;
    this.disarm();
    if (at === undefined) return;
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAt = undefined;
        this.opts.wake(this.id, this.behavior.wakeMessage);
      },
      Math.max(0, Math.min(at - this.opts.clock(), 2_147_483_647)),
    );
    this.wakeTimer.unref();
  }
}
