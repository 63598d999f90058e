/** Automation routes of a home: rules (with storm-suspension resume), scenes and the decision log (filtered by rule and outcome). */
import type { Context } from 'hono';
import { homeActorId } from '../../actors/actor-id.ts';
import { DECISION_OUTCOMES, isDecisionOutcome, type DecisionOutcome } from '../../actors/rules/decision-log.ts';
import { validateId } from '../../actors/rules/rule-validation.ts';
import { addAuditTarget } from '../audit/audit-writes.ts';
import { invalidArgument } from './http-error.ts';
import { queryInt, readJsonObject, type JsonObject } from './request-input.ts';
import type { RouteContext } from './route-context.ts';
import type { EdgeApp } from './api-schemas.ts';

/** Decision log entries per read: at most, and when `limit` is absent. */
export const DECISION_PAGE_LIMIT = { max: 200, default: 50 } as const;

/** A body for `PUT …/{id}`: the path names the object; a body `id`, if any, must be the same. */
function withPathId(body: JsonObject, id: string): JsonObject {
  if (body.id !== undefined && body.id !== id) throw invalidArgument('id', `must match the path id ${JSON.stringify(id)} or be omitted`);
  return { ...body, id };
}

/** The decision log filters of a request: `rule` (a rule id) and `outcome`, each optional; a 400 names a bad one. */
function decisionFilter(c: Context): { rule?: string; outcome?: DecisionOutcome } {
  const rule = c.req.query('rule');
  const outcome = c.req.query('outcome');
  if (rule !== undefined && !validateId(rule, 'rule').ok)
    throw invalidArgument('rule', 'must be a rule id: 1 to 64 letters, digits, _ or -');
  if (outcome !== undefined && !isDecisionOutcome(outcome))
    throw invalidArgument('outcome', `must be one of ${DECISION_OUTCOMES.join(', ')}`);
  return { ...(rule === undefined ? {} : { rule }), ...(outcome === undefined ? {} : { outcome }) };
}

export function registerAutomationRoutes(app: EdgeApp, ctx: RouteContext): void {
  const { ask, guard } = ctx;

  app.get('/v1/homes/:homeId/rules', guard('read'), async (c) => {
    return c.json({ items: await ask(homeActorId(c.req.param('homeId')), { type: 'rules.list' }) });
  });

  // Rules are keyed by their id: POST creates (201) or replaces (200) the rule with the body's id.
  app.post('/v1/homes/:homeId/rules', guard('rules'), async (c) => {
    const rule = await readJsonObject(c);
    const put = await ask(homeActorId(c.req.param('homeId')), { type: 'rules.put', rule });
    // The id the home accepted, not the body's raw field.
    addAuditTarget(c, { ruleId: put.rule.id });
    return c.json(put.rule, put.created ? 201 : 200);
  });

  app.get('/v1/homes/:homeId/rules/:ruleId', guard('read'), async (c) => {
    const rule = await ask(homeActorId(c.req.param('homeId')), { type: 'rules.get', ruleId: c.req.param('ruleId') });
    return c.json(rule);
  });

  app.put('/v1/homes/:homeId/rules/:ruleId', guard('rules'), async (c) => {
    const rule = withPathId(await readJsonObject(c), c.req.param('ruleId'));
    const put = await ask(homeActorId(c.req.param('homeId')), { type: 'rules.put', rule });
    return c.json(put.rule, put.created ? 201 : 200);
  });

  app.delete('/v1/homes/:homeId/rules/:ruleId', guard('rules'), async (c) => {
    await ask(homeActorId(c.req.param('homeId')), { type: 'rules.delete', ruleId: c.req.param('ruleId') });
    return c.body(null, 204);
  });

  // Clears a storm-control suspension (and the rule's recent firings).
  app.post('/v1/homes/:homeId/rules/:ruleId/resume', guard('rules'), async (c) => {
    const rule = await ask(homeActorId(c.req.param('homeId')), { type: 'rules.resume', ruleId: c.req.param('ruleId') });
    return c.json(rule);
  });

  app.get('/v1/homes/:homeId/scenes', guard('read'), async (c) => {
    return c.json({ items: await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.list' }) });
  });

  app.post('/v1/homes/:homeId/scenes', guard('rules'), async (c) => {
    const scene = await readJsonObject(c);
    const put = await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.put', scene });
    addAuditTarget(c, { sceneId: put.scene.id });
    return c.json(put.scene, put.created ? 201 : 200);
  });

  app.get('/v1/homes/:homeId/scenes/:sceneId', guard('read'), async (c) => {
    const scene = await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.get', sceneId: c.req.param('sceneId') });
    return c.json(scene);
  });

  app.put('/v1/homes/:homeId/scenes/:sceneId', guard('rules'), async (c) => {
    const scene = withPathId(await readJsonObject(c), c.req.param('sceneId'));
    const put = await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.put', scene });
    return c.json(put.scene, put.created ? 201 : 200);
  });

  app.delete('/v1/homes/:homeId/scenes/:sceneId', guard('rules'), async (c) => {
    await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.delete', sceneId: c.req.param('sceneId') });
    return c.body(null, 204);
  });

  // Running a scene is control, not configuration: it spends the home's command budget (429 when spent).
  app.post('/v1/homes/:homeId/scenes/:sceneId/activate', guard('control'), async (c) => {
    const sceneId = c.req.param('sceneId');
    const run = await ask(homeActorId(c.req.param('homeId')), { type: 'scenes.activate', sceneId });
    return c.json(run, 202);
  });

  app.get('/v1/homes/:homeId/decisions', guard('read'), async (c) => {
    const limit = queryInt(c, 'limit', 1, DECISION_PAGE_LIMIT.max, DECISION_PAGE_LIMIT.default);
    const filter = decisionFilter(c);
    return c.json({ items: await ask(homeActorId(c.req.param('homeId')), { type: 'decisions.list', limit, ...filter }) });
  });
}
