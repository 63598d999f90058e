/** A home's bounded decision log: which rule fired, on what inputs, and what it did or why not. */
import type { Value } from '../types.ts';
import type { Action } from './rule-types.ts';
import type { ConditionResult, TriggerMatch } from './rule-evaluator.ts';

/** Entries kept per home by default; the oldest are dropped first. */
export const DEFAULT_DECISION_LOG_SIZE = 200;

/** What a firing did, one item per effect taken. */
export type DecisionAction =
  | {
      readonly type: 'command';
      readonly device: string;
      readonly name: string;
      readonly params: Readonly<Record<string, Value>>;
      readonly commandId: string;
      /** ttlMs: milliseconds until the command expires. */
      readonly ttlMs: number;
      /** The scene this command came from, if any. */
      readonly scene?: string;
    }
  | { readonly type: 'notify'; readonly message: string }
  /** An action that could not be run, e.g. a scene deleted after the rule was written. */
  | { readonly type: 'skipped'; readonly action: Action; readonly reason: string };

/**
 * What became of a triggered rule:
 * - `fired`: its actions (up to its first delay, or after one) were taken;
 * - `condition_false`: a condition did not hold (each condition is logged with the value it saw);
 * - `missed`: its timer came due more than the rule's misfireGrace before it could run (`lateMs`);
 * - `suspended`: storm control suspended the rule; `budget_exhausted`: the home's command budget
 *   could not pay for the commands;
 * - `ignored`: its mode refused the firing while earlier runs wait in a delay (`single`, or a full
 *   `parallel`/`queued` rule); `queued`: it runs when the waiting run of its `queued` rule ends.
 */
export type DecisionOutcome = 'fired' | 'condition_false' | 'missed' | 'suspended' | 'budget_exhausted' | 'ignored' | 'queued';

/** Every outcome, for filters. */
export const DECISION_OUTCOMES: readonly DecisionOutcome[] = [
  'fired',
  'condition_false',
  'missed',
  'suspended',
  'budget_exhausted',
  'ignored',
  'queued',
];

/** One decision, as served by `GET /v1/homes/{homeId}/decisions`. */
export interface DecisionEntry {
  /** Increases by one per entry in a home, never reused (survives trimming). */
  readonly seq: number;
  /** Epoch ms of the decision. */
  readonly at: number;
  readonly ruleId: string;
  readonly ruleName: string;
  readonly trigger: TriggerMatch;
  /** Causal depth of the change that triggered the rule (0: a spontaneous report). */
  readonly depth: number;
  /** Every condition with the value it saw (the local time `HH:MM` for time conditions; and/or/not with their members' in `results`). */
  readonly conditions: readonly ConditionResult[];
  readonly outcome: DecisionOutcome;
  /** What was done; empty unless the outcome is `fired`. */
  readonly actions: readonly DecisionAction[];
  /** Why the rule was suspended or its actions were not taken. */
  readonly reason?: string;
  /** Of a `missed` timer: how late (ms) it came due, beyond the rule's misfireGrace. */
  readonly lateMs?: number;
  /**
   * Of a rule with delays: the run (numbered per home) and the index in `then` of the first action
   * this entry took (0 when the run starts; after a delay when it resumes).
   */
  readonly run?: { readonly no: number; readonly step: number };
}

/** Plain JSON: entries oldest first, and the seq the next entry gets. */
export interface DecisionLog {
  readonly entries: readonly DecisionEntry[];
  readonly nextSeq: number;
}

export function emptyDecisionLog(): DecisionLog {
  return { entries: [], nextSeq: 1 };
}

/** Appends an entry (assigning its seq), keeping at most `capacity` (>= 1) entries. */
export function appendDecision(
  log: DecisionLog,
  entry: Omit<DecisionEntry, 'seq'>,
  capacity: number = DEFAULT_DECISION_LOG_SIZE,
): DecisionLog {
  const added: DecisionEntry = { seq: log.nextSeq, ...entry };
  const keep = Math.max(0, capacity - 1);
  const older = log.entries.length > keep ? log.entries.slice(log.entries.length - keep) : log.entries;
  return { entries: [...older, added], nextSeq: log.nextSeq + 1 };
}

/** Which entries a read returns: those of one rule and/or of one outcome (absent: any). */
export interface DecisionFilter {
  readonly ruleId?: string;
  readonly outcome?: DecisionOutcome;
}

/** Up to `limit` entries that pass `filter`, newest first. */
export function readDecisions(log: DecisionLog, limit: number, filter: DecisionFilter = {}): DecisionEntry[] {
  const n = Math.max(0, Math.floor(limit));
  const out: DecisionEntry[] = [];
  for (let i = log.entries.length - 1; i >= 0 && out.length < n; i--) {
    const e = log.entries[i];
    if (e === undefined) continue;
    if (filter.ruleId !== undefined && e.ruleId !== filter.ruleId) continue;
    if (filter.outcome !== undefined && e.outcome !== filter.outcome) continue;
    out.push(e);
  }
  return out;
}

/** Whether `x` names an outcome. */
export const isDecisionOutcome = (x: unknown): x is DecisionOutcome =>
  typeof x === 'string' && (DECISION_OUTCOMES as readonly string[]).includes(x);
