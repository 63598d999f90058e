/**
 * The metric names a PromQL expression (or a Grafana query over one) reads: what the dashboard
 * and the alert rules need a node's /metrics to expose.
 */

/** Words PromQL reserves that may stand where a metric name could (binary operators, modifiers, literals). */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/** Clauses whose parenthesised list holds label names, not series. */
const LABEL_LISTS = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;

/**
 * Every metric name `expr` selects, in order of appearance, without repeats. Removed before the
 * names are read: string literals, label matchers `{…}`, range and subquery brackets `[…]`,
 * Grafana variables (`$node`, `${datasource}`, `$__rate_interval`), label lists of by/without/on/
 * ignoring/group_*; then an identifier followed by `(` is a function or aggregation, a keyword is
 * an operator, a number (durations included) is a literal. `label_values(metric, label)` (a
 * Grafana variable query) names its metric.
 */
export function metricNames(expr: string): string[] {
  let rest = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ' ')
    .replace(LABEL_LISTS, ' ');
  // label_values(metric, label): the label is not a series; label_values(label) names none.
  rest = rest.replace(/\blabel_values\s*\(([^,)]*)(?:,[^)]*)?\)/g, (_m, first: string) => (/,/.test(_m) ? ` ${first} ` : ' '));
  const names: string[] = [];
  const token = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[a-zA-Z]*|[a-zA-Z_:][a-zA-Z0-9_:]*/g;
  for (const m of rest.matchAll(token)) {
    const word = m[0];
    if (/^[0-9]/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    const after = rest.slice(m.index + word.length).trimStart();
    if (after.startsWith('(')) continue; // a function or an aggregation
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** Why `expr` is malformed (unbalanced brackets, braces or parentheses), or undefined. */
export function unbalanced(expr: string): string | undefined {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  const text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  for (const ch of text) {
    if (ch === '(' || ch === '[' || ch === '{') stack.push(ch);
    else if (ch in pairs) {
      if (stack.pop() !== pairs[ch]) return `unexpected ${ch}`;
    }
  }
  return stack.length === 0 ? undefined : `unclosed ${stack.join('')}`;
}

/** The series a histogram or summary exposes under its own name: `x_bucket`, `x_sum`, `x_count` → `x`. */
export function histogramBase(name: string): string | undefined {
  const m = /^(.*)_(?:bucket|sum|count)$/.exec(name);
  return m?.[1];
}
