// How a failure is shown: the translated meaning of its code, then the API's own message.
import { el, fill } from './dom.js';
import { hasText, t } from './i18n.js';

/**
 * A problem found before calling the API (an empty id, a bad weight): `key` names its text,
 * `params` fill it.
 */
export class InputError extends Error {
  constructor(key, params) {
    super(key);
    this.name = 'InputError';
    this.key = key;
    this.params = params;
  }
}

/**
 * The dictionary key of an API error code's meaning: the caller's own for that code (what a 409
 * means depends on the call), else the code's, else the one for codes the console does not know.
 */
export function codeKey(code, overrides = {}) {
  if (Object.hasOwn(overrides, code)) return overrides[code];
  const key = `error.code.${code}`;
  return hasText(key) ? key : 'error.code.other';
}

/**
 * `{title, detail}` of `err`: `title` says what the code means in the current language
 * (`overrides`: code → key, see codeKey), `detail` is the API's own message as it sent it (empty
 * when it sent none). Never a stack or raw JSON.
 */
export function describeError(err, overrides) {
  if (err instanceof InputError) return { title: t(err.key, err.params), detail: '' };
  if (err && typeof err.code === 'string') {
    return { title: t(codeKey(err.code, overrides), { status: err.status, code: err.code }), detail: err.message };
  }
  return { title: t('error.unexpected'), detail: '' };
}

const shown = new Map();

/** Shows `err` in `box` (and again in the new language after a switch); `overrides` as for describeError. */
export function showError(box, err, overrides) {
  shown.set(box, { err, overrides });
  render(box, err, overrides);
}

function render(box, err, overrides) {
  const { title, detail } = describeError(err, overrides);
  // The API's words are data, not the console's: marked so that no translator touches them.
  const said = detail && [
    el('span', { class: 'error-label', text: t('error.detail') }),
    ' ',
    el('span', { class: 'error-detail', translate: 'no', text: detail }),
  ];
  fill(box, el('strong', { text: title }), said);
  box.hidden = false;
}

/** Hides the error in `box`. */
export function clearError(box) {
  shown.delete(box);
  fill(box);
  box.hidden = true;
}

/** Re-renders every shown error in the current language. */
export function relabelErrors() {
  for (const [box, { err, overrides }] of shown) render(box, err, overrides);
}
