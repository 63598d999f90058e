/** Actor-host metrics, created once per registry; hot paths use pre-bound label children. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Counters for one actor kind, bound once so the hot path does no label lookups. */
export interface KindMetrics {
  readonly activations: { inc(): void };
  readonly passivations: { inc(): void };
  readonly messages: { inc(): void };
  readonly crashes: { inc(): void };
  readonly activationSeconds: { observe(v: number): void };
}

export type RejectReason = 'overloaded' | 'timeout' | 'unavailable' | 'actor_crashed' | 'stopping' | 'expired';

export class RuntimeMetrics {
  private readonly activations: Counter<'kind'>;
  private readonly passivations: Counter<'kind'>;
  private readonly crashes: Counter<'kind'>;
  private readonly rejected: Counter<'kind' | 'reason'>;
  private readonly activationSeconds: Histogram<'kind'>;
  private readonly byKind = new Map<string, KindMetrics>();
  /** Messages handled per kind since the last scrape (a prom-client `inc` per message costs ~2 % of a busy node). */
  private readonly pendingMessages = new Map<string, { n: number }>();

  /**
   * @param sample called at scrape time: resident actors per kind, messages waiting in all
   *   mailboxes, and the deepest mailbox.
   */
  constructor(registry: Registry, sample: () => { resident: Map<string, number>; queued: number; deepest: number }) {
    const registers = [registry];
    this.activations = new Counter({
      name: 'iot_actor_activations_total',
      help: 'Actors activated (recovered and started)',
      labelNames: ['kind'],
      registers,
    });
    this.passivations = new Counter({
      name: 'iot_actor_passivations_total',
      help: 'Actors passivated after idling',
      labelNames: ['kind'],
      registers,
    });
    const pending = this.pendingMessages;
    new Counter({
      name: 'iot_actor_messages_total',
      help: 'Messages handled by actors',
      labelNames: ['kind'],
      registers,
      // Counted in plain numbers on the hot path and added up at scrape time.
      collect() {
        for (const [kind, tally] of pending) {
          if (tally.n === 0) continue;
          this.labels(kind).inc(tally.n);
          tally.n = 0;
        }
      },
    });
    this.crashes = new Counter({
      name: 'iot_actor_crashes_total',
      help: 'Actor crashes (a reducer threw); each is followed by a restart from the last durable state',
      labelNames: ['kind'],
      registers,
    });
    this.rejected = new Counter({
      name: 'iot_actor_rejected_total',
      help: 'Messages not handled, by reason',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.activationSeconds = new Histogram({
      name: 'iot_actor_activation_seconds',
      help: 'Time to recover an actor from the store at activation',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    new Gauge({
      name: 'iot_actor_resident',
      help: 'Actors resident in memory',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of sample().resident) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'iot_actor_mailbox_messages',
      help: 'Messages waiting in all actor mailboxes',
      registers,
      collect() {
        this.set(sample().queued);
      },
    });
    new Gauge({
      name: 'iot_actor_mailbox_depth_max',
      help: 'Depth of the deepest actor mailbox',
      registers,
      collect() {
        this.set(sample().deepest);
      },
    });
  }

  kind(kind: string): KindMetrics {
    let m = this.byKind.get(kind);
    if (!m) {
      m = {
        activations: this.activations.labels(kind),
        passivations: this.passivations.labels(kind),
        messages: this.tally(kind),
        crashes: this.crashes.labels(kind),
        activationSeconds: this.activationSeconds.labels(kind),
      };
      this.byKind.set(kind, m);
    }
    return m;
  }

  private tally(kind: string): { inc(): void } {
    const tally = { n: 0 };
    this.pendingMessages.set(kind, tally);
    return {
      inc: () => {
        tally.n++;
      },
    };
  }

  reject(kind: string, reason: RejectReason): void {
    this.rejected.labels(kind, reason).inc();
  }
}

/**
 * The counter `name` of `registry`, created on first use: a component built more than once per
 * registry (a test, a restarted part) shares it instead of failing on a duplicate name.
 */
export function counterOf<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames, registers: [registry] });
}
