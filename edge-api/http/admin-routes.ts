/** Ops routes (admin token): cluster status, a dry run of a ring change, and applying one. */
import type { Hono } from 'hono';
import type { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import { NoRingError, RingBusyError } from '../../cluster/cluster-admin.ts';
import { MAX_RING_NODES, weightProblem } from '../../cluster/hash-ring.ts';
import { RingChangeError, type RingChange } from '../../cluster/ring-store.ts';
import { HttpError, invalidArgument } from './http-error.ts';
import { onlyFields, readJsonObject, type JsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';

/** The admin surface of the cluster the routes need (cluster/cluster-admin.ts). */
export type ClusterAdminPort = Pick<ClusterAdmin, 'status' | 'plan' | 'apply'>;

/** A weight from the body, or a 400 naming `field` (`add[0].weight`, `weights.n1`) when it is out of (0, MAX_WEIGHT]. */
function weightAt(field: string, w: unknown): number {
  const bad = weightProblem(w);
  if (bad !== undefined) throw invalidArgument(field, bad);
  return w as number;
}

const TOO_MANY = `must name at most ${MAX_RING_NODES} nodes (the most a ring may have)`;

/**
 * Checks a ring change body `{add: [{id, weight?}], drain: [id], remove: [id], weights: {id: w}}`.
 * Weights are finite numbers in (0, MAX_WEIGHT], and each list names at most MAX_RING_NODES
 * nodes: a huge weight, or thousands of added nodes, would make every node compute millions of
 * control points on its event loop. The ring as a whole is bounded by applyChange (ring-store.ts).
 */
export function parseRingChange(body: JsonObject): RingChange {
  onlyFields(body, ['add', 'drain', 'remove', 'weights']);
  const ids = (field: string): string[] | undefined => {
    const v = body[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw invalidArgument(field, 'must be an array of node ids');
    if (v.length > MAX_RING_NODES) throw invalidArgument(field, TOO_MANY);
    return v as string[];
  };
  let add: { id: string; weight?: number }[] | undefined;
  if (body.add !== undefined) {
    if (!Array.isArray(body.add)) throw invalidArgument('add', 'must be an array of {id, weight?}');
    if (body.add.length > MAX_RING_NODES) throw invalidArgument('add', TOO_MANY);
    add = body.add.map((a: unknown, i) => {
      if (typeof a !== 'object' || a === null || Array.isArray(a)) throw invalidArgument(`add[${i}]`, 'must be an object {id, weight?}');
      const { id, weight } = a as { id?: unknown; weight?: unknown };
      if (typeof id !== 'string' || id === '') throw invalidArgument(`add[${i}].id`, 'must be a node id');
      return weight === undefined ? { id } : { id, weight: weightAt(`add[${i}].weight`, weight) };
    });
  }
  let weights: Record<string, number> | undefined;
  if (body.weights !== undefined) {
    if (typeof body.weights !== 'object' || body.weights === null || Array.isArray(body.weights))
      throw invalidArgument('weights', 'must be an object {nodeId: weight}');
    if (Object.keys(body.weights).length > MAX_RING_NODES) throw invalidArgument('weights', TOO_MANY);
    // fromEntries defines own properties: a node id such as `__proto__` stays a key (and is then unknown).
    weights = Object.fromEntries(Object.entries(body.weights).map(([id, w]) => [id, weightAt(`weights.${id}`, w)]));
  }
  const drain = ids('drain');
  const remove = ids('remove');
  return {
    ...(add ? { add } : {}),
    ...(drain ? { drain } : {}),
    ...(remove ? { remove } : {}),
    ...(weights ? { weights } : {}),
  };
}

async function guarded<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RingChangeError) throw invalidArgument('change', err.message);
    if (err instanceof RingBusyError || err instanceof NoRingError) throw new HttpError('failed_precondition', err.message);
    throw err;
  }
}

export function registerAdminRoutes(app: Hono, ctx: RouteContext, cluster: ClusterAdminPort | undefined): void {
  const { guard } = ctx;
  const need = (): ClusterAdminPort => {
    if (!cluster) throw new HttpError('failed_precondition', 'this node runs without a cluster: set REDIS_URL to form one');
    return cluster;
  };

  app.get('/v1/admin/cluster', guard('admin'), async (c) => c.json(await guarded(() => need().status())));

  app.post('/v1/admin/ring/plan', guard('admin'), async (c) => {
    const change = parseRingChange(await readJsonObject(c));
    const plan = await guarded(() => need().plan(change));
    // The per-shard list only on request: it is long for a big ring.
    const detail = c.req.query('detail') === 'true';
    return c.json(detail ? plan : { ...plan, moves: undefined });
  });

  app.post('/v1/admin/ring', guard('admin'), async (c) => {
    const change = parseRingChange(await readJsonObject(c));
    return c.json(await guarded(() => need().apply(change)), 202);
  });
}
