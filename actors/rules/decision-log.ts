/** A home's bounded decision log: which rule fired, on what inputs, and what it did or why not. */
import type { Value } from '../types.ts';
import type { Action } from './rule-types.ts';
import type { ConditionResult, TriggerMatch } from './rule-evaluator.ts';

/** Entries kept per home by default (besides `condition_false` ones); the oldest are dropped first. */
export const DEFAULT_DECISION_LOG_SIZE = 200;

/**
 * `condition_false` entries kept per home, apart from the others: a busy sensor whose rule's
 * condition does not hold evicts only older `condition_false` entries, never a firing.
 */
export const CONDITION_FALSE_LOG_SIZE = 50;

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
 *   `parallel`/`queued` rule); `queued`: it runs when the waiting run of its `queued` rule ends;
 * - `cancelled`: a run waiting in a delay, a queued firing or a `for` hold was dropped because its
 *   rule was edited, disabled or deleted (`reason` says which).
 */
export type DecisionOutcome =
  'fired' | 'condition_false' | 'missed' | 'suspended' | 'budget_exhausted' | 'ignored' | 'queued' | 'cancelled';

/** Every outcome, for filters. */
export const DECISION_OUTCOMES: readonly DecisionOutcome[] = [
  'fired',
  'condition_false',
  'missed',
  'suspended',
  'budget_exhausted',
  'ignored',
  'queued',
  'cancelled',
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
   * Of a schedule that came due more than once while its node was down: the occurrences that did
   * not run. Of `fired`, those before the newest, which ran; of `missed`, all of them (with
   * `lateMs` that of the newest). Absent when none was skipped.
   */
  readonly skipped?: number;
  /**
   * Of a rule with delays: the run (numbered per home) and the index in `then` of the first action
   * this entry took (0 when the run starts; after a delay when it resumes).
   */
  readonly run?: { readonly no: number; readonly step: number };
}

/**
 * Plain JSON: entries oldest first (by seq), and the seq the next entry gets. At most
 * `CONDITION_FALSE_LOG_SIZE` of them are `condition_false` and at most the log's capacity are
 * others: each kind drops only its own oldest.
 */
export interface DecisionLog {
  readonly entries: readonly DecisionEntry[];
  readonly nextSeq: number;
}

export function emptyDecisionLog(): DecisionLog {
  return { entries: [], nextSeq: 1 };
}

const isConditionFalse = (e: DecisionEntry): boolean => e.outcome === 'condition_false';

/**
 * Appends an entry (assigning its seq), keeping at most `falseCapacity` `condition_false` entries
 * and `capacity` others (each at least 1), the oldest of each kind dropped first. A log loaded
 * from an older state (one capacity for all) is trimmed to these bounds by its next append.
 */
export function appendDecision(
  log: DecisionLog,
  entry: Omit<DecisionEntry, 'seq'>,
  capacity: number = DEFAULT_DECISION_LOG_SIZE,
  falseCapacity: number = CONDITION_FALSE_LOG_SIZE,
): DecisionLog {
  const added: DecisionEntry = { seq: log.nextSeq, ...entry };
  const entries = [...log.entries, added];
  let falses = 0;
  for (const e of entries) if (isConditionFalse(e)) falses++;
  let dropFalse = Math.max(0, falses - Math.max(1, falseCapacity));
  let dropOther = Math.max(0, entries.length - falses - Math.max(1, capacity));
  if (dropFalse === 0 && dropOther === 0) return { entries, nextSeq: log.nextSeq + 1 };
  // Oldest first: each kind's first `drop` entries go.
  const kept = entries.filter((e) => !(isConditionFalse(e) ? dropFalse-- > 0 : dropOther-- > 0));
  return { entries: kept, nextSeq: log.nextSeq + 1 };
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
