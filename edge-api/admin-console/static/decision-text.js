// Pure texts of the decision log: conditions with their members' verdicts, as lines to render.

/** A value as it reads: strings bare, anything else as JSON (`true`, `42`, `null`). */
export const formatValue = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

/** The dictionary key of a group's keyword. */
const KEYWORDS = Object.freeze({ and: 'condition.and', or: 'condition.or', not: 'condition.not' });

/**
 * The lines of the condition results `results` (ConditionResult: `{condition, saw, passed, results?}`),
 * depth first: `{depth, passed, keyword?, text?, saw?}`. A group (`and`, `or`, `not`) is a line
 * with its `keyword` (a dictionary key: `condition.and` …) followed by its members one level
 * deeper; an attribute or time condition is a line with its `text` as written (data, not
 * translated) and `saw`, the value it compared (formatted; '–' when it saw none). A member result
 * missing from an old entry shows its condition without a verdict (`passed` undefined).
 */
export function conditionLines(results, depth = 0) {
  const lines = [];
  for (const result of results ?? []) {
    const cond = result.condition ?? {};
    const passed = typeof result.passed === 'boolean' ? result.passed : undefined;
    if (cond.type === 'and' || cond.type === 'or' || cond.type === 'not') {
      lines.push({ depth, passed, keyword: KEYWORDS[cond.type] });
      const members = cond.type === 'not' ? [cond.condition] : (cond.conditions ?? []);
      const memberResults = result.results ?? members.map((condition) => ({ condition }));
      lines.push(...conditionLines(memberResults, depth + 1));
    } else {
      const text =
        cond.type === 'attribute'
          ? `${cond.device}.${cond.attribute} ${cond.op} ${formatValue(cond.value)}`
          : cond.type === 'time'
            ? `${cond.after}–${cond.before}`
            : String(cond.type);
      const saw = result.saw === null || result.saw === undefined ? '–' : formatValue(result.saw);
      lines.push({ depth, passed, text, saw: 'saw' in result ? saw : undefined });
    }
  }
  return lines;
}

/**
 * The lines worth showing for a decision: for `condition_false`, every top-level condition that
 * failed with all of its members (so an `or` shows which members failed and which passed).
 */
export const failedConditionLines = (results) => conditionLines((results ?? []).filter((r) => r.passed === false));
