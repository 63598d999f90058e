// The console's two languages: the current one, `t(key)`, and translating the page's marked elements.
// No DOM or storage access at import time: tests import this module in Node.
import { en } from './messages-en.js';
import { zh } from './messages-zh.js';

/** Every language's texts, with the same keys. */
export const dictionaries = Object.freeze({ en, zh });

/** The languages offered, in the switch's order. */
export const LANGUAGES = Object.freeze(['en', 'zh']);

/** Where the choice is remembered across reloads. */
export const LANGUAGE_KEY = 'iot-admin.lang';

/** Attributes naming a key whose text goes into the element's text or into an attribute of it. */
const TARGETS = [
  ['data-i18n', null],
  ['data-i18n-placeholder', 'placeholder'],
  ['data-i18n-title', 'title'],
  ['data-i18n-aria-label', 'aria-label'],
];

let current = 'en';
const listeners = new Set();

/** The current language, `en` or `zh`. */
export const language = () => current;

/**
 * The text of `key` in the current language, `{name}` placeholders filled from `params`. A key
 * missing from the dictionary shows as itself (the i18n test keeps that from happening).
 */
export function t(key, params) {
  const text = dictionaries[current][key] ?? key;
  if (params === undefined) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
}

/** The language to start in: the remembered one, else the browser's (Chinese → zh), else en. */
export function initialLanguage(stored, browserLanguages) {
  if (LANGUAGES.includes(stored)) return stored;
  return (browserLanguages ?? []).some((l) => /^zh\b/i.test(l)) ? 'zh' : 'en';
}

/** The language remembered by an earlier visit, or null (none, or storage refused). */
export function storedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null;
  }
}

/** Translates every marked element under `root` into the current language. */
export function translate(root) {
  for (const [attribute, target] of TARGETS) {
    for (const node of root.querySelectorAll(`[${attribute}]`)) {
      const text = t(node.getAttribute(attribute));
      if (target === null) node.textContent = text;
      else node.setAttribute(target, text);
    }
  }
}

/** Switches to `lang`: remembers it, sets `<html lang>`, translates the page and tells the listeners. */
export function setLanguage(lang) {
  current = LANGUAGES.includes(lang) ? lang : 'en';
  try {
    localStorage.setItem(LANGUAGE_KEY, current);
  } catch {
    // Storage refused (private mode): the choice lasts until reload.
  }
  document.documentElement.lang = current;
  document.title = t('app.title');
  translate(document);
  for (const listener of listeners) listener(current);
}

/** Calls `listener(lang)` after every switch (views re-render what they built). */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Whether the dictionaries have `key`. */
export const hasText = (key) => Object.hasOwn(dictionaries.en, key);

const locale = () => (current === 'zh' ? 'zh-CN' : 'en-GB');

/**
 * Formats epoch ms as a date and time in the current language, in the IANA time zone `timeZone`
 * (a home's) when given and known, else in the browser's.
 */
export function formatTime(ms, timeZone) {
  const options = { dateStyle: 'short', timeStyle: 'medium' };
  try {
    return new Intl.DateTimeFormat(locale(), timeZone ? { ...options, timeZone } : options).format(ms);
  } catch {
    // An unknown zone (RangeError): the browser's own.
    return new Intl.DateTimeFormat(locale(), options).format(ms);
  }
}

/** Formats epoch ms as the browser's local time of day (hh:mm:ss). */
export const formatClock = (ms) => new Intl.DateTimeFormat(locale(), { timeStyle: 'medium', hour12: false }).format(ms);
