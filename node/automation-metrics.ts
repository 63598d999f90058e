/** Automation metrics: rule decisions by outcome and commands by final status, counted from the effects of durable steps. */
import { Counter, type Registry } from 'prom-client';
import { COMMAND_STATUS_TOPIC, DECISION_TOPIC } from '../actors/event-topics.ts';
import { DECISION_OUTCOMES, isDecisionOutcome, type DecisionOutcome } from '../actors/rules/decision-log.ts';
import type { CommandStatus, DomainEffect } from '../actors/types.ts';

/** A command status no later status follows. */
export type FinishedCommandStatus = Exclude<CommandStatus, 'queued' | 'sent'>;

// A record (not a list) so that a status added to CommandStatus fails to compile here until it is
// classed as finished or not.
const FINISHED: Readonly<Record<FinishedCommandStatus, true>> = { succeeded: true, failed: true, expired: true };

/** Every final command status, in the order the metric's series are created. */
export const FINISHED_COMMAND_STATUSES = Object.keys(FINISHED) as readonly FinishedCommandStatus[];

const isFinished = (status: unknown): status is FinishedCommandStatus => typeof status === 'string' && Object.hasOwn(FINISHED, status);

/** Whether a decision's `run` says it was logged by a run resuming after a delay (a later step), not by its start. */
function resumesRun(run: unknown): boolean {
  const step = typeof run === 'object' && run !== null ? (run as { readonly step?: unknown }).step : undefined;
  return typeof step === 'number' && step > 0;
}

const zeroed = (child: { inc(n?: number): void }): { inc(): void } => {
  child.inc(0);
  return child;
};

/**
 * Counted in the node's effect dispatcher, which runs a step's effects once, after the step is
 * durable: a replayed step (recovery, takeover) has its effects discarded and a step whose window
 * failed has them dropped, so neither counts. The actors stay free of metrics.
 */
export class AutomationMetrics {
  private readonly ruleRuns = new Map<DecisionOutcome, { inc(): void }>();
  private readonly commandsFinished = new Map<FinishedCommandStatus, { inc(): void }>();

  private constructor(registry: Registry) {
    const registers = [registry];
    const runs = new Counter({
      name: 'iot_rule_runs_total',
      help:
        'Rule decisions by outcome (the decision log: fired, condition_false, suspended, budget_exhausted, missed, ignored, queued, cancelled), ' +
        'counted when logged, except the entries a run logs when it resumes after a delay (its later actions, or its end as ' +
        'budget_exhausted, missed or cancelled): a run with delays counts once, when it starts. A queued firing counts as queued, then ' +
        'as what it became (fired, missed or cancelled). A rule whose condition stays false with the same verdicts is counted once a minute',
      labelNames: ['outcome'],
      registers,
    });
    const finished = new Counter({
      name: 'iot_commands_finished_total',
      help: 'Device commands that reached a final status: succeeded, failed (the hub reported an error), expired (TTL passed before a result)',
      labelNames: ['status'],
      registers,
    });
    // Every series exists (at 0) before the first event, so rate() and dashboards see them from the
    // start: prom-client creates a series on its first inc, not on labels().
    for (const outcome of DECISION_OUTCOMES) this.ruleRuns.set(outcome, zeroed(runs.labels(outcome)));
    for (const status of FINISHED_COMMAND_STATUSES) this.commandsFinished.set(status, zeroed(finished.labels(status)));
  }

  private static readonly byRegistry = new WeakMap<Registry, AutomationMetrics>();

  /** The metrics of `registry`, created on first use: prom-client refuses a name registered twice. */
  static of(registry: Registry): AutomationMetrics {
    let m = AutomationMetrics.byRegistry.get(registry);
    if (!m) {
      m = new AutomationMetrics(registry);
      AutomationMetrics.byRegistry.set(registry, m);
    }
    return m;
  }

  /**
   * Counts what a `publish` effect of a durable step says: a decision logged, or a command that
   * reached a final status (`queued` and `sent` are not counted; a terminal command is never
   * published again, so each command counts once). Anything else is ignored.
   *
   * Not counted: a decision a run logs when it resumes after a delay (`run.step` > 0, see
   * DecisionEntry.run), whatever its outcome. The run was counted when it started, and counting
   * its steps would make a rule with two delays count three firings.
   */
  observe(effect: Extract<DomainEffect, { type: 'publish' }>): void {
    const data = effect.data as { readonly outcome?: unknown; readonly status?: unknown; readonly run?: unknown } | null | undefined;
    if (effect.topic === DECISION_TOPIC) {
      const outcome = data?.outcome;
      if (isDecisionOutcome(outcome) && !resumesRun(data?.run)) this.ruleRuns.get(outcome)!.inc();
    } else if (effect.topic === COMMAND_STATUS_TOPIC) {
      const status = data?.status;
      if (isFinished(status)) this.commandsFinished.get(status)!.inc();
    }
  }
}
