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
import { DECISION_TOPIC } from '../event-topics.ts';
import type { HomeState, QueuedFiring, RuleStatus } from '../home-messages.ts';
import type { DomainEffect } from '../types.ts';
import { ownGet } from '../validation.ts';
import { commandCost, hasDelay, issuePlan, planActions, segmentOf, type PlannedAction } from './action-plan.ts';
import { appendDecision, type DecisionEntry } from './decision-log.ts';
import { formatDuration } from './duration.ts';
import type { ReminderBook } from './reminder-book.ts';
import type { ConditionResult, TriggerMatch } from './rule-evaluator.ts';
import { DEFAULT_MISFIRE_GRACE, type Rule } from './rule-types.ts';
import {
  cancelRuleTimers,
  heldMatch,
  heldPayload,
  isHeldTrigger,
  isScheduleTrigger,
  misfireGraceMs,
  parseTimerName,
  sameJson,
  timerName,
} from './rule-timers.ts';
import { nextFireTime, type ScheduleWhere } from './schedule.ts';
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
  /** Of a schedule that came due more than once while its node was down: the occurrences before this one, which did not run. */
  readonly skipped?: number;
}

/** What a `run` reminder carries: the index in `then` to resume at, and what the decision log needs. */
interface RunPayload {
  readonly step: number;
  readonly trigger: TriggerMatch;
  readonly depth: number;
}

type Entry = Omit<DecisionEntry, 'seq'>;

/** The status of a rule never fired nor suspended, as a put or resume leaves it. */
export const FRESH_STATUS: RuleStatus = { recentFirings: [] };
const statusOf = (s: HomeState, ruleId: string): RuleStatus => ownGet(s.ruleStatus, ruleId) ?? FRESH_STATUS;

/** Whether storm control has suspended the rule `ruleId` (until it is resumed or saved again). */
export const isSuspended = (s: HomeState, ruleId: string): boolean => statusOf(s, ruleId).suspended !== undefined;

/**
 * Appends `entry` to the decision log and publishes it to the home's apps. A decision other than
 * `condition_false` ends the rule's run of identical `condition_false` ones (see `decide`).
 */
export function logDecision(s: HomeState, entry: Entry, scope: RunScope): HomeState {
  const decisions = appendDecision(s.decisions, entry, scope.cfg.decisionLogSize);
  scope.effects.push({ type: 'publish', homeId: s.homeId, topic: DECISION_TOPIC, data: decisions.entries[decisions.entries.length - 1] });
  const status = ownGet(s.ruleStatus, entry.ruleId);
  if (entry.outcome === 'condition_false' || status?.conditionFalse === undefined) return { ...s, decisions };
  const { conditionFalse: _ended, ...rest } = status;
  return { ...s, decisions, ruleStatus: { ...s.ruleStatus, [entry.ruleId]: rest } };
}

const baseEntry = (start: Start, now: number): Omit<Entry, 'outcome' | 'actions'> => ({
  at: now,
  ruleId: start.rule.id,
  ruleName: start.rule.name,
  trigger: start.trigger,
  depth: start.depth,
  conditions: start.conditions,
  ...(start.skipped === undefined || start.skipped === 0 ? {} : { skipped: start.skipped }),
});

/** The rule's misfireGrace as written, or the default. */
export const graceOf = (rule: Rule): string => rule.misfireGrace ?? DEFAULT_MISFIRE_GRACE;

/**
 * Logs that a timer of `rule` came due more than its misfireGrace ago (`lateMs`): it does not run.
 * `reason` replaces the default one (due so long before it could run).
 */
export function logMissed(
  s: HomeState,
  start: Start,
  lateMs: number,
  scope: RunScope,
  extra: { readonly run?: DecisionEntry['run']; readonly reason?: string } = {},
): HomeState {
  const late = Math.max(0, Math.round(lateMs));
  const reason =
    extra.reason ?? `missed: due ${formatDuration(late)} before it could run, more than the rule's misfireGrace of ${graceOf(start.rule)}`;
  const run = extra.run === undefined ? {} : { run: extra.run };
  return logDecision(s, { ...baseEntry(start, scope.now), outcome: 'missed', actions: [], reason, lateMs: late, ...run }, scope);
}

/** A rule's condition verdicts in one string, nested groups in brackets (`1(01)0`): what `decide` compares. */
export function verdictKey(results: readonly ConditionResult[]): string {
  let key = '';
  for (const r of results) key += (r.passed ? '1' : '0') + (r.results === undefined ? '' : `(${verdictKey(r.results)})`);
  return key;
}

/** How long (ms) the same `condition_false` verdicts of a rule are not logged again. */
export const CONDITION_FALSE_REPEAT_MS = 60_000;

/**
 * A triggered rule: fires when every condition held, else logs `condition_false` with what each
 * saw. Not when the rule's last decision was `condition_false` with the same verdicts less than
 * `CONDITION_FALSE_REPEAT_MS` ago: then nothing changes (the step writes and publishes nothing),
 * so a busy sensor triggering a rule whose condition does not hold costs no journal write.
 */
export function decide(s: HomeState, start: Start, scope: RunScope): HomeState {
  if (start.conditions.every((c) => c.passed)) return fireRule(s, start, scope);
  const { rule } = start;
  const verdicts = verdictKey(start.conditions);
  const status = statusOf(s, rule.id);
  const last = status.conditionFalse;
  if (last !== undefined && last.verdicts === verdicts && scope.now - last.at < CONDITION_FALSE_REPEAT_MS) return s;
  const marked: HomeState = {
    ...s,
    ruleStatus: { ...s.ruleStatus, [rule.id]: { ...status, conditionFalse: { at: scope.now, verdicts } } },
  };
  return logDecision(marked, { ...baseEntry(start, scope.now), outcome: 'condition_false', actions: [] }, scope);
}

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

/** Why an edit ends a rule's timers and runs: `after` is its new version (undefined: deleted). */
const endedBy = (after: Rule | undefined): string =>
  after === undefined ? 'rule deleted' : after.enabled ? 'rule edited' : 'rule disabled';

/** Logs `cancelled` for what `before` (the rule's stored version) had going. */
function logCancelled(
  s: HomeState,
  before: Rule,
  what: Pick<Entry, 'trigger' | 'depth' | 'conditions' | 'reason' | 'run'>,
  scope: RunScope,
): HomeState {
  return logDecision(s, { at: scope.now, ruleId: before.id, ruleName: before.name, ...what, outcome: 'cancelled', actions: [] }, scope);
}

/** Ends the runs of `ruleId` waiting in a delay and its queued firings, each logged `cancelled` (`why`). */
function cancelRuns(s: HomeState, ruleId: string, before: Rule | undefined, why: string, scope: RunScope): HomeState {
  let next = s;
  for (const name of scope.book.namesStartingWith(`run.${ruleId}.`)) {
    const no = parseTimerName(name)?.n;
    const p = runPayload(scope.book.get(name)?.payload);
    scope.book.cancel(name);
    if (before === undefined || no === undefined || p === undefined) continue;
    const reason = `${why}: run ${no}, waiting in a delay to resume at then[${p.step}], is cancelled`;
    next = logCancelled(next, before, { trigger: p.trigger, depth: p.depth, conditions: [], run: { no, step: p.step }, reason }, scope);
  }
  if (before !== undefined) {
    for (const q of queueOf(next, ruleId)) {
      const reason = `${why}: the firing queued at ${new Date(q.at).toISOString()} is dropped`;
      next = logCancelled(next, before, { trigger: q.trigger, depth: q.depth, conditions: q.conditions, reason }, scope);
    }
  }
  return withQueue(next, ruleId, []);
}

/**
 * The timers and runs of a rule once `after` replaces `before` (its stored version, undefined for
 * a new rule; `after` undefined: deleted). While the rule stays enabled, what the edit leaves as
 * it was goes on: a `for` hold or a schedule whose trigger (same index) is unchanged keeps its
 * time, and the runs waiting in a delay and queued firings go on when `then` and `mode` are
 * unchanged. The rest ends, and each hold, waiting run and queued firing that ends is logged
 * `cancelled` (reason: rule edited, disabled or deleted). Each schedule of an enabled `after`
 * without a pending time gets its first time after now.
 */
export function ruleReplaced(
  s: HomeState,
  ruleId: string,
  before: Rule | undefined,
  after: Rule | undefined,
  where: ScheduleWhere,
  scope: RunScope,
): HomeState {
  const { book, now } = scope;
  const live = after?.enabled === true ? after : undefined;
  const why = endedBy(after);
  const unchanged = (name: string): boolean => {
    const i = parseTimerName(name)?.n;
    return live !== undefined && before !== undefined && i !== undefined && sameJson(before.when[i], live.when[i]);
  };
  let next = s;
  for (const name of book.namesStartingWith(`for.${ruleId}.`)) {
    if (unchanged(name)) continue;
    const i = parseTimerName(name)?.n ?? -1;
    const t = before?.when[i];
    const held = heldPayload(book.get(name)?.payload);
    book.cancel(name);
    if (before === undefined || held === undefined || t === undefined || !isHeldTrigger(t)) continue;
    const trigger = heldMatch(t, held.value);
    const reason = `${why}: the hold of when[${i}] (${t.attribute} of ${t.device} for ${t.for}) is cancelled`;
    next = logCancelled(next, before, { trigger, depth: held.depth, conditions: [], reason }, scope);
  }
  for (const name of book.namesStartingWith(`at.${ruleId}.`)) if (!unchanged(name)) book.cancel(name);
  live?.when.forEach((t, i) => {
    const name = timerName('at', ruleId, i);
    if (!isScheduleTrigger(t) || book.get(name) !== undefined) return;
    const at = nextFireTime(t, now, where);
    if (at !== undefined) book.set(name, at);
  });
  const runsGoOn = live !== undefined && before !== undefined && before.mode === live.mode && sameJson(before.then, live.then);
  return runsGoOn ? next : cancelRuns(next, ruleId, before, why, scope);
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
  if (isSuspended(s, rule.id)) return s;
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
  const ended = (after: HomeState): HomeState => runEnded(after, rule, fired.dueAt, scope);
  if (fired.lateMs > misfireGraceMs(rule)) return ended(logMissed(s, start, fired.lateMs, scope, { run }));
  if (isSuspended(s, rule.id)) return ended(s);
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
        return ended(logDecision({ ...s, budget: taken.budget }, { ...base, outcome: 'budget_exhausted', actions: [], reason }, scope));
      }
      next = { ...s, budget: taken.budget };
    }
    const [issued, actions] = issue(next, rule, p.depth, plan, scope);
    next = logDecision(issued, { ...base, outcome: 'fired', actions }, scope);
  }
  if (segment.delay === undefined) return ended(next);
  const payload: RunPayload = { ...p, step: segment.delay.resumeAt };
  book.set(timerName('run', rule.id, no), now + segment.delay.ms, payload);
  return next;
}

/**
 * After a run of `rule` ended, due to end at `endedAt` (epoch ms: the due time of the reminder
 * that ended it): a `queued` rule with no run waiting starts its oldest queued firing. A firing
 * that starts later than the rule's misfireGrace after it could have (the run's end, or when it
 * was queued if later: the node was down meanwhile) does not start: it is logged `missed`, and
 * the next one is tried. A queue that waits its turn on time is never late, however long it is.
 */
function runEnded(s: HomeState, rule: Rule, endedAt: number, scope: RunScope): HomeState {
  let next = s;
  const grace = misfireGraceMs(rule);
  // Each pass takes one firing off the queue; a start that is refused (late, budget, suspension) lets the next try.
  while (rule.mode === 'queued' && waitingRuns(scope.book, rule.id).length === 0) {
    const [first, ...rest] = queueOf(next, rule.id);
    if (first === undefined) break;
    next = withQueue(next, rule.id, rest);
    const queuedAt = new Date(first.at).toISOString();
    const start: Start = { rule, trigger: first.trigger, depth: first.depth, conditions: first.conditions };
    const late = scope.now - Math.max(endedAt, first.at);
    if (late > grace) {
      const reason = `missed: queued at ${queuedAt}, its turn came ${formatDuration(Math.round(late))} before it could start, more than the rule's misfireGrace of ${graceOf(rule)}`;
      next = logMissed(next, start, late, scope, { reason });
      continue;
    }
    next = startRun(next, start, scope, `mode queued: queued at ${queuedAt}`);
  }
  return next;
}
