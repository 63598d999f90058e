// The Resize page: a ring change planned (moves per node), applied, and followed until every moved shard is served.
import { api } from './api.js';
import { byId, el, fill } from './dom.js';
import { clearError, InputError, showError } from './errors.js';
import { t } from './i18n.js';
import { nodeLabel } from './node-colors.js';
import { createPoller } from './poller.js';
import { changeOf, followStatus, keepsPolling, planOutdated, usesWeight } from './ring-change.js';

/** Milliseconds from one read of the cluster to the next while the page is shown or a change moves. */
const PROGRESS_POLL_MS = 1_000;

/** What a 409 means when applying: another change is still moving shards. */
const BUSY = { failed_precondition: 'resize.busy' };

/** What a 400 means for a change: the ring refuses it (an unknown node, a bad weight); the API says which. */
const REFUSED = { invalid_argument: 'resize.refused' };

/** What a 409 means when reading the cluster here: there is no ring (nothing can move). */
const NO_CLUSTER = { failed_precondition: 'cluster.noCluster' };

/** The plan preview: total moving, one line per flow (from → to: N shards), and the ring after it. */
function planPreview(plan) {
  if (plan.moving === 0) return [el('p', { class: 'plan-total', text: t('resize.nothingMoves') })];
  const flows = [...plan.flows].sort((a, b) => b.shards - a.shards);
  return [
    el('p', { class: 'plan-total', 'data-testid': 'plan-total', text: t('resize.moving', { count: plan.moving }) }),
    el(
      'ul',
      { class: 'flows' },
      flows.map((f) =>
        el(
          'li',
          { 'data-testid': 'plan-flow', dataset: { from: f.from, to: f.to, shards: String(f.shards) } },
          nodeLabel(f.from),
          el('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }),
          nodeLabel(f.to),
          el('span', { class: 'flow-count', text: t('resize.flowShards', { count: f.shards }) }),
        ),
      ),
    ),
    el(
      'p',
      { class: 'muted' },
      t('resize.nextRing'),
      ' ',
      plan.nextNodes.map((n, i) => [
        i > 0 ? ', ' : '',
        el('span', { class: 'mono', translate: 'no', text: n.id }),
        ` (${t('resize.nodeWeight', { weight: n.weight })})`,
      ]),
    ),
  ];
}

/** The sentence under the progress bar for `tracking` (see followStatus). */
export function progressSentence(tracking) {
  const p = tracking.progress;
  if (!p) return t('common.loading');
  if (p.phase === 'done') {
    return p.down.length > 0
      ? t('resize.progressDoneDown', { epoch: tracking.epoch })
      : t('resize.progressDone', { moving: p.moving, epoch: tracking.epoch });
  }
  if (p.phase === 'newer') return t('resize.progressNewer', { epoch: p.newerEpoch });
  const key = tracking.origin === 'here' ? 'resize.progressMoving' : 'resize.progressSeen';
  return t(key, { moved: p.moved, moving: p.moving, percent: p.percent, epoch: tracking.epoch });
}

/** The Resize page's controller. */
export function createResizeView() {
  const form = byId('plan-form');
  const op = byId('plan-op');
  const nodeInput = byId('plan-node');
  const weightInput = byId('plan-weight');
  const planButton = byId('plan-button');
  const applyButton = byId('apply-button');
  /** Errors of planning and applying: they stay until the next plan or apply. */
  const box = byId('resize-error');
  /** Errors of reading the progress: cleared by the next good read. */
  const progressBox = byId('progress-error');
  /** The change planned and its plan; undefined until planned, and again once applied or edited. */
  let planned;
  /** The plan shown (kept after applying): `{plan, note, warning?}`. */
  let shown;
  /** The change followed (see followStatus); undefined while none is known. */
  let tracking;
  let visible = false;

  function renderPlan() {
    const moves = byId('plan-moves');
    if (!shown) fill(moves, el('p', { class: 'muted', text: t('resize.noPlan') }));
    else {
      fill(
        moves,
        shown.warning && el('p', { class: 'warning', 'data-testid': 'plan-warning', role: 'status', text: t(shown.warning, shown.params) }),
        planPreview(shown.plan),
        planned ? null : el('p', { class: 'muted', text: t(shown.note) }),
      );
    }
    applyButton.disabled = planned === undefined;
  }

  function renderProgress() {
    const card = byId('progress-card');
    card.hidden = tracking === undefined;
    if (!tracking) return;
    const bar = byId('handoff-progress');
    const p = tracking.progress;
    const percent = p?.percent ?? 0;
    const sentence = progressSentence(tracking);
    bar.dataset.state = p?.done ? 'done' : 'moving';
    bar.setAttribute('aria-valuenow', String(percent));
    bar.setAttribute('aria-valuetext', sentence);
    byId('progress-fill').style.width = `${percent}%`;
    byId('progress-text').textContent = sentence;
    const down = p?.down ?? [];
    bar.dataset.warning = String(down.length > 0);
    const warnings = byId('progress-warnings');
    warnings.hidden = down.length === 0;
    fill(
      warnings,
      down.map((d) => el('li', { 'data-testid': 'progress-warning', text: t('resize.nodeDown', { node: d.id, count: d.shards }) })),
    );
  }

  function syncWeight() {
    weightInput.disabled = !usesWeight(op.value);
  }

  /** Editing the form after a plan spends it: apply what was previewed, or nothing. */
  function invalidate() {
    if (!planned) return;
    planned = undefined;
    shown = { ...shown, note: 'resize.planStale', warning: undefined };
    renderPlan();
  }

  async function plan() {
    clearError(box);
    const { change, problem } = changeOf(op.value, nodeInput.value, weightInput.value);
    if (problem) {
      showError(box, new InputError(problem));
      return;
    }
    planButton.disabled = true;
    try {
      const result = await api.planRing(change);
      planned = { change };
      shown = { plan: result, note: 'resize.planApplied' };
    } catch (err) {
      planned = undefined;
      shown = undefined;
      showError(box, err, REFUSED);
    } finally {
      planButton.disabled = false;
      renderPlan();
    }
  }

  const poller = createPoller(
    async (isCurrent) => {
      try {
        const status = await api.cluster();
        if (!isCurrent()) return;
        tracking = followStatus(tracking, status);
        clearError(progressBox);
        renderProgress();
      } catch (err) {
        if (!isCurrent()) return;
        // A node without a ring has nothing moving: not worth a warning on this page.
        if (err.code === 'failed_precondition') clearError(progressBox);
        else showError(progressBox, err, NO_CLUSTER);
      }
      syncPolling();
    },
    { periodMs: PROGRESS_POLL_MS, skip: () => document.visibilityState === 'hidden' },
  );

  /** Reads the cluster while the page is shown (a change applied elsewhere shows too) or ours is moving. */
  function syncPolling() {
    if (keepsPolling(visible, tracking)) poller.start();
    else poller.stop();
  }

  /**
   * Applies the previewed change, planned again first: when the ring moved on since the preview
   * (another epoch), the new preview is shown with a warning instead, to be applied by a second click.
   */
  async function apply() {
    if (!planned) return;
    clearError(box);
    applyButton.disabled = true;
    const { change } = planned;
    try {
      const fresh = await api.planRing(change);
      if (planOutdated(shown.plan, fresh)) {
        shown = {
          plan: fresh,
          note: 'resize.planApplied',
          warning: 'resize.planMoved',
          params: { from: shown.plan.epoch, to: fresh.epoch },
        };
        renderPlan();
        return;
      }
      const applied = await api.applyRing(change);
      planned = undefined;
      shown = { ...shown, warning: undefined };
      tracking = { epoch: applied.epoch, moving: applied.moving, origin: 'here' };
      renderPlan();
      renderProgress();
      syncPolling();
    } catch (err) {
      // The plan stands: once the other change is done, it can be applied as previewed.
      applyButton.disabled = false;
      showError(box, err, { ...REFUSED, ...BUSY });
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void plan();
  });
  applyButton.addEventListener('click', () => void apply());
  op.addEventListener('change', () => {
    syncWeight();
    invalidate();
  });
  nodeInput.addEventListener('input', invalidate);
  weightInput.addEventListener('input', invalidate);
  syncWeight();
  renderPlan();

  return {
    show() {
      visible = true;
      syncPolling();
    },
    hide() {
      visible = false;
      syncPolling();
    },
    /** Forgets the plan and stops following (sign-out). */
    reset() {
      visible = false;
      poller.stop();
      planned = undefined;
      shown = undefined;
      tracking = undefined;
      clearError(box);
      clearError(progressBox);
      form.reset();
      syncWeight();
      renderPlan();
      renderProgress();
    },
    relabel() {
      renderPlan();
      renderProgress();
    },
  };
}
