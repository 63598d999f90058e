/** Ops routes (admin token): cluster status, a dry run of a ring change, and applying one. */
import { createRoute } from '@hono/zod-openapi';
import type { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import { NoRingError, RingBusyError } from '../../cluster/cluster-admin.ts';
import { MAX_RING_NODES, MAX_WEIGHT, weightProblem } from '../../cluster/hash-ring.ts';
import { RingChangeError, type RingChange } from '../../cluster/ring-store.ts';
import { errorResponses, type EdgeApp, jsonBody, jsonRequest, jsonResponse, securityOf, z } from './api-schemas.ts';
import { HttpError, invalidArgument } from './http-error.ts';
import type { RouteContext } from './route-context.ts';

/** The admin surface of the cluster the routes need (cluster/cluster-admin.ts). */
export type ClusterAdminPort = Pick<ClusterAdmin, 'status' | 'plan' | 'apply'>;

const TOO_MANY = `must name at most ${MAX_RING_NODES} nodes (the most a ring may have)`;

/** A weight in (0, MAX_WEIGHT]; the message says what was sent. */
const Weight = z
  .unknown()
  .superRefine((w, ctx) => {
    const bad = weightProblem(w);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: bad });
  })
  .transform((w) => w as number)
  .openapi({ type: 'number', exclusiveMinimum: 0, maximum: MAX_WEIGHT, example: 1, description: 'Relative share of the shards.' });

const NodeId = z.string().min(1, { error: 'must be a node id' }).openapi({ example: 'n4' });
const NodeIds = z.array(NodeId, { error: 'must be an array of node ids' }).max(MAX_RING_NODES, { error: TOO_MANY });

/**
 * A ring change `{add: [{id, weight?}], drain: [id], remove: [id], weights: {id: w}}`. Weights are
 * finite numbers in (0, MAX_WEIGHT], and each list names at most MAX_RING_NODES nodes: a huge
 * weight, or thousands of added nodes, would make every node compute millions of control points
 * on its event loop. The ring as a whole is bounded by applyChange (ring-store.ts).
 */
export const RingChangeSchema = z
  .strictObject({
    add: z
      .array(z.strictObject({ id: NodeId, weight: Weight.optional() }), { error: 'must be an array of {id, weight?}' })
      .max(MAX_RING_NODES, { error: TOO_MANY })
      .optional()
      .openapi({ description: 'Nodes to add (they must have started and registered).' }),
    drain: NodeIds.optional().openapi({ description: 'Nodes to move every shard off, keeping them in the ring.' }),
    remove: NodeIds.optional().openapi({ description: 'Nodes to take out of the ring.' }),
    // A record defines own properties: a node id such as `__proto__` stays a key (and is then unknown).
    weights: z
      .record(z.string(), Weight, { error: 'must be an object {nodeId: weight}' })
      .refine((w) => Object.keys(w).length <= MAX_RING_NODES, { error: TOO_MANY })
      .optional()
      .openapi({ description: 'New weights of nodes in the ring.' }),
  })
  .openapi('RingChange');

const changeExample = { add: [{ id: 'n4', weight: 1 }] };

const NodeStatus = z.object({
  id: z.string(),
  address: z.string(),
  state: z.string().openapi({ description: 'joining, active, draining or left.' }),
  weight: z.number(),
  alive: z.boolean().openapi({ description: 'Its heartbeat is fresh.' }),
  shardsAssigned: z.number().int().openapi({ description: 'Shards it owns by the current ring.' }),
  shardsOwned: z.number().int().openapi({ description: 'Shards it reports holding now (differs while a change moves).' }),
});

const ClusterStatusSchema = z
  .object({
    epoch: z.number().int(),
    shardCount: z.number().int(),
    nodes: z.array(NodeStatus).readonly(),
    handoffs: z.object({ pending: z.number().int(), done: z.number().int(), inFlight: z.boolean() }),
    owners: z
      .array(z.string())
      .readonly()
      .openapi({ description: 'The owner of every shard by the current ring (index = shard); empty while no node is active.' }),
  })
  .openapi('ClusterStatus');

const Flow = z.object({ from: z.string(), to: z.string(), shards: z.number().int() });
const Move = z.object({ shard: z.number().int(), from: z.string(), to: z.string() });
const RingNode = z.object({ id: z.string(), weight: z.number(), state: z.string() });

const RingPlanSchema = z
  .object({
    epoch: z.number().int().openapi({ description: 'The ring epoch the plan starts from.' }),
    nextNodes: z.array(RingNode).readonly(),
    moving: z.number().int().openapi({ description: 'Shards that would move.' }),
    flows: z.array(Flow).readonly().openapi({ description: 'Shards moving from one node to another.' }),
    moves: z.array(Move).readonly().optional().openapi({ description: 'Every moving shard; only with ?detail=true.' }),
  })
  .openapi('RingPlan');

const statusExample = {
  epoch: 3,
  shardCount: 256,
  nodes: [
    { id: 'n1', address: '10.0.0.11:7070', state: 'active', weight: 1, alive: true, shardsAssigned: 86, shardsOwned: 86 },
    { id: 'n2', address: '10.0.0.12:7070', state: 'active', weight: 1, alive: true, shardsAssigned: 85, shardsOwned: 85 },
    { id: 'n3', address: '10.0.0.13:7070', state: 'active', weight: 1, alive: true, shardsAssigned: 85, shardsOwned: 85 },
  ],
  handoffs: { pending: 0, done: 64, inFlight: false },
  owners: ['n2', 'n1', 'n3', 'n1'],
};

const planExample = {
  epoch: 3,
  nextNodes: [
    { id: 'n1', weight: 1, state: 'active' },
    { id: 'n4', weight: 1, state: 'active' },
  ],
  moving: 64,
  flows: [{ from: 'n1', to: 'n4', shards: 22 }],
};

/** A refused change as the edge answers it: a bad change 400, another one moving (or no ring) 409. */
async function guarded<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RingChangeError) throw invalidArgument('change', err.message);
    if (err instanceof RingBusyError || err instanceof NoRingError) throw new HttpError('failed_precondition', err.message);
    throw err;
  }
}

const tags = ['Cluster'];

export function registerAdminRoutes(app: EdgeApp, ctx: RouteContext, cluster: ClusterAdminPort | undefined): void {
  const admin = ctx.guard('admin');
  const need = (): ClusterAdminPort => {
    if (!cluster) throw new HttpError('failed_precondition', 'this node runs without a cluster: set REDIS_URL to form one');
    return cluster;
  };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/admin/cluster',
      tags,
      summary: 'Cluster status: ring epoch, nodes, handoffs',
      security: securityOf('admin'),
      middleware: [admin] as const,
      responses: {
        200: jsonResponse('The ring and every node as they report themselves.', ClusterStatusSchema, statusExample),
        ...errorResponses('failed_precondition'),
      },
    }),
    async (c) => c.json(await guarded(() => need().status()), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/admin/ring/plan',
      tags,
      summary: 'Dry run of a ring change: the shards that would move',
      security: securityOf('admin'),
      middleware: [admin, jsonBody] as const,
      request: {
        query: z.object({
          detail: z.string().optional().openapi({ description: '`true` lists every moving shard (long for a big ring).', example: 'true' }),
        }),
        body: jsonRequest(RingChangeSchema, changeExample),
      },
      responses: {
        200: jsonResponse('What the change would move; nothing is changed.', RingPlanSchema, planExample),
        ...errorResponses('failed_precondition'),
      },
    }),
    async (c) => {
      const change: RingChange = c.req.valid('json');
      const plan = await guarded(() => need().plan(change));
      // The per-shard list only on request: it is long for a big ring.
      return c.json(c.req.valid('query').detail === 'true' ? plan : { ...plan, moves: undefined }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/admin/ring',
      tags,
      summary: 'Apply a ring change (one at a time; 409 while another one moves shards)',
      security: securityOf('admin'),
      middleware: [admin, jsonBody] as const,
      request: { body: jsonRequest(RingChangeSchema, changeExample) },
      responses: {
        202: jsonResponse(
          'Accepted: shards move now; follow GET /v1/admin/cluster until handoffs.inFlight is false.',
          z
            .object({ epoch: z.number().int().openapi({ description: 'The new ring epoch.' }), moving: z.number().int() })
            .openapi('RingApplied'),
          { epoch: 4, moving: 64 },
        ),
        ...errorResponses('failed_precondition'),
      },
    }),
    async (c) => c.json(await guarded(() => need().apply(c.req.valid('json'))), 202),
  );
}
