// Pure ring-change logic of the Resize page: the request body of a form, and a change's progress.

/** The operations the form offers. */
export const OPERATIONS = Object.freeze(['add', 'drain', 'remove', 'reweight']);

/**
 * The RingChange body (`POST /v1/admin/ring/plan` and `/v1/admin/ring`) for `op` on `nodeId`
 * with `weightText` (the weight field as typed: optional for add, required for reweight, unused
 * otherwise). Answers `{change}`, or `{problem}`: the dictionary key of what is wrong. Ranges and
 * unknown nodes are the API's to refuse (its message says which).
 */
export function changeOf(op, nodeId, weightText) {
  const id = String(nodeId ?? '').trim();
  if (id === '') return { problem: 'resize.needNodeId' };
  const typed = String(weightText ?? '').trim();
  const weight = typed === '' ? undefined : Number(typed);
  if (weight !== undefined && !(Number.isFinite(weight) && weight > 0)) return { problem: 'resize.badWeight' };
  switch (op) {
    case 'add':
      return { change: { add: [weight === undefined ? { id } : { id, weight }] } };
    case 'drain':
      return { change: { drain: [id] } };
    case 'remove':
      return { change: { remove: [id] } };
    case 'reweight':
      // A computed key defines an own property, even for an id such as `__proto__`.
      return weight === undefined ? { problem: 'resize.needWeight' } : { change: { weights: { [id]: weight } } };
    default:
      return { problem: 'resize.badOperation' };
  }
}

/** Whether the weight field means anything for `op`. */
export const usesWeight = (op) => op === 'add' || op === 'reweight';

/** Shards the live nodes are assigned but do not hold yet (dead nodes serve nothing and are left out). */
export function missingShards(status) {
  return status.nodes.filter((n) => n.alive).reduce((sum, n) => sum + Math.max(0, n.shardsAssigned - n.shardsOwned), 0);
}

/** The nodes that are down yet still assigned shards: `[{id, shards}]`, those shards not served by anyone. */
export const downNodes = (status) =>
  status.nodes.filter((n) => !n.alive && n.shardsAssigned > 0).map((n) => ({ id: n.id, shards: n.shardsAssigned }));

/**
 * How far the change applied as ring `epoch`, moving `moving` shards, has got by `status` (a
 * ClusterStatus), by the API's own rule: `done` once the status is of that epoch or later and
 * `handoffs.inFlight` is false. `phase`: `moving`, `done`, or `newer` while a later change (ring
 * `newerEpoch`) moves: its shards are not counted against ours (`moved` and `percent` are then
 * undefined: the caller keeps the last ones). `moved` counts the shards that have arrived: `moving`
 * less those live nodes still lack; `percent` is 0..100, and 100 only when done. `down`: nodes
 * down that still have shards assigned (see downNodes), also when done: those shards are not served.
 */
export function handoffProgress(status, epoch, moving) {
  const down = downNodes(status);
  if (status.epoch >= epoch && !status.handoffs.inFlight) return { phase: 'done', done: true, moved: moving, moving, percent: 100, down };
  if (status.epoch > epoch)
    return { phase: 'newer', done: false, newerEpoch: status.epoch, moved: undefined, moving, percent: undefined, down };
  // A status of an older ring (read before the change reached this node): nothing has moved yet.
  const moved = status.epoch < epoch ? 0 : Math.max(0, Math.min(moving, moving - missingShards(status)));
  // 100 % only when done: the last shards may have arrived while a handoff still finishes.
  const percent = moving === 0 ? 0 : Math.min(99, Math.floor((moved * 100) / moving));
  return { phase: 'moving', done: false, moved, moving, percent, down };
}

/**
 * The change the Resize page follows once it has read `status`, from the one it followed
 * (`tracking`: `{epoch, moving, origin, progress?}`, or undefined). `origin` is `here` for a change
 * applied from this tab (its `moving` from the API's answer), `seen` for one the status shows in
 * flight (applied elsewhere, or before a reload): its `moving` is the most shards seen missing.
 * A followed change that is done stays as it is (no longer followed) until another one is in flight.
 */
export function followStatus(tracking, status) {
  const inFlight = status.handoffs.inFlight;
  if (tracking === undefined || (tracking.progress?.done && inFlight && status.epoch > tracking.epoch)) {
    if (!inFlight) return tracking;
    tracking = { epoch: status.epoch, moving: 0, origin: 'seen' };
  }
  if (tracking.progress?.done) return tracking;
  const moving =
    tracking.origin === 'seen' && status.epoch === tracking.epoch ? Math.max(tracking.moving, missingShards(status)) : tracking.moving;
  const progress = handoffProgress(status, tracking.epoch, moving);
  if (progress.phase === 'newer') {
    progress.moved = tracking.progress?.moved ?? 0;
    progress.percent = tracking.progress?.percent ?? 0;
  }
  return { ...tracking, moving, progress };
}

/** Whether the Resize page reads the cluster: while it is shown, and while a followed change is not done. */
export const keepsPolling = (shown, tracking) => shown || (tracking !== undefined && !tracking.progress?.done);

/**
 * Whether the ring moved on since the preview `previewed` (a plan) was made: a fresh plan
 * (`fresh`) of another epoch means the previewed moves are no longer what applying would do.
 */
export const planOutdated = (previewed, fresh) => previewed.epoch !== fresh.epoch;
