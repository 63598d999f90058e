/** "Nothing left untranslated": the English a page in the admin console's other language still shows. */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';

/** The console's dictionary: `en` and `zh`, key → text. */
export interface Dictionary {
  readonly en: Readonly<Record<string, string>>;
  readonly zh: Readonly<Record<string, string>>;
}

/** The console's own dictionaries, from its i18n module (a browser ES module that Node imports as well). */
export async function loadDictionary(): Promise<Dictionary> {
  const url = pathToFileURL(join(PACKAGE_ROOT, 'edge-api', 'admin-console', 'static', 'i18n.js')).href;
  const { dictionaries } = (await import(url)) as { dictionaries?: Dictionary };
  if (!dictionaries?.en || !dictionaries.zh) throw new Error(`${url} exports no dictionaries {en, zh}`);
  return dictionaries;
}

/**
 * Run in the page (a string: the tests are type-checked without the DOM library): the visible text
 * nodes (trimmed) that are not data, the placeholders, titles, aria-labels and button values, and
 * the document's title.
 */
const VISIBLE_TEXTS = `(() => {
  const out = [];
  const visible = (el) => el !== null && el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = (n.textContent || '').trim();
    // Data shown as sent (ids, values, the API's own messages) is marked translate="no"; a text in
    // another language than the page's (the switch's "English") is marked with its own lang.
    const el = n.parentElement;
    if (text === '' || !visible(el) || el.closest('[translate="no"]')) continue;
    const lang = el.closest('[lang]');
    if (lang === null || lang === document.documentElement) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder],[title],[aria-label],input[type=button],input[type=submit]')) {
    if (!visible(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
    if (el.type === 'button' || el.type === 'submit') out.push(el.value);
  }
  out.push(document.title);
  return out;
})()`;

/**
 * Every piece of visible text on the page (text nodes, placeholders, titles, labels, button values)
 * that is a text of the English dictionary, or has a word in Latin letters that the Chinese
 * dictionary does not use itself (names such as IoT or ADMIN_TOKEN) once the data (`data`,
 * numbers, text marked translate="no" or in another `lang`) is taken out: on a Chinese page,
 * English left behind, whether the English dictionary has it (a key not switched) or not (a text
 * that never went through the dictionary).
 */
export async function untranslated(page: Page, dictionary: Dictionary, data: readonly string[]): Promise<string[]> {
  const latin = (text: string): string[] => (text.replace(/\{[^}]*\}/g, ' ').match(/[A-Za-z]{3,}/g) ?? []).map((w) => w.toLowerCase());
  const zhWords = new Set(Object.values(dictionary.zh).flatMap(latin));
  // Whole English texts, for the short ones the word check lets through ("No", "On").
  const zhTexts = new Set(Object.values(dictionary.zh));
  const enTexts = new Set(Object.values(dictionary.en).filter((en) => !zhTexts.has(en)));
  const texts = await page.evaluate<string[]>(VISIBLE_TEXTS);
  const left: string[] = [];
  for (const text of texts) {
    let rest = text;
    for (const d of [...data].sort((a, b) => b.length - a.length)) rest = rest.split(d).join(' ');
    const english = [...(enTexts.has(text) ? [text] : []), ...latin(rest).filter((w) => !zhWords.has(w))];
    if (english.length > 0) left.push(`${JSON.stringify(text)} (${english.join(', ')})`);
  }
  return left;
}
