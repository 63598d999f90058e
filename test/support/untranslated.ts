/** "Nothing left untranslated": the text of the other language a page of the admin console still shows. */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';

/** The console's dictionary: `en` and `zh`, key → text. */
export interface Dictionary {
  readonly en: Readonly<Record<string, string>>;
  readonly zh: Readonly<Record<string, string>>;
}

/**
 * The names in Latin letters a Chinese text may keep as they are (case-sensitive, whole words):
 * the product's name, a setting, protocols. Also the only texts that may be the same in both
 * languages. A word not listed here is English left in the Chinese dictionary.
 */
export const PROPER_NAMES: readonly string[] = ['IoT', 'ADMIN_TOKEN', 'ID', 'HTTP', 'JSON'];

/** The words in Latin letters of `text` (letters, then letters, digits or `_`), `{placeholders}` left out. */
const latinWords = (text: string): string[] => text.replace(/\{[^}]*\}/g, ' ').match(/[A-Za-z][A-Za-z0-9_]*/g) ?? [];

/** The console's own dictionaries, from its i18n module (a browser ES module that Node imports as well). */
export async function loadDictionary(): Promise<Dictionary> {
  const url = pathToFileURL(join(PACKAGE_ROOT, 'edge-api', 'admin-console', 'static', 'i18n.js')).href;
  const { dictionaries } = (await import(url)) as { dictionaries?: Dictionary };
  if (!dictionaries?.en || !dictionaries.zh) throw new Error(`${url} exports no dictionaries {en, zh}`);
  return dictionaries;
}

/**
 * The Chinese dictionary's English: a text the same as its English one (unless a proper name), and
 * every word in Latin letters that is not one of PROPER_NAMES. One line per problem, by key.
 */
export function dictionaryProblems(dictionary: Dictionary): string[] {
  const problems: string[] = [];
  for (const [key, zh] of Object.entries(dictionary.zh)) {
    if (zh === dictionary.en[key] && !PROPER_NAMES.includes(zh)) problems.push(`${key}: ${JSON.stringify(zh)} is the same in English`);
    for (const word of latinWords(zh))
      if (!PROPER_NAMES.includes(word)) problems.push(`${key}: ${JSON.stringify(word)} in ${JSON.stringify(zh)}`);
  }
  return problems;
}

/** A visible text of the page; `data` when it is marked translate="no" (shown as the API gives it). */
interface PageText {
  readonly text: string;
  readonly data: boolean;
}

/**
 * Run in the page (a string: the tests are type-checked without the DOM library): the visible text
 * nodes (trimmed), placeholders, titles, aria-labels and button values, and the document's title.
 * The language switch's own buttons ("English", "中文": each in its own language) are left out.
 */
const VISIBLE_TEXTS = `(() => {
  const out = [];
  const visible = (el) => el !== null && el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const isData = (el) => el.closest('[translate="no"]') !== null;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = (n.textContent || '').trim();
    const el = n.parentElement;
    if (text === '' || !visible(el) || el.closest('[data-testid="lang-switch"] [lang]')) continue;
    out.push({ text, data: isData(el) });
  }
  for (const el of document.querySelectorAll('[placeholder],[title],[aria-label],input[type=button],input[type=submit]')) {
    if (!visible(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) if (el.getAttribute(a)) out.push({ text: el.getAttribute(a), data: isData(el) });
    if (el.type === 'button' || el.type === 'submit') out.push({ text: el.value, data: isData(el) });
  }
  out.push({ text: document.title, data: false });
  return out;
})()`;

/**
 * What a page meant to be in `into` still shows of the other language, one line per text.
 *
 * For `zh` (English left behind): a visible text that is a text of the English dictionary (a key not
 * switched; also when marked as data: a label marked translate="no" by mistake), or, outside data
 * (`data`, and text marked translate="no"), a word in Latin letters other than those the Chinese
 * dictionary itself uses (PROPER_NAMES), whatever its length.
 *
 * For `en` (Chinese left behind): a visible text with a Han character, outside data (`data`, text
 * marked translate="no") and the language switch.
 */
export async function untranslated(
  page: Page,
  dictionary: Dictionary,
  data: readonly string[],
  into: 'zh' | 'en' = 'zh',
): Promise<string[]> {
  const allowed = new Set(Object.values(dictionary.zh).flatMap(latinWords));
  const enTexts = new Set(Object.values(dictionary.en).filter((en) => !PROPER_NAMES.includes(en)));
  const byLength = [...data].sort((a, b) => b.length - a.length);
  const texts = await page.evaluate<PageText[]>(VISIBLE_TEXTS);
  const left: string[] = [];
  for (const { text, data: isData } of texts) {
    let rest = text;
    for (const d of byLength) rest = rest.split(d).join(' ');
    const other =
      into === 'en'
        ? isData
          ? []
          : (rest.match(/\p{Script=Han}+/gu) ?? [])
        : [...(enTexts.has(text) ? [text] : []), ...(isData ? [] : latinWords(rest).filter((w) => !allowed.has(w)))];
    if (other.length > 0) left.push(`${JSON.stringify(text)}${isData ? ' [translate=no]' : ''} (${[...new Set(other)].join(', ')})`);
  }
  return left;
}
