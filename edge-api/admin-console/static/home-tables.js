// Rows of the Homes page: devices with their shadows, rules with their suspension, decisions.
// Ids, values and the rules' own reasons are the users' data: text nodes marked translate="no".
import { el, row } from './dom.js';
import { describeError } from './errors.js';
import { formatTime, t } from './i18n.js';

/** Data shown as sent. */
const data = (text, cls = '') => el('span', { class: cls, translate: 'no', text });

/** A value as it reads: strings bare, anything else as JSON (`true`, `42`, `null`). */
export const formatValue = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

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

/** A device of the page `{brief, shadow?, error?}`: its shadow, or why it could not be read. */
export function deviceRow({ brief, shadow, error }) {
  const props = { 'data-testid': 'device-row', dataset: { deviceId: brief.deviceId } };
  const id = data(brief.deviceId, 'mono');
  if (!shadow) {
    const { title } = describeError(error);
    return row(props, [id, data(brief.type ?? '–'), '–', el('span', { class: 'error-text', text: title }), '', '']);
  }
  const online = el('span', { class: `badge ${shadow.online ? 'ok' : 'bad'}`, text: shadow.online ? t('common.yes') : t('common.no') });
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
export function ruleRow(rule, onResume) {
  const suspended = rule.suspended !== undefined;
  let status;
  if (suspended) {
    status = el(
      'div',
      { class: 'suspension' },
      el('span', { class: 'badge bad', text: t('rule.suspended') }),
      el('span', { class: 'muted', text: ` ${t('rule.since', { time: formatTime(rule.suspended.at) })}` }),
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
    rule.enabled ? t('common.yes') : t('common.no'),
    status,
    resume || '',
  ]);
}

/** What fired the rule. */
function triggerText(trigger) {
  if (!trigger) return '–';
  if (trigger.type === 'attribute') return data(`${trigger.device}.${trigger.attribute} = ${formatValue(trigger.value)}`, 'mono');
  if (trigger.type === 'event') return data(`${trigger.device}: ${trigger.event}`, 'mono');
  const kind = t(`trigger.${trigger.type}`);
  return `${kind === `trigger.${trigger.type}` ? trigger.type : kind} ${formatTime(trigger.dueAt)}`;
}

/** What an action of a firing did. */
function actionText(action) {
  if (action.type === 'command') return data(`${action.device}.${action.name}${action.scene ? ` (${action.scene})` : ''}`, 'mono');
  if (action.type === 'notify') return el('span', {}, `${t('decision.notify')} `, data(action.message));
  return el('span', {}, `${t('decision.skipped')} `, data(action.reason ?? ''));
}

/** The conditions that did not hold, as written, with the value each saw. */
function failedConditions(conditions) {
  return (conditions ?? [])
    .filter((c) => !c.passed)
    .map((c) => {
      const cond = c.condition;
      const text =
        cond.type === 'attribute'
          ? `${cond.device}.${cond.attribute} ${cond.op} ${formatValue(cond.value)}`
          : cond.type === 'time'
            ? `${cond.after}–${cond.before}`
            : cond.type;
      return el('div', {}, data(text, 'mono'), ` ${t('decision.saw', { value: c.saw === null ? '–' : formatValue(c.saw) })}`);
    });
}

/** One decision of the log. */
export function decisionRow(entry) {
  const details = [];
  for (const action of entry.actions ?? []) details.push(el('div', {}, actionText(action)));
  if (entry.outcome === 'condition_false') details.push(...failedConditions(entry.conditions));
  if (entry.reason) details.push(el('div', { class: 'reason' }, data(entry.reason)));
  return row({ 'data-testid': 'decision-row', dataset: { seq: String(entry.seq), outcome: entry.outcome } }, [
    el('span', { class: 'nowrap', text: formatTime(entry.at) }),
    el('div', {}, data(entry.ruleName), el('div', { class: 'sub' }, data(entry.ruleId, 'muted mono'))),
    badge('outcome', entry.outcome, entry.outcome === 'fired' ? 'ok' : entry.outcome === 'suspended' ? 'bad' : 'off'),
    triggerText(entry.trigger),
    details.length > 0 ? details : '–',
  ]);
}
