/** Turns rule and scene actions into command, notify effects and decision-log records, a delay at a time. */
import { deviceActorId } from '../actor-id.ts';
import { commandIdFor, type DomainEffect, type IssueCommand, type Value } from '../types.ts';
import { ownGet } from '../validation.ts';
import type { DecisionAction } from './decision-log.ts';
import { parseDuration } from './duration.ts';
import { DEFAULT_COMMAND_TTL_MS, type Action, type CommandAction, type Scene } from './rule-types.ts';

/** An action resolved against the home's scenes: scenes expand into their commands. */
export type PlannedAction =
  | {
      readonly type: 'command';
      readonly device: string;
      readonly name: string;
      readonly params: Readonly<Record<string, Value>>;
      /** ttlMs: milliseconds until the command expires. */
      readonly ttlMs: number;
      readonly scene?: string;
    }
  | { readonly type: 'notify'; readonly message: string }
  | { readonly type: 'skipped'; readonly action: Action; readonly reason: string };

function planCommand(a: CommandAction, defaultTtlMs: number, scene?: string): PlannedAction {
  return {
    type: 'command',
    device: a.device,
    name: a.name,
    params: a.params ?? {},
    ttlMs: a.ttlMs ?? defaultTtlMs,
    ...(scene === undefined ? {} : { scene }),
  };
}

/**
 * Resolves actions in order; a scene action becomes one command per scene action, a scene that
 * no longer exists becomes a `skipped` record.
 */
export function planActions(
  actions: readonly Action[],
  scenes: Readonly<Record<string, Scene>>,
  defaultTtlMs: number = DEFAULT_COMMAND_TTL_MS,
): PlannedAction[] {
  const out: PlannedAction[] = [];
  for (const a of actions) {
    if (a.type === 'command') out.push(planCommand(a, defaultTtlMs));
    else if (a.type === 'notify') out.push({ type: 'notify', message: a.message });
    else if (a.type === 'scene') {
      const scene = ownGet(scenes, a.scene);
      if (scene === undefined) out.push({ type: 'skipped', action: a, reason: `scene ${a.scene} not found` });
      else for (const c of scene.actions) out.push(planCommand(c, defaultTtlMs, scene.id));
    }
  }
  return out;
}

/** Commands a plan would issue: what it costs from the home's command budget. */
export function commandCost(plan: readonly PlannedAction[]): number {
  let n = 0;
  for (const p of plan) if (p.type === 'command') n++;
  return n;
}

/** Who issues a plan, and the causal depth its commands carry. */
export interface IssueContext {
  readonly homeId: string;
  readonly depth: number;
  readonly source: IssueCommand['source'];
  /** Command ids are `{idPrefix}-{seq}` with seq counting from `nextSeq`: deterministic on replay. */
  readonly idPrefix: string;
  readonly nextSeq: number;
}

/**
 * The effects of a plan, in action order: a `tell` with an IssueCommand to the device actor per
 * command, a `notify` per notify action. Returns the records for the decision log and the next seq.
 */
export function issuePlan(
  plan: readonly PlannedAction[],
  ctx: IssueContext,
  ruleId?: string,
): { readonly effects: DomainEffect[]; readonly taken: DecisionAction[]; readonly nextSeq: number } {
  const effects: DomainEffect[] = [];
  const taken: DecisionAction[] = [];
  let seq = ctx.nextSeq;
  for (const p of plan) {
    if (p.type === 'command') {
      const commandId = commandIdFor(p.device, `${ctx.idPrefix}-${seq++}`);
      const msg: IssueCommand = {
        type: 'command.issue',
        commandId,
        name: p.name,
        params: p.params,
        ttlMs: p.ttlMs,
        depth: ctx.depth,
        source: ctx.source,
      };
      effects.push({ type: 'tell', to: deviceActorId(ctx.homeId, p.device), msg });
      taken.push({ ...p, commandId });
    } else if (p.type === 'notify') {
      effects.push({ type: 'notify', homeId: ctx.homeId, message: p.message, ...(ruleId === undefined ? {} : { ruleId }) });
      taken.push(p);
    } else {
      taken.push(p);
    }
  }
  return { effects, taken, nextSeq: seq };
}

/**
 * The actions of `actions` from index `from` up to the next delay (exclusive), and, when a delay
 * ends them, how long it waits (ms) and the index to resume at after it.
 */
export function segmentOf(
  actions: readonly Action[],
  from: number,
): { readonly actions: readonly Action[]; readonly delay?: { readonly ms: number; readonly resumeAt: number } } {
  for (let j = from; j < actions.length; j++) {
    const a = actions[j]!;
    if (a.type !== 'delay') continue;
    // Validated rules always parse; 1 ms keeps a run moving should one not.
    const ms = parseDuration(a.for) ?? 1;
    return { actions: actions.slice(from, j), delay: { ms, resumeAt: j + 1 } };
  }
  return { actions: actions.slice(from) };
}

/** Whether a rule's actions wait anywhere (only such rules have runs that outlive a step). */
export const hasDelay = (actions: readonly Action[]): boolean => actions.some((a) => a.type === 'delay');
