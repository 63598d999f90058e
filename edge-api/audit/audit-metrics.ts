/** The audit log's counters, shared by the Redis log (its appends) and the HTTP middleware (refusals beyond a token's budget). */
import { Counter, type Registry } from 'prom-client';

/**
 * Appends by result: `ok` landed in every stream it goes to, `failed` did not (Redis down or
 * slow), `dropped` never sent (too many in flight), `over_budget` a refused request's entry not
 * appended because its token had used up its budget of refused entries.
 */
export class AuditMetrics {
  readonly appends: Counter<'result'>;

  private constructor(registry: Registry) {
    this.appends = new Counter({
      name: 'iot_audit_appends_total',
      help: 'Audit log appends by result: ok, failed (Redis refused or timed out), dropped (too many appends in flight), over_budget (refused requests beyond the token budget)',
      labelNames: ['result'],
      registers: [registry],
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, AuditMetrics>();

  /** The metrics of `registry`, created on first use: prom-client refuses a name registered twice. */
  static of(registry: Registry): AuditMetrics {
    let m = AuditMetrics.byRegistry.get(registry);
    if (!m) {
      m = new AuditMetrics(registry);
      AuditMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}
