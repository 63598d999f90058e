// The Homes page: look up a home, then its devices (with shadows), rules (resume a suspended one) and decision log.
import { api } from './api.js';
import { byId, el, emptyRow, fill } from './dom.js';
import { clearError, InputError, showError } from './errors.js';
import { t } from './i18n.js';
import { decisionRow, deviceRow, ruleRow } from './home-tables.js';

/** Shadows read at once: a page of 50 devices stays well inside the admin token's rate limit. */
const SHADOW_CONCURRENCY = 4;

/** `fn` over `items`, at most `limit` at a time, results in order. */
async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The Homes page's controller. */
export function createHomesView() {
  const form = byId('home-form');
  const input = byId('home-search');
  const box = byId('homes-error');
  const more = byId('more-devices');
  /** The home shown: `{homeId, home, devices: [{brief, shadow?, error?}], nextCursor?, rules?, decisions?}` (rules and decisions absent while loading). */
  let shown;
  /** Bumped by every lookup: answers to an older one are dropped. */
  let lookup = 0;

  function renderFacts() {
    const { home } = shown;
    const fact = (key, value) => [el('dt', { text: t(key) }), el('dd', { translate: 'no', text: value })];
    fill(byId('home-name'), el('span', { translate: 'no', text: home.name || home.homeId }));
    fill(
      byId('home-facts'),
      fact('homes.fact.id', home.homeId),
      fact('homes.fact.timezone', home.timezone),
      fact('homes.fact.hubs', home.hubs.length > 0 ? home.hubs.join(', ') : '–'),
      fact('homes.fact.devices', String(home.devices.length)),
      fact('homes.fact.rules', String(home.ruleCount)),
      fact('homes.fact.scenes', String(home.sceneCount)),
    );
  }

  function render() {
    byId('home-detail').hidden = shown === undefined;
    if (!shown) return;
    renderFacts();
    const devices = shown.devices.map(deviceRow);
    fill(byId('device-rows'), devices.length > 0 ? devices : emptyRow(6, t('homes.noDevices')));
    // The last page has no cursor (absent or null).
    more.hidden = !shown.nextCursor;
    const rules = (shown.rules ?? []).map((rule) =>
      ruleRow(rule, (event) => {
        event.currentTarget.disabled = true;
        void resume(rule.id);
      }),
    );
    fill(byId('rule-rows'), rules.length > 0 ? rules : emptyRow(5, shown.rules ? t('homes.noRules') : t('common.loading')));
    const decisions = (shown.decisions ?? []).map(decisionRow);
    fill(
      byId('decision-rows'),
      decisions.length > 0 ? decisions : emptyRow(5, shown.decisions ? t('homes.noDecisions') : t('common.loading')),
    );
  }

  /** Appends the next page of devices, each with its shadow (or why it could not be read). */
  async function loadDevices(mine) {
    const { homeId, nextCursor } = shown;
    const page = await api.devices(homeId, nextCursor);
    const withShadows = await mapLimit(page.items, SHADOW_CONCURRENCY, (brief) =>
      api.device(homeId, brief.deviceId).then(
        (shadow) => ({ brief, shadow }),
        (error) => ({ brief, error }),
      ),
    );
    if (mine !== lookup) return;
    shown = { ...shown, devices: [...shown.devices, ...withShadows], nextCursor: page.nextCursor ?? undefined };
    render();
  }

  async function loadRulesAndDecisions(mine) {
    const homeId = shown.homeId;
    const [rules, decisions] = await Promise.all([api.rules(homeId), api.decisions(homeId)]);
    if (mine !== lookup) return;
    shown = { ...shown, rules: rules.items, decisions: decisions.items };
    render();
  }

  /** Runs the loads of one lookup; the first failure is shown, the others' parts stay empty. */
  async function settle(mine, loads) {
    const results = await Promise.allSettled(loads);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && mine === lookup) showError(box, failed.reason);
  }

  async function lookUp() {
    const mine = ++lookup;
    clearError(box);
    const homeId = input.value.trim();
    if (homeId === '') {
      shown = undefined;
      render();
      showError(box, new InputError('homes.needHomeId'));
      return;
    }
    try {
      const home = await api.home(homeId);
      if (mine !== lookup) return;
      shown = { homeId, home, devices: [] };
      render();
    } catch (err) {
      if (mine !== lookup) return;
      shown = undefined;
      render();
      showError(box, err);
      return;
    }
    await settle(mine, [loadDevices(mine), loadRulesAndDecisions(mine)]);
  }

  async function resume(ruleId) {
    const mine = lookup;
    clearError(box);
    try {
      await api.resumeRule(shown.homeId, ruleId);
    } catch (err) {
      showError(box, err);
    }
    if (mine === lookup) await settle(mine, [loadRulesAndDecisions(mine)]);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void lookUp();
  });
  more.addEventListener('click', () => {
    const mine = lookup;
    more.disabled = true;
    void settle(mine, [loadDevices(mine)]).finally(() => (more.disabled = false));
  });

  return {
    show() {
      input.focus();
    },
    hide() {},
    /** Forgets the home shown (sign-out). */
    reset() {
      lookup++;
      shown = undefined;
      input.value = '';
      clearError(box);
      render();
    },
    relabel: render,
  };
}
