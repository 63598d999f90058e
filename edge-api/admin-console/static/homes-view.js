// The Homes page: look up a home, then its devices (with shadows), rules (resume a suspended one) and decision log.
import { api } from './api.js';
import { byId, el, emptyRow, fill } from './dom.js';
import { clearError, InputError, showError } from './errors.js';
import { t } from './i18n.js';
import { decisionRow, deviceRow, failedRow, ruleRow } from './home-tables.js';

/**
 * The state of a table read with `result` (a Promise.allSettled outcome): `{items}` once read,
 * `{error}` when the read failed. An aborted read (a newer lookup, a sign-out) is undefined: it
 * changes nothing.
 */
export function tableState(result) {
  if (result.status === 'fulfilled') return { items: result.value.items };
  return result.reason?.code === 'aborted' ? undefined : { error: result.reason };
}

/** The Homes page's controller. */
export function createHomesView() {
  const form = byId('home-form');
  const input = byId('home-search');
  const box = byId('homes-error');
  const more = byId('more-devices');
  /**
   * The home shown: `{homeId, home, devices: [{brief, shadow?, error?}], nextCursor?, rules?,
   * decisions?}`; rules and decisions are `{items}` or `{error}`, absent while loading.
   */
  let shown;
  /** Bumped by every lookup: answers to an older one are dropped. */
  let lookup = 0;
  /** Cancels the requests of the current lookup (a new lookup or a sign-out aborts them). */
  let controller = new AbortController();

  const timeZone = () => shown?.home.timezone;

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
    fill(byId('home-zone'), t('homes.timesIn'), ' ', el('span', { class: 'mono', translate: 'no', text: home.timezone }));
  }

  /** A table's rows: its items, a failed row with Retry, "none", or loading. */
  function tableRows(state, columns, toRow, emptyKey, failedKey) {
    if (state === undefined) return emptyRow(columns, t('common.loading'));
    if (state.error) return failedRow(columns, failedKey, state.error, () => void loadTables(lookup));
    return state.items.length > 0 ? state.items.map(toRow) : emptyRow(columns, t(emptyKey));
  }

  function renderDevices() {
    const devices = shown.devices.map(deviceRow);
    fill(byId('device-rows'), devices.length > 0 ? devices : emptyRow(6, t(shown.devicesRead ? 'homes.noDevices' : 'common.loading')));
    // The last page has no cursor (absent or null).
    more.hidden = !shown.nextCursor;
  }

  function render() {
    byId('home-detail').hidden = shown === undefined;
    if (!shown) return;
    renderFacts();
    renderDevices();
    const resumeOf = (rule) => (event) => {
      event.currentTarget.disabled = true;
      void resume(rule.id);
    };
    fill(
      byId('rule-rows'),
      tableRows(shown.rules, 5, (rule) => ruleRow(rule, resumeOf(rule), timeZone()), 'homes.noRules', 'homes.rulesFailed'),
    );
    fill(
      byId('decision-rows'),
      tableRows(shown.decisions, 5, (entry) => decisionRow(entry, timeZone()), 'homes.noDecisions', 'homes.decisionsFailed'),
    );
  }

  /**
   * Appends the next page of devices, then fills in each shadow as it arrives. Shadows are read at
   * the tab's bulk pace (api.device: 8 a second, a 429 retried after the wait it asks for), so
   * a home of a thousand devices does not drain the admin token's or the home's rate limit; a
   * shadow that cannot be read shows why on its row.
   */
  async function loadDevices(mine) {
    const { homeId, nextCursor } = shown;
    const { signal } = controller;
    const page = await api.devices(homeId, nextCursor, signal);
    if (mine !== lookup) return;
    const first = shown.devices.length;
    shown = {
      ...shown,
      devicesRead: true,
      devices: [...shown.devices, ...page.items.map((brief) => ({ brief }))],
      nextCursor: page.nextCursor ?? undefined,
    };
    render();
    await Promise.all(
      page.items.map(async (brief, i) => {
        const read = await api.device(homeId, brief.deviceId, signal).then(
          (shadow) => ({ brief, shadow }),
          (error) => ({ brief, error }),
        );
        if (mine !== lookup || read.error?.code === 'aborted') return;
        const devices = [...shown.devices];
        devices[first + i] = read;
        shown = { ...shown, devices };
        renderDevices();
      }),
    );
  }

  /** Reads rules and decisions, each table on its own: one failing leaves the other shown. */
  async function loadTables(mine) {
    const { homeId } = shown;
    const { signal } = controller;
    shown = {
      ...shown,
      rules: shown.rules?.error ? undefined : shown.rules,
      decisions: shown.decisions?.error ? undefined : shown.decisions,
    };
    render();
    const [rules, decisions] = await Promise.allSettled([api.rules(homeId, signal), api.decisions(homeId, signal)]);
    if (mine !== lookup) return;
    shown = { ...shown, rules: tableState(rules) ?? shown.rules, decisions: tableState(decisions) ?? shown.decisions };
    render();
  }

  /** Shows the failure of a load of the current lookup (an aborted one is not a failure). */
  const report = (mine) => (err) => {
    if (mine === lookup && err?.code !== 'aborted') showError(box, err);
  };

  async function lookUp() {
    const mine = ++lookup;
    controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    clearError(box);
    const homeId = input.value.trim();
    if (homeId === '') {
      shown = undefined;
      render();
      showError(box, new InputError('homes.needHomeId'));
      return;
    }
    try {
      const home = await api.home(homeId, signal);
      if (mine !== lookup) return;
      shown = { homeId, home, devices: [] };
      render();
    } catch (err) {
      if (mine !== lookup) return;
      shown = undefined;
      render();
      report(mine)(err);
      return;
    }
    await Promise.all([loadDevices(mine).catch(report(mine)), loadTables(mine)]);
  }

  async function resume(ruleId) {
    const mine = lookup;
    clearError(box);
    try {
      await api.resumeRule(shown.homeId, ruleId);
    } catch (err) {
      showError(box, err);
    }
    if (mine === lookup) await loadTables(mine);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void lookUp();
  });
  more.addEventListener('click', () => {
    const mine = lookup;
    more.disabled = true;
    void loadDevices(mine)
      .catch(report(mine))
      .finally(() => (more.disabled = false));
  });

  return {
    show() {
      input.focus();
    },
    hide() {},
    /** Forgets the home shown and cancels its reads (sign-out). */
    reset() {
      lookup++;
      controller.abort();
      controller = new AbortController();
      shown = undefined;
      input.value = '';
      clearError(box);
      render();
    },
    relabel: render,
  };
}
