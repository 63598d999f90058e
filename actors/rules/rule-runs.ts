/**
 * Runs of a home's rules, from a firing whose conditions held to its last action: the rule's mode
 * (for rules with delays), storm control, the actions up to each delay, and the wait in a durable
 * reminder `run.<rule>.<n>` until the next ones. Every decision is appended to the decision log.
 *
 * A run waiting in a delay is its pending reminder and nothing else: the reminder's payload says
 * where to resume, so an edit, a deletion or a `restart` ends a run by cancelling it, and the
 * runtime never delivers a cancelled reminder. Firings a `queued` rule holds are in the state.
 */
import type { ReminderFired } from '../../runtime/behavior.ts';
import type { HomeState, QueuedFiring, RuleStatus } from '../home-messages.ts';
import type { DomainEffect } from '../types.ts';
import { ownGet } from '../validation.ts';
import { commandCost, hasDelay, issuePlan, planActions, segmentOf, type PlannedAction } from './action-plan.ts';
import { appendDecision, type DecisionEntry } from './decision-log.ts';
import { formatDuration } from './duration.ts';
import type { ReminderBook } from './reminder-book.ts';
import type { ConditionResult, TriggerMatch } from './rule-evaluator.ts';
import { DEFAULT_MISFIRE_GRACE, type Rule } from './rule-types.ts';
import { cancelRuleTimers, misfireGraceMs, parseTimerName, timerName } from './rule-timers.ts';
import { admitFiring, budgetReason, takeBudget, type StormConfig } from './storm-control.ts';

/** What runs need of the home's limits. */
export interface RunConfig {
  readonly storm: StormConfig;
  readonly decisionLogSize: number;
  /** ttlMs of rule and scene commands that set none. */
  readonly commandTtlMs: number;
  /** Firings a `queued` rule holds while its run waits; more are refused (`ignored`). */
  readonly maxQueuedRuns: number;
  /** Runs of a `parallel` rule that may wait at once; more firings are refused (`ignored`). */
  readonly maxParallelRuns: number;
}

/** What one step of the home accumulates: its clock (epoch ms), limits, effects and reminders. */
export interface RunScope {
  readonly now: number;
  readonly cfg: RunConfig;
  readonly effects: DomainEffect[];
  readonly book: ReminderBook;
}

/** A firing of `rule` whose conditions held. */
export interface Start {
  readonly rule: Rule;
  readonly trigger: TriggerMatch;
  /** Causal depth of what fired it (0 for a schedule). */
  readonly depth: number;
  readonly conditions: readonly ConditionResult[];
}

/** What a `run` reminder carries: the index in `then` to resume at, and what the decision log needs. */
interface RunPayload {
  readonly step: number;
  readonly trigger: TriggerMatch;
  readonly depth: number;
}

type Entry = Omit<DecisionEntry, 'seq'>;

/** Appends `entry` to the decision log and publishes it to the home's apps. */
export function logDecision(s: HomeState, entry: Entry, scope: RunScope): HomeState {
  const decisions = appendDecision(s.decisions, entry, scope.cfg.decisionLogSize);
  scope.effects.push({ type: 'publish', homeId: s.homeId, topic: 'decision', data: decisions.entries[decisions.entries.length - 1] });
  return { ...s, decisions };
}

const baseEntry = (start: Start, now: number): Omit<Entry, 'outcome' | 'actions'> => ({
  at: now,
  ruleId: start.rule.id,
  ruleName: start.rule.name,
  trigger: start.trigger,
  depth: start.depth,
  conditions: start.conditions,
});

/** Logs that a timer of `rule` came due more than its misfireGrace ago (`lateMs`): it does not run. */
export function logMissed(s: HomeState, start: Start, lateMs: number, scope: RunScope, run?: DecisionEntry['run']): HomeState {
  const late = Math.max(0, Math.round(lateMs));
  const reason = `missed: due ${formatDuration(late)} before it could run, more than the rule's misfireGrace of ${start.rule.misfireGrace ?? DEFAULT_MISFIRE_GRACE}`;
  return logDecision(
    s,
    { ...baseEntry(start, scope.now), outcome: 'missed', actions: [], reason, lateMs: late, ...(run ? { run } : {}) },
    scope,
  );
}

/** A triggered rule: fires when every condition held, else logs `condition_false` with what each saw. */
export function decide(s: HomeState, start: Start, scope: RunScope): HomeState {
  if (start.conditions.every((c) => c.passed)) return fireRule(s, start, scope);
  return logDecision(s, { ...baseEntry(start, scope.now), outcome: 'condition_false', actions: [] }, scope);
}

const FRESH: RuleStatus = { recentFirings: [] };
const statusOf = (s: HomeState, ruleId: string): RuleStatus => ownGet(s.ruleStatus, ruleId) ?? FRESH;

/** Run numbers of `ruleId`'s runs waiting in a delay, ascending. */
function waitingRuns(book: ReminderBook, ruleId: string): number[] {
  return book
    .namesStartingWith(`run.${ruleId}.`)
    .map((name) => parseTimerName(name)?.n ?? 0)
    .sort((a, b) => a - b);
}

const queueOf = (s: HomeState, ruleId: string): readonly QueuedFiring[] =>
  s.runQueues === undefined ? [] : (ownGet(s.runQueues, ruleId) ?? []);

/** `s` with `ruleId`'s queue replaced (the same state when nothing changes; no empty queues kept). */
function withQueue(s: HomeState, ruleId: string, queue: readonly QueuedFiring[]): HomeState {
  const queues = s.runQueues ?? {};
  if (queue.length === 0 && !Object.hasOwn(queues, ruleId)) return s;
  const { [ruleId]: _old, ...rest } = queues;
  const runQueues = queue.length === 0 ? rest : { ...rest, [ruleId]: queue };
  if (Object.keys(runQueues).length > 0) return { ...s, runQueues };
  const { runQueues: _none, ...without } = s;
  return without;
}

/** Ends every run of `ruleId`: the reminders of those waiting are cancelled, its queue emptied. */
export function dropRuns(s: HomeState, ruleId: string, book: ReminderBook): HomeState {
  cancelRuleTimers(book, ruleId, ['run']);
  return withQueue(s, ruleId, []);
}

const ignored = (s: HomeState, start: Start, reason: string, scope: RunScope): HomeState =>
  logDecision(s, { ...baseEntry(start, scope.now), outcome: 'ignored', actions: [], reason }, scope);

/**
 * A firing of `start.rule` whose conditions held. A suspended rule does nothing. A rule with
 * delays first asks its mode, given the runs waiting: `single` ignores the firing while one
 * waits; `queued` queues it (at most `maxQueuedRuns`) behind the waiting run; `parallel` starts
 * another (at most `maxParallelRuns` waiting); `restart` starts anew, cancelling those waiting.
 * A rule without delays runs at once as it always has.
 */
export function fireRule(s: HomeState, start: Start, scope: RunScope): HomeState {
  const { rule } = start;
  if (statusOf(s, rule.id).suspended !== undefined) return s;
  if (!hasDelay(rule.then)) return startRun(s, start, scope);
  const { cfg, now } = scope;
  const waiting = waitingRuns(scope.book, rule.id);
  if (rule.mode === 'single' && waiting.length > 0) {
    return ignored(s, start, `mode single: run ${waiting[0]} is still waiting in a delay`, scope);
  }
  if (rule.mode === 'parallel' && waiting.length >= cfg.maxParallelRuns) {
    return ignored(s, start, `mode parallel: ${waiting.length} runs are waiting already (at most ${cfg.maxParallelRuns})`, scope);
  }
  if (rule.mode === 'queued') {
    const queue = queueOf(s, rule.id);
    if (waiting.length > 0 || queue.length > 0) {
      if (queue.length >= cfg.maxQueuedRuns) {
        return ignored(s, start, `mode queued: ${queue.length} firings are queued already (at most ${cfg.maxQueuedRuns})`, scope);
      }
      const queued: QueuedFiring = { at: now, trigger: start.trigger, depth: start.depth, conditions: start.conditions };
      const after = [
        ...(waiting.length > 0 ? [`run ${waiting[0]}`] : []),
        ...(queue.length > 0 ? [`the ${queue.length} firing(s) queued before it`] : []),
      ];
      const reason = `mode queued: runs after ${after.join(' and ')}`;
      return logDecision(
        withQueue(s, rule.id, [...queue, queued]),
        { ...baseEntry(start, now), outcome: 'queued', actions: [], reason },
        scope,
      );
    }
  }
  return startRun(s, start, scope);
}

/** Storm control for a new run, then its actions up to the first delay. `why`: logged as the reason when it fires. */
function startRun(s: HomeState, start: Start, scope: RunScope, why?: string): HomeState {
  const { rule } = start;
  const { now, cfg, book } = scope;
  const status = statusOf(s, rule.id);
  const segment = segmentOf(rule.then, 0);
  const plan = planActions(segment.actions, s.scenes, cfg.commandTtlMs);
  const admission = admitFiring({
    suspended: status.suspended !== undefined,
    depth: start.depth,
    recentFirings: status.recentFirings,
    budget: s.budget,
    cost: commandCost(plan),
    now,
    config: cfg.storm,
  });
  if (admission.verdict === 'skip') return s;
  const base = baseEntry(start, now);
  if (admission.verdict === 'suspend') {
    const suspended = { reason: admission.reason, at: now };
    // A suspended rule's runs end too: a loop must stop, not resume after its delay.
    const next = dropRuns(
      { ...s, ruleStatus: { ...s.ruleStatus, [rule.id]: { suspended, recentFirings: admission.recentFirings } } },
      rule.id,
      book,
    );
    scope.effects.push({
      type: 'notify',
      homeId: s.homeId,
      ruleId: rule.id,
      message: `Rule "${rule.name}" was suspended (${admission.reason}). Fix it or resume it in the app.`,
    });
    return logDecision(next, { ...base, outcome: 'suspended', actions: [], reason: admission.reason }, scope);
  }
  const counted: HomeState = {
    ...s,
    budget: admission.budget,
    ruleStatus: { ...s.ruleStatus, [rule.id]: { ...status, recentFirings: admission.recentFirings } },
  };
  if (admission.verdict === 'budget_exhausted') {
    return logDecision(counted, { ...base, outcome: 'budget_exhausted', actions: [], reason: admission.reason }, scope);
  }
  if (segment.delay === undefined) {
    const [next, taken] = issue(counted, rule, start.depth, plan, scope);
    return logDecision(next, { ...base, outcome: 'fired', actions: taken, ...(why === undefined ? {} : { reason: why }) }, scope);
  }
  let reason = why;
  if (rule.mode === 'restart') {
    const cancelled = waitingRuns(book, rule.id);
    for (const no of cancelled) book.cancel(timerName('run', rule.id, no));
    if (cancelled.length > 0) reason = `mode restart: cancelled run ${cancelled.join(', ')}`;
  }
  const no = counted.nextRunNo ?? 1;
  const [issued, taken] = issue({ ...counted, nextRunNo: no + 1 }, rule, start.depth, plan, scope);
  const payload: RunPayload = { step: segment.delay.resumeAt, trigger: start.trigger, depth: start.depth };
  book.set(timerName('run', rule.id, no), now + segment.delay.ms, payload);
  const entry: Entry = { ...base, outcome: 'fired', actions: taken, run: { no, step: 0 }, ...(reason === undefined ? {} : { reason }) };
  return logDecision(issued, entry, scope);
}

/** Issues a plan's commands and notifications as the rule's. */
function issue(
  s: HomeState,
  rule: Rule,
  depth: number,
  plan: readonly PlannedAction[],
  scope: RunScope,
): [HomeState, DecisionEntry['actions']] {
  const issued = issuePlan(
    plan,
    { homeId: s.homeId, depth: depth + 1, source: { kind: 'rule', ruleId: rule.id }, idPrefix: `r-${rule.id}`, nextSeq: s.nextCommandSeq },
    rule.id,
  );
  scope.effects.push(...issued.effects);
  return [issued.nextSeq === s.nextCommandSeq ? s : { ...s, nextCommandSeq: issued.nextSeq }, issued.taken];
}

function runPayload(x: unknown): RunPayload | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const { step, trigger, depth } = x as Record<string, unknown>;
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!count(step) || !count(depth) || typeof trigger !== 'object' || trigger === null) return undefined;
  return { step, depth, trigger: trigger as TriggerMatch };
}

/**
 * Run `no` of `ruleId` comes out of its delay: later than the rule's misfireGrace it ends
 * (`missed`); otherwise the actions up to the next delay take their commands from the home's
 * budget (all or none: `budget_exhausted` ends the run) and the run waits again or ends. When a
 * run of a `queued` rule ends, the next queued firing starts.
 */
export function resumeRun(s: HomeState, fired: ReminderFired, ruleId: string, no: number, scope: RunScope): HomeState {
  const rule = ownGet(s.rules, ruleId);
  const p = runPayload(fired.payload);
  // Editing, disabling or deleting a rule cancels its runs: a run of another rule version never gets here.
  if (rule === undefined || !rule.enabled || p === undefined || p.step >= rule.then.length) return s;
  const { now, cfg, book } = scope;
  const start: Start = { rule, trigger: p.trigger, depth: p.depth, conditions: [] };
  const run = { no, step: p.step };
  if (fired.lateMs > misfireGraceMs(rule)) return runEnded(logMissed(s, start, fired.lateMs, scope, run), rule, scope);
  if (statusOf(s, rule.id).suspended !== undefined) return runEnded(s, rule, scope);
  const segment = segmentOf(rule.then, p.step);
  const plan = planActions(segment.actions, s.scenes, cfg.commandTtlMs);
  let next = s;
  if (plan.length > 0) {
    const cost = commandCost(plan);
    const base = { ...baseEntry(start, now), run };
    if (cost > 0) {
      const taken = takeBudget(s.budget, cost, now, cfg.storm);
      if (!taken.ok) {
        const reason = budgetReason(cost, taken.budget, cfg.storm);
        return runEnded(
          logDecision({ ...s, budget: taken.budget }, { ...base, outcome: 'budget_exhausted', actions: [], reason }, scope),
          rule,
          scope,
        );
      }
      next = { ...s, budget: taken.budget };
    }
    const [issued, actions] = issue(next, rule, p.depth, plan, scope);
    next = logDecision(issued, { ...base, outcome: 'fired', actions }, scope);
  }
  if (segment.delay === undefined) return runEnded(next, rule, scope);
  const payload: RunPayload = { ...p, step: segment.delay.resumeAt };
  book.set(timerName('run', rule.id, no), now + segment.delay.ms, payload);
  return next;
}

/** After a run of `rule` ended: a `queued` rule with no run waiting starts its oldest queued firing. */
function runEnded(s: HomeState, rule: Rule, scope: RunScope): HomeState {
  let next = s;
  // Each pass takes one firing off the queue; a start that is refused (budget, suspension) lets the next try.
  while (rule.mode === 'queued' && waitingRuns(scope.book, rule.id).length === 0) {
    const [first, ...rest] = queueOf(next, rule.id);
    if (first === undefined) break;
    next = withQueue(next, rule.id, rest);
    const start: Start = { rule, trigger: first.trigger, depth: first.depth, conditions: first.conditions };
    next = startRun(next, start, scope, `mode queued: queued at ${new Date(first.at).toISOString()}`);
  }
  return next;
}
