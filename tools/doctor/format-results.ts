/** How doctor prints its results: one aligned line per check for people, or one JSON document for scripts. */
import type { CheckResult } from './check-result.ts';

/**
 * `ok    redis:       Redis 7.2.4 — …`: the level padded to 4, then the check name and colon padded
 * to the longest name present, so findings start in one column.
 */
export function formatText(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.check.length + 1));
  return results
    .map((r) => `${r.level.padEnd(4)}  ${`${r.check}:`.padEnd(width)} ${r.finding}${r.action ? ` — ${r.action}` : ''}`)
    .join('\n');
}

/** `{ok: boolean, results: [{check, level, finding, action?}]}` on one line: `ok` is false when any check failed. */
export function formatJson(results: readonly CheckResult[]): string {
  return JSON.stringify({ ok: !results.some((r) => r.level === 'fail'), results });
}
