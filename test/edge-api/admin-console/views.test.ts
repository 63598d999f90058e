import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let homes: any;
let cluster: any;
let resize: any;
let ApiError: any;
let page: string;

beforeAll(async () => {
  homes = await load('homes-view.js');
  cluster = await load('cluster-view.js');
  resize = await load('resize-view.js');
  ({ ApiError } = await load('api.js'));
  page = await readFile(new URL('index.html', CONSOLE_STATIC_DIR), 'utf8');
});

/** The opening tag of the element with `attr="value"` in the page. */
const tagWith = (attr: string, value: string): string => {
  const tag = new RegExp(`<[a-z][a-z0-9]*\\b[^>]*\\b${attr}="${value}"[^>]*>`).exec(page)?.[0];
  expect(tag, `${attr}=${value}`).toBeDefined();
  return tag!;
};

describe('admin console: the Homes tables', () => {
  it('fills a table that was read, keeps its failure to show with a Retry, and ignores an aborted read', () => {
    expect(homes.tableState({ status: 'fulfilled', value: { items: [1, 2] } })).toEqual({ items: [1, 2] });
    const failure = new ApiError(503, 'unavailable', 'the rules actor is restarting');
    expect(homes.tableState({ status: 'rejected', reason: failure })).toEqual({ error: failure });
    expect(homes.tableState({ status: 'rejected', reason: new ApiError(0, 'aborted', '') })).toBeUndefined();
  });
});

describe('admin console: the Cluster page', () => {
  it('rebuilds the nodes table only when a node or the language changed', () => {
    const nodes = [{ id: 'n1', address: 'a', state: 'active', weight: 1, alive: true, shardsAssigned: 3, shardsOwned: 3 }];
    const same = structuredClone(nodes);
    expect(cluster.nodesSignature(nodes, 'en')).toBe(cluster.nodesSignature(same, 'en'));
    expect(cluster.nodesSignature(nodes, 'en')).not.toBe(cluster.nodesSignature(nodes, 'zh'));
    expect(cluster.nodesSignature(nodes, 'en')).not.toBe(cluster.nodesSignature([{ ...nodes[0], shardsOwned: 2 }], 'en'));
  });
});

describe('admin console: the Resize progress sentence', () => {
  const tracking = (origin: string, progress: unknown) => ({ epoch: 5, moving: 20, origin, progress });

  it('says how far a change is, whose it is, and when a newer one moves', () => {
    expect(resize.progressSentence(tracking('here', { phase: 'moving', moved: 5, moving: 20, percent: 25, down: [] }))).toBe(
      'Moving: 5 of 20 shards served by their new node (25%).',
    );
    expect(resize.progressSentence(tracking('seen', { phase: 'moving', moved: 5, moving: 20, percent: 25, down: [] }))).toBe(
      'A ring change (epoch 5) is moving: 5 of 20 shards served by their new node (25%).',
    );
    expect(resize.progressSentence(tracking('here', { phase: 'newer', newerEpoch: 6, moved: 5, percent: 25, down: [] }))).toBe(
      'A newer ring change (epoch 6) is moving shards: this one completes with it.',
    );
  });

  it('says "all served" only when no node that is down still has shards', () => {
    expect(resize.progressSentence(tracking('here', { phase: 'done', done: true, moving: 20, percent: 100, down: [] }))).toBe(
      'Done: all 20 moved shards are served (ring epoch 5).',
    );
    const down = resize.progressSentence(tracking('here', { phase: 'done', done: true, moving: 20, down: [{ id: 'n3', shards: 21 }] }));
    expect(down).not.toMatch(/all .* served/);
    expect(down).toBe('Handoffs finished (ring epoch 5), but not every shard is served:');
  });
});

describe('admin console: the page', () => {
  it('has a language switch of two buttons, each in its own language, always visible', () => {
    const group = tagWith('data-testid', 'lang-switch');
    expect(group).toMatch(/^<div\b/);
    expect(group).toContain('role="group"');
    expect(page).not.toMatch(/<select[^>]*lang-switch/);
    const en = tagWith('data-testid', 'lang-en');
    const zh = tagWith('data-testid', 'lang-zh');
    for (const [tag, lang] of [
      [en, 'en'],
      [zh, 'zh'],
    ] as const) {
      expect(tag).toMatch(/^<button\b/);
      expect(tag).toContain(`lang="${lang}"`);
      expect(tag).toContain(`data-lang="${lang}"`);
      expect(tag).toMatch(/aria-pressed="(true|false)"/);
    }
  });

  it('turns autocomplete off on the admin token input, and names the progress bar', () => {
    expect(tagWith('data-testid', 'sign-in-token')).toContain('autocomplete="off"');
    expect(tagWith('data-testid', 'handoff-progress').replace(/\s+/g, ' ')).toContain('aria-labelledby="progress-title"');
    expect(tagWith('id', 'progress-title')).toMatch(/^<h2\b/);
  });

  it('shows progress failures apart from plan and apply errors', () => {
    expect(tagWith('data-testid', 'progress-error')).toContain('role="alert"');
    expect(tagWith('data-testid', 'resize-error')).toContain('id="resize-error"');
    const source = (file: string) => readFile(new URL(file, CONSOLE_STATIC_DIR), 'utf8');
    return source('resize-view.js').then((text) => {
      // The polling task writes only to the progress box: plan and apply errors stay until the next plan or apply.
      const task = text.slice(text.indexOf('createPoller('), text.indexOf('function syncPolling'));
      expect(task).toContain('progressBox');
      expect(task).not.toMatch(/\(box\b/);
    });
  });
});
