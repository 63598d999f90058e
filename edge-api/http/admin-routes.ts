/** Ops routes (admin token): cluster status, a dry run of a ring change, and applying one. */
import type { Hono } from 'hono';
import type { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import { NoRingError, RingBusyError } from '../../cluster/cluster-admin.ts';
import { RingChangeError, type RingChange } from '../../cluster/ring-store.ts';
import { HttpError, invalidArgument } from './http-error.ts';
import { onlyFields, readJsonObject, type JsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';

/** The admin surface of the cluster the routes need (cluster/cluster-admin.ts). */
export type ClusterAdminPort = Pick<ClusterAdmin, 'status' | 'plan' | 'apply'>;

/** Checks a ring change body `{add: [{id, weight}], drain: [id], remove: [id], weights: {id: w}}`. */
export function parseRingChange(body: JsonObject): RingChange {
  onlyFields(body, ['add', 'drain', 'remove', 'weights']);
  const ids = (field: string): string[] | undefined => {
    const v = body[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw invalidArgument(field, 'must be an array of node ids');
    return v as string[];
  };
  const add = body.add;
  if (
    add !== undefined &&
    (!Array.isArray(add) || add.some((a) => typeof a !== 'object' || a === null || typeof (a as { id?: unknown }).id !== 'string'))
  ) {
    throw invalidArgument('add', 'must be an array of {id, weight?}');
  }
  const weights = body.weights;
  if (weights !== undefined && (typeof weights !== 'object' || weights === null || Array.isArray(weights)))
    throw invalidArgument('weights', 'must be an object {nodeId: weight}');
  const drain = ids('drain');
  const remove = ids('remove');
  return {
    ...(add ? { add: add as { id: string; weight?: number }[] } : {}),
    ...(drain ? { drain } : {}),
    ...(remove ? { remove } : {}),
    ...(weights ? { weights: weights as Record<string, number> } : {}),
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
