// The Resize page: a ring change planned (moves per node), applied, and followed until every moved shard is served.
import { api } from './api.js';
import { byId, el, fill } from './dom.js';
import { clearError, InputError, showError } from './errors.js';
import { t } from './i18n.js';
import { colorOf } from './node-colors.js';
import { changeOf, handoffProgress, usesWeight } from './ring-change.js';

/** Milliseconds between two reads of the cluster while a change moves. */
const PROGRESS_POLL_MS = 1_000;

/** What a 409 means when applying: another change is still moving shards. */
const BUSY = { failed_precondition: 'resize.busy' };

/** What a 400 means for a change: the ring refuses it (an unknown node, a bad weight); the API says which. */
const REFUSED = { invalid_argument: 'resize.refused' };

function nodeLabel(id) {
  const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
  swatch.style.backgroundColor = colorOf(id);
  return el('span', { class: 'node-id' }, swatch, el('span', { class: 'mono', text: id }));
}

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
        el('span', { class: 'mono', text: n.id }),
        ` (${t('resize.nodeWeight', { weight: n.weight })})`,
      ]),
    ),
  ];
}

/** The Resize page's controller. */
export function createResizeView() {
  const form = byId('plan-form');
  const op = byId('plan-op');
  const nodeInput = byId('plan-node');
  const weightInput = byId('plan-weight');
  const planButton = byId('plan-button');
  const applyButton = byId('apply-button');
  const box = byId('resize-error');
  /** The change planned and its plan; undefined until planned, and again once applied or edited. */
  let planned;
  /** The plan shown (kept after applying). */
  let shown;
  /** The change being followed: `{epoch, moving, progress}`. */
  let tracking;
  let loop = 0;
  let timer;

  function renderPlan() {
    const moves = byId('plan-moves');
    if (!shown) fill(moves, el('p', { class: 'muted', text: t('resize.noPlan') }));
    else fill(moves, planPreview(shown.plan), planned ? null : el('p', { class: 'muted', text: t(shown.note) }));
    applyButton.disabled = planned === undefined;
  }

  function renderProgress() {
    const card = byId('progress-card');
    card.hidden = tracking === undefined;
    if (!tracking) return;
    const bar = byId('handoff-progress');
    const p = tracking.progress ?? { done: false, moved: 0, moving: tracking.moving, percent: 0 };
    bar.dataset.state = p.done ? 'done' : 'moving';
    bar.setAttribute('aria-valuenow', String(p.percent));
    byId('progress-fill').style.width = `${p.percent}%`;
    byId('progress-text').textContent = p.done
      ? t('resize.progressDone', { moving: p.moving, epoch: tracking.epoch })
      : t('resize.progressMoving', { moved: p.moved, moving: p.moving, percent: p.percent });
  }

  function syncWeight() {
    weightInput.disabled = !usesWeight(op.value);
  }

  /** Editing the form after a plan spends it: apply what was previewed, or nothing. */
  function invalidate() {
    if (!planned) return;
    planned = undefined;
    shown = { ...shown, note: 'resize.planStale' };
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

  async function follow(mine) {
    try {
      const status = await api.cluster();
      if (mine !== loop) return;
      tracking.progress = handoffProgress(status, tracking.epoch, tracking.moving);
      clearError(box);
      renderProgress();
      if (tracking.progress.done) return;
    } catch (err) {
      if (mine !== loop) return;
      showError(box, err);
    }
    timer = setTimeout(() => void follow(mine), PROGRESS_POLL_MS);
  }

  async function apply() {
    if (!planned) return;
    clearError(box);
    applyButton.disabled = true;
    try {
      const applied = await api.applyRing(planned.change);
      planned = undefined;
      tracking = { epoch: applied.epoch, moving: applied.moving };
      renderPlan();
      renderProgress();
      clearTimeout(timer);
      void follow(++loop);
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
    show() {},
    hide() {},
    /** Forgets the plan and stops following (sign-out). */
    reset() {
      loop++;
      clearTimeout(timer);
      planned = undefined;
      shown = undefined;
      tracking = undefined;
      clearError(box);
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
