/**
 * The admin console in a real browser: Debian's chromium (playwright-core) on `GET /admin` of real
 * node processes sharing a private redis-server. Sign in (a wrong token refused in both languages),
 * 3 nodes, English ⇄ 中文 with nothing left untranslated, a home's devices, rules and decisions with
 * a storm-suspended rule resumed, a plan naming an unknown node refused, a 4th node planned, applied
 * and watched until every moved shard is served, and a change refused while another one moves.
 * Screenshots of each step go to test-results/admin-console/ (and the README's to docs/screenshots/
 * with UPDATE_SCREENSHOTS=1).
 */
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { clusterTestFile, provisionHome, ShardSampler, TestCluster, type Api } from '../support/cluster-harness.ts';
import { launchChromium, pageProblems, Screenshots } from '../support/browser.ts';
import { dictionaryProblems, loadDictionary, untranslated } from '../support/untranslated.ts';
import { HubClient } from '../../tools/hub-client/hub-client.ts';

const ADMIN = 'admin-token-for-console-tests';
const SHARDS = 64;
const FIRST = ['n1', 'n2', 'n3'];
const JOINING = 'n4';
const HOME = 'console-home';
/** How long the page has to show what the API answers (it polls at most every second). */
const SHOWN = { timeout: 10_000 };

const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 'ui' });
const shots = new Screenshots('admin-console');

let cluster: TestCluster;
let browser: Browser;
let api: Api;
let base: string;
/** The browser context of the running test, and what its pages reported on their own. */
let context: BrowserContext | undefined;
let problems: string[] = [];

beforeAll(async () => {
  cluster = new TestCluster({
    redisUrl: file.redis.url,
    cluster: `${file.redis.cluster}ui`,
    adminToken: ADMIN,
    shards: SHARDS,
    // A node is paused for PAUSE_MS below and must stay a member: a heartbeat that outlives it.
    env: { HEARTBEAT_TTL_MS: '6000' },
  });
  // allSettled, not all: when one fails to start, what did start is still there for afterAll to close.
  const [launched, ...nodes] = await Promise.allSettled([launchChromium(), ...FIRST.map((id) => cluster.start(id))]);
  if (launched.status === 'fulfilled') browser = launched.value;
  const failed = [launched, ...nodes].find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  await cluster.settled('n1', FIRST);
  api = cluster.api('n1');
  base = `http://127.0.0.1:${cluster.node('n1').httpPort}`;
}, 60_000);

afterAll(async () => {
  try {
    await context?.close().catch(() => {});
    await browser?.close();
  } finally {
    await cluster?.close();
  }
});

beforeEach(async (test) => {
  await context?.close();
  context = undefined;
  problems = [];
  test.onTestFailed(async () => {
    const pages = context?.pages() ?? [];
    for (const p of pages) console.error(`screenshot of the failure: ${await shots.take(p, `failed-${test.task.name.slice(0, 40)}`)}`);
    console.error(`page problems: ${JSON.stringify(problems)}\n${cluster.outputs()}`);
  });
});

/**
 * A fresh browser context (its own storage: signed out, no language chosen) with one page on /admin,
 * whose errors go to `problems` as they happen; responses with one of `provoked` statuses (the test's
 * own bad input) are not problems.
 */
async function openConsole(provoked: readonly number[] = []): Promise<Page> {
  await context?.close();
  context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  const page = await context.newPage();
  pageProblems(page, problems, provoked);
  await page.goto(`${base}/admin`);
  return page;
}

const byId = (page: Page, testId: string): Locator => page.getByTestId(testId);

/** Chooses `lang` with the header's switch (a button per language) and waits for `<html lang>` to follow. */
async function switchTo(page: Page, lang: 'en' | 'zh'): Promise<void> {
  const button = byId(page, 'lang-switch').locator(`button[data-lang="${lang}"]`);
  await button.click();
  await expect.poll(() => button.getAttribute('aria-pressed')).toBe('true');
  await expect.poll(() => page.getAttribute('html', 'lang')).toBe(lang);
}

/** Opens a view of the console by its header link. */
async function view(page: Page, name: 'cluster' | 'resize' | 'homes'): Promise<void> {
  await page.locator(`#nav a[data-view="${name}"]`).click();
}

async function signIn(page: Page, token = ADMIN): Promise<void> {
  await byId(page, 'sign-in-token').fill(token);
  await byId(page, 'sign-in-button').click();
}

/** The API's answer to `path` with the admin token (fails the test on anything but 200). */
async function adminGet(path: string): Promise<any> {
  const r = await api('GET', path, ADMIN);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

describe('admin console (chromium, real node processes, private redis-server)', () => {
  it('a missing chromium fails the test with what to install, never skips it', async () => {
    await expect(launchChromium('/nonexistent/chromium')).rejects.toThrow(
      /\/nonexistent\/chromium is missing: install Debian's chromium package/,
    );
  });

  it('signs in: a wrong token shows the API message under a label in the current language; the admin token shows 3 nodes', async () => {
    const page = await openConsole([401]);
    await expect.poll(() => page.getAttribute('html', 'lang')).toBe('en');
    const refusal = await api('GET', '/v1/admin/cluster', 'not-the-admin-token');
    expect(refusal.status).toBe(401);
    const apiMessage = refusal.body.error.message as string;
    const error = byId(page, 'sign-in-error');

    await signIn(page, 'not-the-admin-token');
    await expect.poll(() => error.innerText(), SHOWN).toContain(apiMessage);
    const english = await error.innerText();
    await shots.take(page, 'sign-in-wrong-token-en');
    await switchTo(page, 'zh');
    await signIn(page, 'another-wrong-token');
    await expect.poll(() => error.innerText(), SHOWN).toContain(apiMessage);
    const chinese = await error.innerText();
    expect(await untranslated(page, await loadDictionary(), [apiMessage])).toEqual([]);
    // The same API message under a translated label.
    expect(chinese).not.toBe(english);
    expect(chinese.replace(apiMessage, '')).toMatch(/\p{Script=Han}/u);
    expect(english.replace(apiMessage, '')).not.toMatch(/\p{Script=Han}/u);
    await shots.take(page, 'sign-in-wrong-token-zh');

    await switchTo(page, 'en');
    await signIn(page);
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(3);
    const status = await adminGet('/v1/admin/cluster');
    await expect.poll(() => byId(page, 'ring-epoch').innerText(), SHOWN).toBe(String(status.epoch));
    for (const id of FIRST) await expect.poll(() => byId(page, 'node-row').filter({ hasText: id }).count()).toBe(1);
    expect(await byId(page, 'shard-map').isVisible()).toBe(true);
    await shots.take(page, 'cluster-en', 'console-cluster-en');
    expect(problems).toEqual([]);
  }, 30_000);

  it('switches to 中文 and back: <html lang> follows, the choice survives a reload, nothing is left in English', async () => {
    const dictionary = await loadDictionary();
    // No English in the Chinese texts themselves, but for the proper names listed.
    expect(dictionaryProblems(dictionary)).toEqual([]);
    const page = await openConsole();
    await signIn(page);
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(3);
    const data = [...dataOf(await adminGet('/v1/admin/cluster')), JOINING];
    // The check sees English where there is English.
    expect((await untranslated(page, dictionary, data)).length).toBeGreaterThan(10);
    await switchTo(page, 'zh');
    await page.reload();
    await expect.poll(() => page.getAttribute('html', 'lang')).toBe('zh');
    // Still signed in (the token is kept for the browser session), still in Chinese, on every view.
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(3);
    // The check sees Chinese where there is Chinese.
    expect((await untranslated(page, dictionary, data, 'en')).length).toBeGreaterThan(10);
    expect(await untranslated(page, dictionary, data)).toEqual([]);
    await shots.take(page, 'cluster-zh', 'console-cluster-zh');
    await view(page, 'homes');
    await expect.poll(() => byId(page, 'home-search').isVisible()).toBe(true);
    expect(await untranslated(page, dictionary, data)).toEqual([]);
    // A plan previewed in Chinese (planned only: nothing is applied).
    await view(page, 'resize');
    await planAdd(page, JOINING);
    expect(await untranslated(page, dictionary, data)).toEqual([]);
    await shots.take(page, 'plan-zh');

    // Back to English: the preview and every other text follow, no Chinese is left but in the switch.
    await switchTo(page, 'en');
    await expect.poll(() => byId(page, 'plan-moves').innerText()).toMatch(/shards/);
    expect(await untranslated(page, dictionary, data, 'en')).toEqual([]);
    await page.reload();
    await expect.poll(() => page.getAttribute('html', 'lang')).toBe('en');
    await view(page, 'cluster');
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(3);
    expect(await untranslated(page, dictionary, data, 'en')).toEqual([]);
    await view(page, 'homes');
    await expect.poll(() => byId(page, 'home-search').isVisible()).toBe(true);
    expect(await untranslated(page, dictionary, data, 'en')).toEqual([]);
    expect(problems).toEqual([]);
  }, 30_000);

  it('looks up a home: its devices with shadows, rules and decisions; resumes the rule storm control suspended', async () => {
    const { secret, appToken } = await provisionHome(api, ADMIN, HOME);
    const chatty = {
      id: 'chatty',
      name: 'Chatty',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      then: [{ type: 'notify', message: 'motion' }],
    };
    const dark = {
      id: 'night-light',
      name: 'Light on motion when dark',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
      then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
    };
    for (const rule of [chatty, dark]) {
      const put = await api('PUT', `/v1/homes/${HOME}/rules/${rule.id}`, appToken, rule);
      expect(put.status, JSON.stringify(put.body)).toBe(201);
    }
    const hub = new HubClient(cluster.grpc('n2'), secret);
    file.cleanup(() => hub.close());
    hub.hello('hub1', HOME, [
      { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
      { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
    ]);
    await hub.welcome(10_000);
    // Motion on and off 12 times in a bright room: `night-light`'s condition fails each time, and
    // `chatty` fires more than 10 times within 10 s: storm control suspends it.
    const motion = Array.from({ length: 24 }, (_, i) => ({
      seq: i + 1,
      device: 'motion1',
      attributes: { motion: i % 2 === 0, illuminance: 300 },
    }));
    hub.reports([...motion, { seq: 25, device: 'light1', attributes: { on: false, brightness: 10 } }]);
    await hub.ackAtLeast(25, 10_000);
    const desired = await api('PATCH', `/v1/homes/${HOME}/devices/light1`, appToken, { desired: { on: true, brightness: 80 } });
    expect(desired.status, JSON.stringify(desired.body)).toBe(200);
    await vi.waitFor(async () => expect((await api('GET', `/v1/homes/${HOME}/rules/chatty`, appToken)).body.suspended).toBeDefined(), {
      timeout: 10_000,
      interval: 50,
    });

    const page = await openConsole();
    await signIn(page);
    await view(page, 'homes');
    await byId(page, 'home-search').fill(HOME);
    await byId(page, 'home-search').press('Enter');
    await expect.poll(() => byId(page, 'device-row').count(), SHOWN).toBe(2);
    await expect.poll(() => byId(page, 'rule-row').count(), SHOWN).toBe(2);
    await expect.poll(() => byId(page, 'decision-row').count(), SHOWN).toBeGreaterThan(0);
    // The light's shadow: reported, desired and the delta between them.
    const light = byId(page, 'device-row').filter({ hasText: 'light1' });
    await expect.poll(() => light.innerText()).toMatch(/brightness[^]*10[^]*80/);
    // Both devices fit one page (the API's nextCursor is null): nothing more to load.
    expect(await page.locator('#more-devices').isVisible()).toBe(false);
    const chattyRow = page.locator('[data-testid="rule-row"][data-rule-id="chatty"]');
    const resume = chattyRow.getByRole('button');
    await expect.poll(() => chattyRow.getAttribute('data-suspended')).toBe('true');
    await expect.poll(() => resume.count()).toBe(1);
    const other = page.locator('[data-testid="rule-row"][data-rule-id="night-light"]');
    expect(await other.getAttribute('data-suspended')).toBe('false');
    expect(await other.getByRole('button').count()).toBe(0);
    await shots.take(page, 'home', 'console-home');

    await resume.click();
    await expect.poll(() => chattyRow.getAttribute('data-suspended'), SHOWN).toBe('false');
    expect(await resume.count()).toBe(0);
    const rule = await api('GET', `/v1/homes/${HOME}/rules/chatty`, appToken);
    expect(rule.status).toBe(200);
    expect(rule.body.suspended).toBeUndefined();
    await shots.take(page, 'home-resumed');
    await switchTo(page, 'zh');
    await expect.poll(() => chattyRow.innerText()).toMatch(/\p{Script=Han}/u);
    expect(await untranslated(page, await loadDictionary(), [HOME, 'hub1'])).toEqual([]);
    await shots.take(page, 'home-zh');
    hub.close();
    expect(problems).toEqual([]);
  }, 40_000);

  it('a plan naming an unknown node shows the API message (400) in the current language', async () => {
    const page = await openConsole([400]);
    await signIn(page);
    await view(page, 'resize');
    const refusal = await api('POST', '/v1/admin/ring/plan?detail=true', ADMIN, { drain: ['no-such-node'] });
    expect(refusal.status).toBe(400);
    const apiMessage = refusal.body.error.message as string;
    const error = byId(page, 'resize-error');
    const english = await planUnknown(page, apiMessage);
    await shots.take(page, 'plan-unknown-node-en');
    await switchTo(page, 'zh');
    const chinese = await planUnknown(page, apiMessage);
    expect(chinese).not.toBe(english);
    expect(chinese.replace(apiMessage, '')).toMatch(/\p{Script=Han}/u);
    await shots.take(page, 'plan-unknown-node-zh');
    expect(await error.isVisible()).toBe(true);
    expect(problems).toEqual([]);
  }, 30_000);

  it('plans adding a 4th node, applies it and shows progress until done: the new node owns about a quarter of the shards', async () => {
    // Running and registered, not in the ring: the plan adds it.
    await cluster.start(JOINING, { AUTO_JOIN: 'false' });
    const page = await openConsole();
    await signIn(page);
    await expect.poll(() => byId(page, 'node-row').filter({ hasText: JOINING }).count(), SHOWN).toBe(1);
    const before = await adminGet('/v1/admin/cluster');
    const plan = await api('POST', '/v1/admin/ring/plan?detail=true', ADMIN, { add: [{ id: JOINING }] });
    expect(plan.status).toBe(200);

    await view(page, 'resize');
    await planAdd(page, JOINING);
    expect(await byId(page, 'plan-moves').innerText()).toContain(String(plan.body.moving));
    await shots.take(page, 'plan-add-n4');

    // Every state the progress bar shows from here on, in order (and whether it was visible then).
    await page.evaluate(RECORD_PROGRESS_STATES);
    await byId(page, 'apply-button').click();
    const progress = byId(page, 'handoff-progress');
    await expect.poll(() => progress.isVisible(), SHOWN).toBe(true);
    await shots.take(page, 'resize-progress');
    await expect.poll(() => progress.getAttribute('data-state'), { timeout: 30_000 }).toBe('done');
    // Shown moving first, then done, and never moving again.
    const states = await page.evaluate<string[]>('window.__states');
    expect(states.filter((s, i) => s !== states[i - 1])).toEqual(['moving', 'done']);
    // The README's picture shows the plan and its finished progress (12 shards move in well under a second).
    await shots.take(page, 'resize-done', 'console-resize');
    // The preview and the finished progress in Chinese too.
    await switchTo(page, 'zh');
    expect(await untranslated(page, await loadDictionary(), [...FIRST, JOINING])).toEqual([]);
    await switchTo(page, 'en');

    const after = await cluster.settled('n1', [...FIRST, JOINING]);
    expect(after.epoch).toBe(before.epoch + 1);
    const joined = after.nodes.find((n) => n.id === JOINING)!;
    expect(joined).toMatchObject({ state: 'active', alive: true });
    expect(joined.shardsOwned / SHARDS).toBeGreaterThanOrEqual(0.15);
    expect(joined.shardsOwned / SHARDS).toBeLessThanOrEqual(0.35);
    await view(page, 'cluster');
    await expect.poll(() => byId(page, 'ring-epoch').innerText(), SHOWN).toBe(String(after.epoch));
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(4);
    await shots.take(page, 'cluster-4-nodes');
    expect(problems).toEqual([]);
  }, 60_000);

  it('applying while another change moves shards shows the API message (409) in the current language', async () => {
    await ensureJoined();
    const page = await openConsole([409]);
    await signIn(page);
    await expect.poll(() => byId(page, 'node-row').count(), SHOWN).toBe(4);
    await switchTo(page, 'zh');
    await view(page, 'resize');
    await planAdd(page, 'n5');

    // Another change through the API. n3 paused cannot take up the new ring: the change is still
    // moving when the console applies, however fast the machine. n3 must be let go well before it
    // fences itself (HEARTBEAT_TTL_MS 6 s here, refreshed every 1.2 s, minus a 0.6 s margin: at the
    // earliest 4.2 s after the stop) and its heartbeat expires (another node then takes it out): a
    // timer lets it go after PAUSE_MS whatever the test is waiting for, and every step below gives up by then.
    const sampler = new ShardSampler(cluster.opts.redisUrl, cluster.opts.cluster, SHARDS);
    file.cleanup(() => sampler.stop());
    const leasesBefore = await sampler.sample();
    const printed = new Map([...cluster.nodes].map(([id, n]) => [id, n.output().length]));
    const paused = cluster.node('n3');
    paused.child.kill('SIGSTOP');
    const resume = setTimeout(() => paused.child.kill('SIGCONT'), PAUSE_MS);
    file.cleanup(() => {
      clearTimeout(resume);
      paused.child.kill('SIGCONT');
    });
    const deadline = Date.now() + PAUSE_MS;
    const left = (): { timeout: number } => ({ timeout: Math.max(1, deadline - Date.now()) });
    const inTime = <T>(what: string, step: Promise<T>): Promise<T> => beforeDeadline(step, deadline, `${what} while n3 was paused`);
    // Locator calls inside the polls below wait no longer than that either (Playwright's default is 30 s).
    page.setDefaultTimeout(PAUSE_MS);
    try {
      const other = await inTime('POST /v1/admin/ring', api('POST', '/v1/admin/ring', ADMIN, { weights: { n1: 2 } }));
      expect(other.status, JSON.stringify(other.body)).toBe(202);
      const busy = await inTime('POST /v1/admin/ring', api('POST', '/v1/admin/ring', ADMIN, { add: [{ id: 'n5' }] }));
      expect(busy.status, JSON.stringify(busy.body)).toBe(409);
      // The ring moved on since the preview: applying shows the new preview first, with a warning.
      await byId(page, 'apply-button').click(left());
      const warning = byId(page, 'plan-warning');
      await expect.poll(() => warning.isVisible(), left()).toBe(true);
      expect(await warning.innerText(left())).toMatch(/\p{Script=Han}/u);
      await expect.poll(() => byId(page, 'apply-button').isEnabled(left()), left()).toBe(true);
      await byId(page, 'apply-button').click(left());
      const error = byId(page, 'resize-error');
      // The message counts the handoffs pending when it was made: any count.
      const message = new RegExp(escapeRegExp(busy.body.error.message as string).replace(/\d+/g, '\\d+'));
      await expect.poll(() => error.innerText(left()), left()).toMatch(message);
      expect((await error.innerText(left())).replace(message, '')).toMatch(/\p{Script=Han}/u);
    } finally {
      clearTimeout(resume);
      paused.child.kill('SIGCONT');
      page.setDefaultTimeout(30_000);
    }
    // The warning, the new preview, the refusal and the other change's progress: all in Chinese.
    expect(await untranslated(page, await loadDictionary(), [...FIRST, JOINING, 'n5'])).toEqual([]);
    await shots.take(page, 'apply-while-moving-zh');
    const after = await cluster.settled('n1', [...FIRST, JOINING], 30_000);
    expect(after.nodes.map((n) => n.id)).not.toContain('n5');

    // n3 was paused, not lost: still in the ring and alive, serving what it is assigned, and every
    // shard it held before and holds now under the same lease (a lease lost or taken over would
    // have a new fence token). No node saw a heartbeat expire or took a lease over.
    const n3 = after.nodes.find((n) => n.id === 'n3');
    expect(n3).toMatchObject({ state: 'active', alive: true, shardsOwned: n3?.shardsAssigned });
    const leasesAfter = await sampler.sample();
    const kept = leasesBefore.holders.flatMap((h, s) => (h === 'n3' && leasesAfter.holders[s] === 'n3' ? [s] : []));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.filter((s) => leasesAfter.fences[s] !== leasesBefore.fences[s])).toEqual([]);
    for (const [id, n] of cluster.nodes) {
      expect(n.output().slice(printed.get(id) ?? 0), id).not.toMatch(/heartbeats expired|taking over the leases|shard lease lost/);
    }
    expect(problems).toEqual([]);
  }, 60_000);
});

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Milliseconds n3 stays paused in the 409 test: well before its heartbeat can expire (4 s at the earliest). */
const PAUSE_MS = 3_000;

/** `step`, or a rejection naming `what` once `deadline` (epoch ms) passed first. */
async function beforeDeadline<T>(step: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done in time`)), Math.max(1, deadline - Date.now()));
  });
  try {
    return await Promise.race([step, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * n4 in the ring: the test before adds it through the console. Run alone (or after that test failed
 * half-way), this adds it through the API, starting its process when it is not running.
 */
async function ensureJoined(): Promise<void> {
  const status = await adminGet('/v1/admin/cluster');
  if (status.nodes.some((n: { id: string; state: string }) => n.id === JOINING && n.state === 'active')) return;
  if (!cluster.running().includes(JOINING)) await cluster.start(JOINING, { AUTO_JOIN: 'false' });
  await vi.waitFor(
    async () => expect((await adminGet('/v1/admin/cluster')).nodes).toContainEqual(expect.objectContaining({ id: JOINING, alive: true })),
    {
      timeout: 10_000,
      interval: 100,
    },
  );
  await cluster.settled('n1', FIRST, 30_000);
  const added = await api('POST', '/v1/admin/ring', ADMIN, { add: [{ id: JOINING }] });
  expect(added.status, `adding ${JOINING} for this test: ${JSON.stringify(added.body)}`).toBe(202);
  await cluster.settled('n1', [...FIRST, JOINING], 30_000);
}

/** Plans adding `nodeId` on the Resize page and waits for the preview to name it. */
async function planAdd(page: Page, nodeId: string): Promise<void> {
  await byId(page, 'plan-op').selectOption('add');
  await byId(page, 'plan-add-id').fill(nodeId);
  await byId(page, 'plan-button').click();
  await expect.poll(() => byId(page, 'plan-moves').innerText(), SHOWN).toContain(nodeId);
}

/**
 * Run in the page: records in `window.__states` the progress bar's `data-state` each time the
 * console sets it, prefixed `hidden:` when the bar was not visible then.
 */
const RECORD_PROGRESS_STATES = `(() => {
  const bar = document.querySelector('[data-testid="handoff-progress"]');
  window.__states = [];
  new MutationObserver(() => {
    const state = bar.getAttribute('data-state');
    window.__states.push(bar.checkVisibility() ? state : 'hidden:' + state);
  }).observe(bar, { attributes: true, attributeFilter: ['data-state'] });
})()`;

/** Plans draining a node the ring does not have; resolves the error shown once it carries `apiMessage`. */
async function planUnknown(page: Page, apiMessage: string): Promise<string> {
  const error = byId(page, 'resize-error');
  await byId(page, 'plan-op').selectOption('drain');
  await byId(page, 'plan-add-id').fill('no-such-node');
  await byId(page, 'plan-button').click();
  await expect.poll(() => error.innerText(), SHOWN).toContain(apiMessage);
  return error.innerText();
}

/** Data the page shows as the API gives it (ids, addresses): never translated. */
function dataOf(status: any): string[] {
  return (status.nodes as { id: string; address: string }[]).flatMap((n) => [n.id, n.address]);
}
