// Rows of the Homes page: devices with their shadows, rules with their suspension, decisions.
// Ids, values and the rules' own reasons are the users' data: text nodes marked translate="no".
import { failedConditionLines, formatValue } from './decision-text.js';
import { el, row, yesNoBadge } from './dom.js';
import { describeError } from './errors.js';
import { formatTime, t } from './i18n.js';

/** Data shown as sent. */
const data = (text, cls = '') => el('span', { class: cls, translate: 'no', text });

/** A translated badge for `key` (a state, an outcome); an unknown value shows as sent. */
function badge(prefix, value, cls) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return el('span', { class: `badge ${cls}` }, text === key ? data(String(value)) : text);
}

/** `name = value` pairs, one a line; a dash when there are none. */
function pairs(record, valueOf = (v) => v) {
  const entries = Object.entries(record ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return el('span', { class: 'muted', text: '–' });
  return el(
    'ul',
    { class: 'pairs', translate: 'no' },
    entries.map(([name, v]) =>
      el('li', {}, el('span', { class: 'key', text: name }), ' = ', el('span', { text: formatValue(valueOf(v)) })),
    ),
  );
}

/** Why a read failed: the translated meaning of its code, then the API's own message (data). */
function errorText(error) {
  const { title, detail } = describeError(error);
  return el(
    'span',
    { class: 'error-text', 'data-testid': 'read-error' },
    title,
    detail && [' ', el('span', { class: 'error-label', text: t('error.detail') }), ' ', data(detail, 'error-detail')],
  );
}

/**
 * The row of a table whose read failed (`columns` wide): what failed (`key`), why, and a Retry
 * button calling `onRetry`.
 */
export function failedRow(columns, key, error, onRetry) {
  return el(
    'tr',
    { class: 'failed', 'data-testid': 'table-failed' },
    el(
      'td',
      { colspan: columns },
      el('strong', { class: 'error-text', text: t(key) }),
      ' ',
      errorText(error),
      ' ',
      el('button', { type: 'button', class: 'small', 'data-testid': 'table-retry', text: t('common.retry'), on: { click: onRetry } }),
    ),
  );
}

/** A device of the page `{brief, shadow?, error?}`: its shadow, why it could not be read, or neither yet (loading). */
export function deviceRow({ brief, shadow, error }) {
  const props = { 'data-testid': 'device-row', dataset: { deviceId: brief.deviceId } };
  const id = data(brief.deviceId, 'mono');
  if (!shadow) {
    if (!error) return row(props, [id, data(brief.type ?? '–'), '–', el('span', { class: 'muted', text: t('common.loading') }), '', '']);
    return row(props, [id, data(brief.type ?? '–'), '–', errorText(error), '', '']);
  }
  const online = yesNoBadge(shadow.online);
  const delta = Object.keys(shadow.delta ?? {}).length > 0 ? el('div', { class: 'delta' }, pairs(shadow.delta)) : pairs(shadow.delta);
  return row(props, [
    id,
    data(shadow.type ?? brief.type ?? '–'),
    online,
    pairs(shadow.reported, (r) => r.value),
    pairs(shadow.desired),
    delta,
  ]);
}

/** A rule: its state (active, disabled, or suspended since when and why) and a Resume button when suspended. */
export function ruleRow(rule, onResume, timeZone) {
  const suspended = rule.suspended !== undefined;
  let status;
  if (suspended) {
    status = el(
      'div',
      { class: 'suspension' },
      el('span', { class: 'badge bad', text: t('rule.suspended') }),
      el('span', { class: 'muted', text: ` ${t('rule.since', { time: formatTime(rule.suspended.at, timeZone) })}` }),
      el('div', { class: 'reason' }, data(rule.suspended.reason)),
    );
  } else {
    status = el('span', { class: `badge ${rule.enabled ? 'ok' : 'off'}`, text: rule.enabled ? t('rule.active') : t('rule.disabled') });
  }
  const resume =
    suspended &&
    el('button', { type: 'button', class: 'small', 'data-testid': 'rule-resume', text: t('rule.resume'), on: { click: onResume } });
  return row({ 'data-testid': 'rule-row', dataset: { ruleId: rule.id, suspended: String(suspended) } }, [
    data(rule.id, 'mono'),
    data(rule.name),
    yesNoBadge(rule.enabled),
    status,
    resume || '',
  ]);
}

/** What fired the rule; a schedule's due time in the home's `timeZone`. */
function triggerText(trigger, timeZone) {
  if (!trigger) return '–';
  if (trigger.type === 'attribute') return data(`${trigger.device}.${trigger.attribute} = ${formatValue(trigger.value)}`, 'mono');
  if (trigger.type === 'event') return data(`${trigger.device}: ${trigger.event}`, 'mono');
  const key = `trigger.${trigger.type}`;
  const kind = t(key);
  return el(
    'span',
    {},
    kind === key ? data(trigger.type) : kind,
    ' ',
    el('span', { class: 'nowrap', text: formatTime(trigger.dueAt, timeZone) }),
  );
}

/** What an action of a firing did. */
function actionText(action) {
  if (action.type === 'command') return data(`${action.device}.${action.name}${action.scene ? ` (${action.scene})` : ''}`, 'mono');
  if (action.type === 'notify') return el('span', {}, `${t('decision.notify')} `, data(action.message));
  return el('span', {}, `${t('decision.skipped')} `, data(action.reason ?? ''));
}

/** A condition's verdict mark: ✓ held, ✗ did not, nothing when the entry has none. */
function verdict(passed) {
  if (passed === undefined) return null;
  return el('span', {
    class: passed ? 'verdict ok' : 'verdict bad',
    title: t(passed ? 'condition.held' : 'condition.failed'),
    text: passed ? '✓' : '✗',
  });
}

/** The conditions that did not hold, groups with every member's verdict, each with the value it saw. */
function failedConditions(results) {
  return failedConditionLines(results).map((line) =>
    el(
      'div',
      { class: `condition depth-${Math.min(line.depth, 4)}` },
      verdict(line.passed),
      ' ',
      line.keyword ? el('span', { class: 'keyword', text: t(line.keyword) }) : data(line.text, 'mono'),
      line.saw === undefined ? null : ` ${t('decision.saw', { value: line.saw })}`,
    ),
  );
}

/** One decision of the log, its times in the home's `timeZone`. */
export function decisionRow(entry, timeZone) {
  const details = [];
  for (const action of entry.actions ?? []) details.push(el('div', {}, actionText(action)));
  if (entry.outcome === 'condition_false') details.push(...failedConditions(entry.conditions));
  if (entry.reason) details.push(el('div', { class: 'reason' }, data(entry.reason)));
  return row({ 'data-testid': 'decision-row', dataset: { seq: String(entry.seq), outcome: entry.outcome } }, [
    el('span', { class: 'nowrap', text: formatTime(entry.at, timeZone) }),
    el('div', {}, data(entry.ruleName), el('div', { class: 'sub' }, data(entry.ruleId, 'muted mono'))),
    badge('outcome', entry.outcome, entry.outcome === 'fired' ? 'ok' : entry.outcome === 'suspended' ? 'bad' : 'off'),
    triggerText(entry.trigger, timeZone),
    details.length > 0 ? details : '–',
  ]);
}
