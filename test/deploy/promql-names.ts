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

/** `expr` with the characters inside string literals blanked (same length, quotes kept), so brackets, commas and `=` in a label value are not read as PromQL. */
function blankStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, (s) => s[0] + ' '.repeat(s.length - 2) + s[s.length - 1]);
}

/** The inner text of the parenthesised group whose `(` is at `open` in `text`, and the index after its `)`. */
function groupFrom(text: string, open: number): { inner: string; end: number } | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return { inner: text.slice(open + 1, i), end: i + 1 };
  }
  return undefined;
}

/** The inner text of the parenthesised group whose `)` is at `close` in `text`. */
function groupTo(text: string, close: number): string | undefined {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (text[i] === ')') depth++;
    else if (text[i] === '(' && --depth === 0) return text.slice(i + 1, close);
  }
  return undefined;
}

/** A label an expression reads from a metric: in a selector's matcher (`x{peer="a"}`) or in an aggregation's `by (…)` / `without (…)`. */
export interface LabelUse {
  readonly metric: string;
  readonly label: string;
  readonly clause: 'matcher' | 'by' | 'without';
}

/**
 * Every label `expr` expects its metrics to carry, without repeats: the matchers of each selector
 * (`name{label="…"}`), and the labels of each `by (…)` / `without (…)`, which every metric of the
 * aggregated expression must have (the aggregation's argument, written after the clause or before
 * it: `sum by (a) (x)`, `sum(x) by (a)`). `on`/`ignoring` lists are not read.
 */
export function labelUses(expr: string): LabelUse[] {
  const text = blankStrings(expr);
  const uses: LabelUse[] = [];
  const add = (use: LabelUse): void => {
    if (!uses.some((u) => u.metric === use.metric && u.label === use.label && u.clause === use.clause)) uses.push(use);
  };
  for (const m of text.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    if (/^[0-9]/.test(m[1]!) || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    for (const matcher of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g))
      add({ metric: m[1]!, label: matcher[1]!, clause: 'matcher' });
  }
  for (const m of text.matchAll(/\b(by|without)\s*\(([^)]*)\)/g)) {
    const clause = m[1] as 'by' | 'without';
    const labels = m[2]!
      .split(',')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const after = m.index + m[0].length;
    const next = /^\s*\(/.exec(text.slice(after));
    let argument: string | undefined;
    if (next) argument = groupFrom(text, after + next[0].length - 1)?.inner;
    else {
      const before = /\)\s*$/.exec(text.slice(0, m.index));
      if (before) argument = groupTo(text, before.index);
    }
    if (argument === undefined) throw new Error(`cannot find what \`${m[0]}\` aggregates in: ${expr}`);
    for (const metric of metricNames(argument)) for (const label of labels) add({ metric, label, clause });
  }
  return uses;
}

/** Functions over a range that only mean something on a counter (a gauge's rises and falls are not a rate). */
export const COUNTER_FUNCTIONS = ['rate', 'irate', 'increase'] as const;

/** Each metric `expr` passes to rate, irate or increase, with the function, without repeats. */
export function counterFunctionUses(expr: string): { readonly fn: string; readonly metric: string }[] {
  const text = blankStrings(expr);
  const uses: { fn: string; metric: string }[] = [];
  for (const m of text.matchAll(new RegExp(`\\b(${COUNTER_FUNCTIONS.join('|')})\\s*\\(`, 'g'))) {
    const argument = groupFrom(text, m.index + m[0].length - 1)?.inner;
    if (argument === undefined) throw new Error(`unclosed ${m[1]}( in: ${expr}`);
    for (const metric of metricNames(argument))
      if (!uses.some((u) => u.fn === m[1] && u.metric === metric)) uses.push({ fn: m[1]!, metric });
  }
  return uses;
}
