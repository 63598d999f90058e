import { describe, expect, it } from 'vitest';
import { deviceActorId } from '../../../actors/actor-id.ts';
import { commandCost, issuePlan, planActions, type IssueContext } from '../../../actors/rules/action-plan.ts';
import { DEFAULT_COMMAND_TTL_MS, type Action, type Scene } from '../../../actors/rules/rule-types.ts';
import { commandIdFor } from '../../../actors/types.ts';

const scenes: Record<string, Scene> = {
  movie: {
    id: 'movie',
    name: 'Movie',
    actions: [
      { type: 'command', device: 'curtain', name: 'close' },
      { type: 'command', device: 'lamp', name: 'dim', params: { level: 20 }, ttlMs: 5_000 },
    ],
  },
};

const ctx: IssueContext = { homeId: 'h1', depth: 2, source: { kind: 'rule', ruleId: 'r1' }, idPrefix: 'r1', nextSeq: 7 };

describe('planActions', () => {
  it('keeps the action order, expands a scene into its commands and fills in params and the default ttl', () => {
    const actions: Action[] = [
      { type: 'command', device: 'fan', name: 'on' },
      { type: 'scene', scene: 'movie' },
      { type: 'notify', message: 'movie time' },
    ];
    expect(planActions(actions, scenes)).toEqual([
      { type: 'command', device: 'fan', name: 'on', params: {}, ttlMs: DEFAULT_COMMAND_TTL_MS },
      { type: 'command', device: 'curtain', name: 'close', params: {}, ttlMs: DEFAULT_COMMAND_TTL_MS, scene: 'movie' },
      { type: 'command', device: 'lamp', name: 'dim', params: { level: 20 }, ttlMs: 5_000, scene: 'movie' },
      { type: 'notify', message: 'movie time' },
    ]);
  });

  it('records a scene that no longer exists as skipped, and never reads an inherited property as a scene', () => {
    const missing: Action = { type: 'scene', scene: 'party' };
    const inherited: Action = { type: 'scene', scene: 'toString' };
    expect(planActions([missing, inherited], scenes)).toEqual([
      { type: 'skipped', action: missing, reason: 'scene party not found' },
      { type: 'skipped', action: inherited, reason: 'scene toString not found' },
    ]);
  });

  it('uses the given default ttl for commands without one', () => {
    expect(planActions([{ type: 'command', device: 'fan', name: 'on' }], {}, 1_234)).toMatchObject([{ ttlMs: 1_234 }]);
  });
});

describe('commandCost', () => {
  it('counts the commands of a plan only', () => {
    const plan = planActions(
      [
        { type: 'scene', scene: 'movie' },
        { type: 'notify', message: 'x' },
        { type: 'scene', scene: 'gone' },
      ],
      scenes,
    );
    expect(commandCost(plan)).toBe(2);
    expect(commandCost([])).toBe(0);
  });
});

describe('issuePlan', () => {
  it('tells each device actor an IssueCommand with deterministic ids, notifies in order and returns the next seq', () => {
    const plan = planActions(
      [
        { type: 'scene', scene: 'movie' },
        { type: 'notify', message: 'on' },
        { type: 'scene', scene: 'gone' },
      ],
      scenes,
    );
    const { effects, taken, nextSeq } = issuePlan(plan, ctx, 'r1');
    expect(nextSeq).toBe(9);
    expect(effects).toEqual([
      {
        type: 'tell',
        to: deviceActorId('h1', 'curtain'),
        msg: {
          type: 'command.issue',
          commandId: commandIdFor('curtain', 'r1-7'),
          name: 'close',
          params: {},
          ttlMs: DEFAULT_COMMAND_TTL_MS,
          depth: 2,
          source: ctx.source,
        },
      },
      {
        type: 'tell',
        to: deviceActorId('h1', 'lamp'),
        msg: {
          type: 'command.issue',
          commandId: commandIdFor('lamp', 'r1-8'),
          name: 'dim',
          params: { level: 20 },
          ttlMs: 5_000,
          depth: 2,
          source: ctx.source,
        },
      },
      { type: 'notify', homeId: 'h1', message: 'on', ruleId: 'r1' },
    ]);
    // The decision log gets every planned action, commands with their ids, skipped ones as they were.
    expect(taken).toEqual([
      { ...plan[0], commandId: commandIdFor('curtain', 'r1-7') },
      { ...plan[1], commandId: commandIdFor('lamp', 'r1-8') },
      plan[2],
      plan[3],
    ]);
  });

  it('replays to the same effects from the same seq, and a notify without a rule carries no ruleId', () => {
    const plan = planActions(
      [
        { type: 'command', device: 'fan', name: 'on' },
        { type: 'notify', message: 'hi' },
      ],
      {},
    );
    expect(issuePlan(plan, ctx)).toEqual(issuePlan(plan, ctx));
    expect(issuePlan(plan, ctx).effects[1]).toEqual({ type: 'notify', homeId: 'h1', message: 'hi' });
  });
});
