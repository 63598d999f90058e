import { readdir, readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';
import { DECISION_OUTCOMES } from '../../../actors/rules/decision-log.ts';
import { TRIGGER_TYPES } from '../../../actors/rules/rule-types.ts';

/** A browser module of the console, imported as it is served (plain JS: no DOM is touched at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

/** Every error code the edge can answer, read from the one code table. */
async function edgeErrorCodes(): Promise<string[]> {
  const source = await readFile(new URL('../../../edge-api/error-codes.ts', import.meta.url), 'utf8');
  const table = source.slice(source.indexOf('const table'));
  return [...table.matchAll(/^ {2}(\w+): \{ http:/gm)].map((m) => m[1]!);
}

/** Every static file's text, by name. */
async function staticTexts(): Promise<Map<string, string>> {
  const files = (await readdir(CONSOLE_STATIC_DIR)).filter((f) => /\.(js|html)$/.test(f));
  return new Map(await Promise.all(files.map(async (f) => [f, await readFile(new URL(f, CONSOLE_STATIC_DIR), 'utf8')] as const)));
}

const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();

let i18n: any;
let en: Record<string, string>;
let zh: Record<string, string>;

beforeAll(async () => {
  i18n = await load('i18n.js');
  ({ en, zh } = i18n.dictionaries);
});

describe('admin console dictionaries', () => {
  it('have the same keys in English and Chinese', () => {
    expect(Object.keys(en).length).toBeGreaterThan(50);
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
  });

  it('have no empty text, and the same placeholders in both languages', () => {
    for (const lang of [en, zh]) for (const [key, text] of Object.entries(lang)) expect(text.trim(), key).not.toBe('');
    for (const key of Object.keys(en)) expect(placeholders(zh[key]!), key).toEqual(placeholders(en[key]!));
  });

  it('translate every text: each Chinese one differs from the English and is written in Chinese', () => {
    // Proper names would be the same in both; the console has none among its texts (the switch's
    // "English" and "中文" are not dictionary texts: each is written in its own language).
    for (const key of Object.keys(en)) {
      expect(zh[key], key).not.toBe(en[key]);
      expect(zh[key], key).toMatch(/\p{Script=Han}/u);
      expect(en[key], key).not.toMatch(/\p{Script=Han}/u);
    }
  });

  it('hold every key the page and its scripts use, and no key nothing uses', async () => {
    const namespaces = new Set(Object.keys(en).map((k) => k.split('.')[0]));
    const used = new Set<string>();
    for (const [file, text] of await staticTexts()) {
      const marked = [...text.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g), ...text.matchAll(/\bt\(\s*'([^']+)'/g)].map((m) => m[1]!);
      // Keys handed around before t() sees them (InputError keys, per-call error overrides, notes).
      const literals = [...text.matchAll(/'([a-z]+(?:\.[A-Za-z_]+)+)'/g)].map((m) => m[1]!).filter((k) => namespaces.has(k.split('.')[0]));
      for (const key of [...marked, ...literals]) {
        expect(en, `${file} uses ${key}`).toHaveProperty([key]);
        used.add(key);
      }
    }
    expect(used.size).toBeGreaterThan(40);
    // Keys built at run time (`error.code.${code}`, `outcome.${o}`, …) are checked by family below.
    const families = ['error.code.', 'outcome.', 'state.', 'trigger.', 'resize.op.'];
    const unused = Object.keys(en).filter((k) => !used.has(k) && !families.some((f) => k.startsWith(f)));
    expect(unused).toEqual([]);
  });

  it('explain every error code the edge answers, and the failures of the console itself', async () => {
    const codes = await edgeErrorCodes();
    expect(codes).toEqual(
      expect.arrayContaining(['invalid_argument', 'unauthenticated', 'failed_precondition', 'not_found', 'rate_limited']),
    );
    for (const code of [...codes, 'network', 'bad_response', 'other']) expect(en, code).toHaveProperty([`error.code.${code}`]);
  });

  it('name every decision outcome, schedule trigger, node state and ring operation', async () => {
    for (const outcome of DECISION_OUTCOMES) expect(en).toHaveProperty([`outcome.${outcome}`]);
    for (const type of TRIGGER_TYPES.filter((t) => t !== 'attribute' && t !== 'event')) expect(en).toHaveProperty([`trigger.${type}`]);
    for (const state of ['joining', 'active', 'draining', 'left']) expect(en).toHaveProperty([`state.${state}`]);
    const { OPERATIONS } = await load('ring-change.js');
    for (const op of OPERATIONS) expect(en).toHaveProperty([`resize.op.${op}`]);
  });
});

describe('admin console t()', () => {
  it('fills placeholders and shows a missing key as itself', () => {
    expect(i18n.language()).toBe('en');
    expect(i18n.t('resize.flowShards', { count: 22 })).toBe('22 shards');
    expect(i18n.t('cluster.shardTitle', { shard: 3 })).toBe('Shard 3: {node}');
    expect(i18n.t('no.such.key')).toBe('no.such.key');
    expect(i18n.hasText('resize.plan')).toBe(true);
    expect(i18n.hasText('toString')).toBe(false);
  });

  it('starts in the remembered language, else the browser one', () => {
    expect(i18n.initialLanguage('zh', ['en-US'])).toBe('zh');
    expect(i18n.initialLanguage('en', ['zh-CN'])).toBe('en');
    expect(i18n.initialLanguage(null, ['zh-TW', 'en'])).toBe('zh');
    expect(i18n.initialLanguage('fr', ['de-DE', 'en'])).toBe('en');
    expect(i18n.initialLanguage(null, undefined)).toBe('en');
  });
});
