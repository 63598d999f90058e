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

export type DecisionOutcome = 'fired' | 'suspended' | 'budget_exhausted';

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
  /** Every condition with the value it saw (the local time `HH:MM` for time conditions). */
  readonly conditions: readonly ConditionResult[];
  readonly outcome: DecisionOutcome;
  /** What was done; empty unless the outcome is `fired`. */
  readonly actions: readonly DecisionAction[];
  /** Why the rule was suspended or its actions were not taken. */
  readonly reason?: string;
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

/** Up to `limit` entries, newest first. */
export function readDecisions(log: DecisionLog, limit: number): DecisionEntry[] {
  const n = Math.max(0, Math.min(Math.floor(limit), log.entries.length));
  const out: DecisionEntry[] = [];
  for (let i = log.entries.length - 1; i >= 0 && out.length < n; i--) {
    const e = log.entries[i];
    if (e !== undefined) out.push(e);
  }
  return out;
}
