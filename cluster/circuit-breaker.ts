/** A circuit breaker per peer: fails fast after consecutive failures, lets one probe through after a cool-down. */

/** closed: everything goes; open: everything fails fast; half-open: one attempt decides. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerConfig {
  /** Consecutive failures (a stream that ended with an error, an ask past its deadline) that open the breaker. */
  readonly failureThreshold: number;
  /** Milliseconds the breaker stays open before it lets one attempt through. */
  readonly openMs: number;
}

export const DEFAULT_BREAKER: BreakerConfig = { failureThreshold: 5, openMs: 2_000 };

/** A state change, for metrics and logs; `failures` is the count of consecutive failures at the change. */
export interface BreakerTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly failures: number;
}

/**
 * The state machine only: callers report outcomes with `succeeded` / `failed` and ask `admit`
 * before each attempt. Time comes from the injected clock (epoch ms), so tests need no sleeps.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openUntil = 0;
  /** Half-open: the one attempt is under way. */
  private probing = false;

  constructor(
    private readonly config: BreakerConfig = DEFAULT_BREAKER,
    private readonly clock: () => number = Date.now,
    private readonly onChange: (t: BreakerTransition) => void = () => {},
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  get failures(): number {
    return this.consecutiveFailures;
  }

  /**
   * Whether an attempt may go now. Open past its cool-down turns half-open; half-open admits one
   * probe at a time. `free`: an attempt that proves nothing either way (a one-way message on a
   * stream the peer accepted) goes through half-open without being the probe.
   */
  admit(free = false): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open') {
      if (this.clock() < this.openUntil) return false;
      this.set('half-open');
    }
    if (free) return true;
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.consecutiveFailures = 0;
    if (this.current !== 'closed') this.set('closed');
  }

  failed(): void {
    this.consecutiveFailures++;
    if (this.current === 'half-open' || (this.current === 'closed' && this.consecutiveFailures >= this.config.failureThreshold)) {
      this.openUntil = this.clock() + this.config.openMs;
      this.set('open');
    }
  }

  private set(next: BreakerState): void {
    const from = this.current;
    this.current = next;
    this.probing = false;
    this.onChange({ from, to: next, failures: this.consecutiveFailures });
  }
}
