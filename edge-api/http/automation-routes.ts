/** Automation routes of a home: rules (with storm-suspension resume), scenes and the decision log (filtered by rule and outcome). */
import { createRoute } from '@hono/zod-openapi';
import { homeActorId } from '../../actors/actor-id.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import {
  errorResponses,
  invalidExample,
  homeIdParam,
  jsonRequest,
  jsonResponse,
  noContent,
  pathId,
  securityOf,
  z,
  type EdgeApp,
} from './api-schemas.ts';
import { declareRoute } from './declare-route.ts';
import { invalidArgument } from './http-error.ts';
import type { JsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import {
  RuleInputSchema,
  RuleReplacementSchema,
  RuleSchema,
  ruleExample,
  ruleViewExample,
  SceneInputSchema,
  SceneRunSchema,
  SceneSchema,
  sceneExample,
  sceneRunExample,
  suspendedRuleExample,
} from './schemas/automation-schemas.ts';
import { DecisionListSchema, decisionListExample, DecisionQuerySchema } from './schemas/decision-schemas.ts';

export { DECISION_PAGE_LIMIT } from './schemas/decision-schemas.ts';

/** A body for `PUT …/{id}`: the path names the object; a body `id`, if any, must be the same. */
function withPathId(body: JsonObject, id: string): JsonObject {
  if (body.id !== undefined && body.id !== id) throw invalidArgument('id', `must match the path id ${JSON.stringify(id)} or be omitted`);
  return { ...body, id };
}

const homeParams = z.object({ homeId: homeIdParam });
const ruleParams = z.object({ homeId: homeIdParam, ruleId: pathId('ruleId', 'hall-night-light', 'The rule.') });
const sceneParams = z.object({ homeId: homeIdParam, sceneId: pathId('sceneId', 'evening', 'The scene.') });

const RuleListSchema = z.object({ items: z.array(RuleSchema).readonly() }).openapi('RuleList');
const SceneListSchema = z.object({ items: z.array(SceneSchema).readonly() }).openapi('SceneList');

const rules = ['Rules'];
/** The 400 example of a rule or scene body: the home's check of its name. */
const NAME_REQUIRED = invalidExample('name', 'must be a non-empty string');
const scenes = ['Scenes'];
const saved = (what: string) => `Replaced: a ${what} with this id existed (201 when it is new).`;
const created = (what: string) => `Created: the ${what} as stored, defaults filled in.`;

export function registerAutomationRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { ask, guard } = ctx;

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/rules',
      tags: rules,
      summary: "The home's rules, with their suspension state",
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: homeParams },
      responses: {
        200: jsonResponse('Every rule of the home.', RuleListSchema, { items: [suspendedRuleExample] }),
        ...errorResponses('not_found'),
      },
    }),
    async (c) => c.json({ items: await ask(homeActorId(c.req.valid('param').homeId), { type: 'rules.list' }) }, 200),
  );

  // Rules are keyed by their id: POST creates (201) or replaces (200) the rule with the body's id.
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/rules',
      tags: rules,
      summary: 'Create a rule, or replace the one with its id',
      description: 'The home checks the rule; a 400 names the bad field by its path (`when[0].for`, `then[1].scene`).',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: homeParams, body: jsonRequest(RuleInputSchema, ruleExample) },
      responses: {
        200: jsonResponse(saved('rule'), RuleSchema, ruleViewExample),
        201: jsonResponse(created('rule'), RuleSchema, ruleViewExample),
        ...errorResponses(NAME_REQUIRED, 'not_found', 'failed_precondition'),
      },
    }),
    async (c) => {
      const put = await ask(homeActorId(c.req.valid('param').homeId), { type: 'rules.put', rule: c.req.valid('json') });
      // The id the home accepted, not the body's raw field.
      addAuditTarget(c, { ruleId: put.rule.id });
      return put.created ? c.json(put.rule, 201) : c.json(put.rule, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/rules/{ruleId}',
      tags: rules,
      summary: 'A rule',
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: ruleParams },
      responses: { 200: jsonResponse('The rule.', RuleSchema, ruleViewExample), ...errorResponses('not_found') },
    }),
    async (c) => {
      const { homeId, ruleId } = c.req.valid('param');
      return c.json(await ask(homeActorId(homeId), { type: 'rules.get', ruleId }), 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'put',
      path: '/v1/homes/{homeId}/rules/{ruleId}',
      tags: rules,
      summary: 'Create or replace the rule with this id',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: ruleParams, body: jsonRequest(RuleReplacementSchema, { ...ruleExample, id: undefined }) },
      responses: {
        200: jsonResponse(saved('rule'), RuleSchema, ruleViewExample),
        201: jsonResponse(created('rule'), RuleSchema, ruleViewExample),
        ...errorResponses(NAME_REQUIRED, 'not_found', 'failed_precondition'),
      },
    }),
    async (c) => {
      const { homeId, ruleId } = c.req.valid('param');
      const rule = withPathId(c.req.valid('json'), ruleId);
      const put = await ask(homeActorId(homeId), { type: 'rules.put', rule });
      return put.created ? c.json(put.rule, 201) : c.json(put.rule, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/homes/{homeId}/rules/{ruleId}',
      tags: rules,
      summary: 'Delete a rule (its waiting runs and holds are cancelled)',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: ruleParams },
      responses: { 204: noContent, ...errorResponses('not_found') },
    }),
    async (c) => {
      const { homeId, ruleId } = c.req.valid('param');
      await ask(homeActorId(homeId), { type: 'rules.delete', ruleId });
      return c.body(null, 204);
    },
  );

  // Clears a storm-control suspension (and the rule's recent firings).
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/rules/{ruleId}/resume',
      tags: rules,
      summary: 'Resume a rule that storm control suspended',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: ruleParams },
      responses: { 200: jsonResponse('The rule, no longer suspended.', RuleSchema, ruleViewExample), ...errorResponses('not_found') },
    }),
    async (c) => {
      const { homeId, ruleId } = c.req.valid('param');
      return c.json(await ask(homeActorId(homeId), { type: 'rules.resume', ruleId }), 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/scenes',
      tags: scenes,
      summary: "The home's scenes",
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: homeParams },
      responses: {
        200: jsonResponse('Every scene of the home.', SceneListSchema, { items: [sceneExample] }),
        ...errorResponses('not_found'),
      },
    }),
    async (c) => c.json({ items: await ask(homeActorId(c.req.valid('param').homeId), { type: 'scenes.list' }) }, 200),
  );

  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/scenes',
      tags: scenes,
      summary: 'Create a scene, or replace the one with its id',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: homeParams, body: jsonRequest(SceneInputSchema, sceneExample) },
      responses: {
        200: jsonResponse(saved('scene'), SceneSchema, sceneExample),
        201: jsonResponse(created('scene'), SceneSchema, sceneExample),
        ...errorResponses(NAME_REQUIRED, 'not_found', 'failed_precondition'),
      },
    }),
    async (c) => {
      const put = await ask(homeActorId(c.req.valid('param').homeId), { type: 'scenes.put', scene: c.req.valid('json') });
      addAuditTarget(c, { sceneId: put.scene.id });
      return put.created ? c.json(put.scene, 201) : c.json(put.scene, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/scenes/{sceneId}',
      tags: scenes,
      summary: 'A scene',
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: sceneParams },
      responses: { 200: jsonResponse('The scene.', SceneSchema, sceneExample), ...errorResponses('not_found') },
    }),
    async (c) => {
      const { homeId, sceneId } = c.req.valid('param');
      return c.json(await ask(homeActorId(homeId), { type: 'scenes.get', sceneId }), 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'put',
      path: '/v1/homes/{homeId}/scenes/{sceneId}',
      tags: scenes,
      summary: 'Create or replace the scene with this id',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: sceneParams, body: jsonRequest(SceneInputSchema, { ...sceneExample, id: undefined }) },
      responses: {
        200: jsonResponse(saved('scene'), SceneSchema, sceneExample),
        201: jsonResponse(created('scene'), SceneSchema, sceneExample),
        ...errorResponses(NAME_REQUIRED, 'not_found', 'failed_precondition'),
      },
    }),
    async (c) => {
      const { homeId, sceneId } = c.req.valid('param');
      const put = await ask(homeActorId(homeId), { type: 'scenes.put', scene: withPathId(c.req.valid('json'), sceneId) });
      return put.created ? c.json(put.scene, 201) : c.json(put.scene, 200);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/homes/{homeId}/scenes/{sceneId}',
      tags: scenes,
      summary: 'Delete a scene (409 while a rule uses it)',
      security: securityOf('rules'),
      middleware: [guard('rules')] as const,
      request: { params: sceneParams },
      responses: { 204: noContent, ...errorResponses('not_found', 'failed_precondition') },
    }),
    async (c) => {
      const { homeId, sceneId } = c.req.valid('param');
      await ask(homeActorId(homeId), { type: 'scenes.delete', sceneId });
      return c.body(null, 204);
    },
  );

  // Running a scene is control, not configuration: it spends the home's command budget (429 when spent).
  declareRoute(
    app,
    createRoute({
      method: 'post',
      path: '/v1/homes/{homeId}/scenes/{sceneId}/activate',
      tags: scenes,
      summary: "Run a scene's commands (202; spends the home's command budget)",
      security: securityOf('control'),
      middleware: [guard('control')] as const,
      request: { params: sceneParams },
      responses: {
        202: jsonResponse('Accepted: the commands are issued.', SceneRunSchema, sceneRunExample),
        ...errorResponses('not_found', 'resource_exhausted'),
      },
    }),
    async (c) => {
      const { homeId, sceneId } = c.req.valid('param');
      return c.json(await ask(homeActorId(homeId), { type: 'scenes.activate', sceneId }), 202);
    },
  );

  declareRoute(
    app,
    createRoute({
      method: 'get',
      path: '/v1/homes/{homeId}/decisions',
      tags: rules,
      summary: 'The decision log, newest first: which rule fired, on what, and what it did or why not',
      security: securityOf('read'),
      middleware: [guard('read')] as const,
      request: { params: homeParams, query: DecisionQuerySchema },
      responses: {
        200: jsonResponse('The entries.', DecisionListSchema, decisionListExample),
        ...errorResponses(invalidExample('rule', 'must be a rule id: 1 to 64 letters, digits, _ or -'), 'not_found'),
      },
    }),
    async (c) => {
      const { limit, rule, outcome } = c.req.valid('query');
      const filter = { ...(rule === undefined ? {} : { rule }), ...(outcome === undefined ? {} : { outcome }) };
      return c.json({ items: await ask(homeActorId(c.req.valid('param').homeId), { type: 'decisions.list', limit, ...filter }) }, 200);
    },
  );
}
