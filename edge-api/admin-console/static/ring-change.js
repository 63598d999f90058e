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

/**
 * How far the change applied as ring `epoch`, moving `moving` shards, has got by `status` (a
 * ClusterStatus). `done` once the status is of that epoch or later, no handoff is in flight and
 * every live node owns exactly the shards the ring assigns it. `moved` counts the shards that have
 * arrived: `moving` less those live nodes still lack (dead nodes serve nothing and are left out);
 * `percent` is 0..100, and 100 only when done.
 */
export function handoffProgress(status, epoch, moving) {
  const live = status.nodes.filter((n) => n.alive);
  const missing = live.reduce((sum, n) => sum + Math.max(0, n.shardsAssigned - n.shardsOwned), 0);
  const done = status.epoch >= epoch && !status.handoffs.inFlight && live.every((n) => n.shardsOwned === n.shardsAssigned);
  const moved = done ? moving : Math.max(0, Math.min(moving, moving - missing));
  // 100 % only when done: the last shards may have arrived while a handoff still finishes.
  const percent = done ? 100 : moving === 0 ? 0 : Math.min(99, Math.floor((moved * 100) / moving));
  return { done, moved, moving, percent };
}
