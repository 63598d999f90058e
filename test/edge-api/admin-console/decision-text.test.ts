import { beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let conditionLines: (results: unknown) => any[];
let failedConditionLines: (results: unknown) => any[];
let i18n: any;

beforeAll(async () => {
  ({ conditionLines, failedConditionLines } = await load('decision-text.js'));
  i18n = await load('i18n.js');
});

const dark = { type: 'attribute', device: 'motion1', attribute: 'illuminance', op: '<', value: 50 };
const night = { type: 'time', after: '22:00', before: '06:00' };
const away = { type: 'attribute', device: 'phone', attribute: 'home', op: '==', value: false };

describe('admin console: decision log conditions', () => {
  it('shows a failed group with a translatable keyword and every member with its verdict and value', () => {
    const results = [
      { condition: away, saw: true, passed: true },
      {
        condition: { type: 'or', conditions: [dark, night] },
        saw: null,
        passed: false,
        results: [
          { condition: dark, saw: 300, passed: false },
          { condition: night, saw: '14:05', passed: false },
        ],
      },
    ];
    expect(failedConditionLines(results)).toEqual([
      { depth: 0, passed: false, keyword: 'condition.or' },
      { depth: 1, passed: false, text: 'motion1.illuminance < 50', saw: '300' },
      { depth: 1, passed: false, text: '22:00–06:00', saw: '14:05' },
    ]);
  });

  it('nests not and and, and names a value it never saw with a dash', () => {
    const results = [
      {
        condition: { type: 'not', condition: { type: 'and', conditions: [away, night] } },
        saw: null,
        passed: false,
        results: [
          {
            condition: { type: 'and', conditions: [away, night] },
            saw: null,
            passed: true,
            results: [
              { condition: away, saw: null, passed: true },
              { condition: night, saw: '23:00', passed: true },
            ],
          },
        ],
      },
    ];
    expect(conditionLines(results)).toEqual([
      { depth: 0, passed: false, keyword: 'condition.not' },
      { depth: 1, passed: true, keyword: 'condition.and' },
      { depth: 2, passed: true, text: 'phone.home == false', saw: '–' },
      { depth: 2, passed: true, text: '22:00–06:00', saw: '23:00' },
    ]);
  });

  it('shows the members of a group logged without their results, without a verdict', () => {
    expect(conditionLines([{ condition: { type: 'and', conditions: [dark] }, saw: null, passed: false }])).toEqual([
      { depth: 0, passed: false, keyword: 'condition.and' },
      { depth: 1, passed: undefined, text: 'motion1.illuminance < 50', saw: undefined },
    ]);
    expect(failedConditionLines(undefined)).toEqual([]);
  });

  it('has every keyword in both languages, none left in English in Chinese', () => {
    for (const key of ['condition.and', 'condition.or', 'condition.not']) {
      expect(i18n.dictionaries.en[key]).toBeDefined();
      expect(i18n.dictionaries.zh[key]).toMatch(/\p{Script=Han}/u);
    }
    expect(i18n.dictionaries.en['trigger.sun']).toBe('Sunrise/sunset');
    expect(i18n.dictionaries.zh['trigger.sun']).toBe('日出日落');
  });
});

describe("admin console: times in the home's time zone", () => {
  // 2026-01-15 12:00:00 UTC.
  const noon = Date.UTC(2026, 0, 15, 12, 0, 0);

  it('formats a time in the zone given, else the browser one; an unknown zone falls back', () => {
    expect(i18n.formatTime(noon, 'Asia/Shanghai')).toContain('20:00:00');
    expect(i18n.formatTime(noon, 'America/New_York')).toContain('07:00:00');
    expect(i18n.formatTime(noon, 'Not/AZone')).toBe(i18n.formatTime(noon));
  });
});
