/** Ops routes (admin token): cluster status, a dry run of a ring change, and applying one. */
import { createRoute } from '@hono/zod-openapi';
import type { ClusterAdmin } from '../../cluster/cluster-admin.ts';
import { NoRingError, RingBusyError } from '../../cluster/cluster-admin.ts';
import { MAX_RING_NODES, MAX_WEIGHT, weightProblem } from '../../cluster/hash-ring.ts';
import { RingChangeError, type RingChange } from '../../cluster/ring-store.ts';
import { errorResponses, type EdgeApp, invalidExample, jsonRequest, jsonResponse, securityOf, z } from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
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

const NodeId = z.string({ error: 'must be a node id' }).min(1, { error: 'must be a node id' }).openapi({ example: 'n4' });

/**
 * A list of at most MAX_RING_NODES entries, its length checked on the raw value before any item
 * is: thousands of bad items answer one short 400, not thousands of item errors.
 */
function fewNodes<S extends z.ZodType>(schema: S) {
  return z.preprocess((raw, ctx) => {
    if (Array.isArray(raw) && raw.length > MAX_RING_NODES) {
      ctx.addIssue({ code: 'custom', message: TOO_MANY });
      return z.NEVER;
    }
    return raw;
  }, schema);
}

const NodeIds = fewNodes(z.array(NodeId, { error: 'must be an array of node ids' })).openapi({ maxItems: MAX_RING_NODES });

/** A node added: `{id, weight?}`; other keys are ignored, as before the schemas. */
const AddedNode = z.object({ id: NodeId, weight: Weight.optional() }, { error: 'must be an object {id, weight?}' });

/**
 * `{nodeId: weight}`, counted and checked for `__proto__` on the raw object before any weight is
 * read. zod's record drops a `__proto__` key without a word (it cannot be a property of the object
 * it builds): refused here, as the ring refused it before.
 */
const Weights = z
  .preprocess(
    (raw, ctx) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
      if (Object.keys(raw).length > MAX_RING_NODES) {
        ctx.addIssue({ code: 'custom', message: TOO_MANY });
        return z.NEVER;
      }
      if (Object.hasOwn(raw, '__proto__')) {
        ctx.addIssue({ code: 'custom', message: 'is not a node id a ring can hold', path: ['__proto__'] });
        return z.NEVER;
      }
      return raw;
    },
    z.record(z.string(), Weight, { error: 'must be an object {nodeId: weight}' }),
  )
  .openapi({
    type: 'object',
    additionalProperties: { type: 'number', exclusiveMinimum: 0, maximum: MAX_WEIGHT },
    maxProperties: MAX_RING_NODES,
  });

/**
 * A ring change `{add: [{id, weight?}], drain: [id], remove: [id], weights: {id: w}}`. Weights are
 * finite numbers in (0, MAX_WEIGHT], and each list names at most MAX_RING_NODES nodes: a huge
 * weight, or thousands of added nodes, would make every node compute millions of control points
 * on its event loop. The ring as a whole is bounded by applyChange (ring-store.ts).
 */
export const RingChangeSchema = z
  .strictObject({
    add: fewNodes(z.array(AddedNode, { error: 'must be an array of {id, weight?}' }))
      .optional()
      .openapi({ maxItems: MAX_RING_NODES, description: 'Nodes to add (they must have started and registered).' }),
    drain: NodeIds.optional().openapi({ description: 'Nodes to move every shard off, keeping them in the ring.' }),
    remove: NodeIds.optional().openapi({ description: 'Nodes to take out of the ring.' }),
    weights: Weights.optional().openapi({ description: 'New weights of nodes in the ring.' }),
  })
  .openapi('RingChange');

const changeExample = { add: [{ id: 'n4', weight: 1 }] };
const BAD_WEIGHT = invalidExample('add[0].weight', `must be at most ${MAX_WEIGHT}, got 20`);

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

/** Adding n4 to the ring of statusExample: every node of the next ring, and flows that add up to `moving`. */
const planExample = {
  epoch: 3,
  nextNodes: [
    { id: 'n1', weight: 1, state: 'active' },
    { id: 'n2', weight: 1, state: 'active' },
    { id: 'n3', weight: 1, state: 'active' },
    { id: 'n4', weight: 1, state: 'active' },
  ],
  moving: 64,
  flows: [
    { from: 'n1', to: 'n4', shards: 22 },
    { from: 'n2', to: 'n4', shards: 21 },
    { from: 'n3', to: 'n4', shards: 21 },
  ],
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

  declareRoute(
    app,
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

  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/admin/ring/plan',
      tags,
      summary: 'Dry run of a ring change: the shards that would move',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: {
        query: z.object({
          detail: z.string().optional().openapi({ description: '`true` lists every moving shard (long for a big ring).', example: 'true' }),
        }),
        body: jsonRequest(RingChangeSchema, changeExample),
      },
      responses: {
        200: jsonResponse('What the change would move; nothing is changed.', RingPlanSchema, planExample),
        ...errorResponses(BAD_WEIGHT, 'failed_precondition'),
      },
    }),
    async (c) => {
      const change: RingChange = c.req.valid('json');
      const plan = await guarded(() => need().plan(change));
      // The per-shard list only on request: it is long for a big ring.
      return c.json(c.req.valid('query').detail === 'true' ? plan : { ...plan, moves: undefined }, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/admin/ring',
      tags,
      summary: 'Apply a ring change (one at a time; 409 while another one moves shards)',
      security: securityOf('admin'),
      middleware: [admin] as const,
      request: { body: jsonRequest(RingChangeSchema, changeExample) },
      responses: {
        202: jsonResponse(
          'Accepted: shards move now; follow GET /v1/admin/cluster until handoffs.inFlight is false.',
          z
            .object({ epoch: z.number().int().openapi({ description: 'The new ring epoch.' }), moving: z.number().int() })
            .openapi('RingApplied'),
          { epoch: 4, moving: 64 },
        ),
        ...errorResponses(BAD_WEIGHT, 'failed_precondition'),
      },
    }),
    async (c) => c.json(await guarded(() => need().apply(c.req.valid('json'))), 202),
  );
}
