/** Metrics of the rate limits shared through Redis: grants asked for, and decisions taken locally while Redis does not answer. */
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * `result` of a grant request: tokens granted, the bucket empty, answered after the grant timeout
 * (`late`: its tokens are kept), or failed (an error: Redis unreachable, or no answer at all).
 */
export type GrantResult = 'granted' | 'empty' | 'late' | 'failed';

export class RateLimitMetrics {
  /** Grant requests to the cluster's buckets, by limit kind and result (GrantResult). */
  readonly grants: Counter<'kind' | 'result'>;
  /** Requests decided by this node's own bucket because Redis did not answer. */
  readonly fallback: Counter<'kind'>;
  /** 1 while this node decides with its own buckets (Redis unreachable or slow), else 0. */
  readonly fallbackActive: Gauge;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.grants = new Counter({
      name: 'iot_http_rate_limit_grants_total',
      help: "Requests for tokens from the cluster's shared rate-limit buckets in Redis, by kind (token, home) and result (granted, empty, late: answered after the grant timeout, failed: an error)",
      labelNames: ['kind', 'result'],
      registers,
    });
    this.fallback = new Counter({
      name: 'iot_http_rate_limit_fallback_total',
      help: 'HTTP requests whose rate limit this node decided with its own bucket because Redis did not answer (the limit then holds per node, not cluster-wide), by kind',
      labelNames: ['kind'],
      registers,
    });
    this.fallbackActive = new Gauge({
      name: 'iot_http_rate_limit_fallback_active',
      help: "1 while this node's rate limits fall back to its own buckets (Redis unreachable or slow), else 0",
      registers,
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, RateLimitMetrics>();

  /** The metrics of `registry`, created on first use: prom-client refuses a name registered twice. */
  static of(registry: Registry): RateLimitMetrics {
    let m = RateLimitMetrics.byRegistry.get(registry);
    if (!m) {
      m = new RateLimitMetrics(registry);
      RateLimitMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}
