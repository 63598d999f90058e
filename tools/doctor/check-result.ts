/** What one doctor check found: a level, a finding and what to do about it. */

/** `ok`: nothing to do; `warn`: works, but at a risk the line names; `fail`: broken now. Ordered by severity. */
export type CheckLevel = 'ok' | 'warn' | 'fail';

/**
 * The stable check names, in the order they print. Scripts and alerts match on them: rename one
 * only with a note in the README.
 */
export const CHECK_NAMES = [
  'configuration',
  'redis',
  'persistence',
  'eviction',
  'clock',
  'heartbeats',
  'ring',
  'leases',
  'handoffs',
  'node',
  'ports',
] as const;

export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  readonly check: CheckName;
  readonly level: CheckLevel;
  /** What was seen, e.g. `Redis 7.2.4 at redis://127.0.0.1:6379`. */
  readonly finding: string;
  /** What to do about it; absent when there is nothing to do. */
  readonly action?: string;
}

const SEVERITY: Record<CheckLevel, number> = { ok: 0, warn: 1, fail: 2 };

/** The worse of two levels. */
export const worst = (a: CheckLevel, b: CheckLevel): CheckLevel => (SEVERITY[a] >= SEVERITY[b] ? a : b);

export const ok = (check: CheckName, finding: string, action?: string): CheckResult => ({
  check,
  level: 'ok',
  finding,
  ...(action === undefined ? {} : { action }),
});
export const warn = (check: CheckName, finding: string, action: string): CheckResult => ({ check, level: 'warn', finding, action });
export const fail = (check: CheckName, finding: string, action: string): CheckResult => ({ check, level: 'fail', finding, action });

/** The process exit code for these results: 1 when any failed, 0 otherwise (warnings included). */
export const exitCodeOf = (results: readonly CheckResult[]): 0 | 1 => (results.some((r) => r.level === 'fail') ? 1 : 0);

/** `a, b, c and 4 more`: a few examples of a long list, so one line stays readable. */
export function someOf(items: readonly string[], shown = 3): string {
  if (items.length <= shown) return items.join(', ');
  return `${items.slice(0, shown).join(', ')} and ${items.length - shown} more`;
}

/** An Error's message, or the thrown value as text. */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
