/** Storm control for rules: causal depth limit, per-home command budget, re-trigger detection. */

/** Limits of storm control. Times are milliseconds. */
export interface StormConfig {
  /** A change at causal depth >= maxDepth that fires a rule suspends that rule. Default 4. */
  readonly maxDepth: number;
  /** Commands a home may issue per `budgetWindowMs` (token bucket capacity). Default 30. */
  readonly budgetCommands: number;
  /** The bucket refills `budgetCommands` tokens per this many ms, continuously. Default 60 000. */
  readonly budgetWindowMs: number;
  /** A rule firing more than this many times within `retriggerWindowMs` is suspended. Default 10. */
  readonly retriggerMax: number;
  /** Default 10 000. */
  readonly retriggerWindowMs: number;
}

export const DEFAULT_STORM_CONFIG: StormConfig = {
  maxDepth: 4,
  budgetCommands: 30,
  budgetWindowMs: 60_000,
  retriggerMax: 10,
  retriggerWindowMs: 10_000,
};

/** A home's command token bucket: `tokens` available as of `updatedAt` (epoch ms). Plain JSON. */
export interface CommandBudget {
  readonly tokens: number;
  readonly updatedAt: number;
}

/** What storm control decided about a firing whose conditions passed. */
export type Admission =
  /** The rule is suspended: ignore the firing, log nothing. */
  | { readonly verdict: 'skip' }
  /** Suspend the rule now with `reason`; take no action. */
  | { readonly verdict: 'suspend'; readonly reason: string; readonly recentFirings: number[] }
  /** Not enough budget for the firing's commands; take no action. */
  | { readonly verdict: 'budget_exhausted'; readonly reason: string; readonly recentFirings: number[]; readonly budget: CommandBudget }
  /** Fire: `budget` has the firing's commands taken out. */
  | { readonly verdict: 'fire'; readonly recentFirings: number[]; readonly budget: CommandBudget };

/** A full bucket. */
export function initialBudget(config: StormConfig = DEFAULT_STORM_CONFIG, now = 0): CommandBudget {
  return { tokens: config.budgetCommands, updatedAt: now };
}

/** The bucket at `now`, refilled continuously and capped at capacity. A clock going back refills nothing. */
export function refillBudget(budget: CommandBudget, now: number, config: StormConfig = DEFAULT_STORM_CONFIG): CommandBudget {
  const elapsed = Math.max(0, now - budget.updatedAt);
  const tokens = Math.min(config.budgetCommands, budget.tokens + (elapsed * config.budgetCommands) / config.budgetWindowMs);
  return { tokens, updatedAt: Math.max(now, budget.updatedAt) };
}

/** Takes `cost` tokens at `now` if the refilled bucket holds them (all or nothing). */
export function takeBudget(
  budget: CommandBudget,
  cost: number,
  now: number,
  config: StormConfig = DEFAULT_STORM_CONFIG,
): { readonly ok: boolean; readonly budget: CommandBudget } {
  const refilled = refillBudget(budget, now, config);
  if (refilled.tokens < cost) return { ok: false, budget: refilled };
  return { ok: true, budget: { tokens: refilled.tokens - cost, updatedAt: refilled.updatedAt } };
}

/** True when a change at `depth` is too deep in a causal chain to fire any rule. */
export function exceedsDepth(depth: number, config: StormConfig = DEFAULT_STORM_CONFIG): boolean {
  return depth >= config.maxDepth;
}

/**
 * Records a firing at `now` in a rule's recent firing times, dropping those outside the window.
 * `storm` is true when the window now holds more than `retriggerMax` firings.
 */
export function recordFiring(
  recent: readonly number[],
  now: number,
  config: StormConfig = DEFAULT_STORM_CONFIG,
): { readonly recentFirings: number[]; readonly count: number; readonly storm: boolean } {
  const since = now - config.retriggerWindowMs;
  const recentFirings = [...recent.filter((t) => t > since), now];
  return { recentFirings, count: recentFirings.length, storm: recentFirings.length > config.retriggerMax };
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;

/** The reason given to the app when a chain of rule-caused changes gets too deep. */
export function depthReason(depth: number, config: StormConfig = DEFAULT_STORM_CONFIG): string {
  return (
    `causal_depth_exceeded: a change at depth ${depth} (limit ${config.maxDepth}) triggered this rule; ` +
    'its commands cause changes that trigger rules again, possibly itself'
  );
}

/** The reason given to the app when a rule fires too often. */
export function stormReason(count: number, config: StormConfig = DEFAULT_STORM_CONFIG): string {
  return `storm: fired ${count} times in ${seconds(config.retriggerWindowMs)}`;
}

/** The reason logged when the home's command budget cannot pay for a firing. */
export function budgetReason(cost: number, budget: CommandBudget, config: StormConfig = DEFAULT_STORM_CONFIG): string {
  return (
    `budget_exhausted: needs ${cost} command(s), ${Math.floor(budget.tokens)} left ` +
    `(home limit ${config.budgetCommands} per ${seconds(config.budgetWindowMs)})`
  );
}

/**
 * Storm control for one passing firing, in order: a suspended rule is skipped; a change at or past
 * the depth limit suspends the rule; more than `retriggerMax` firings in the window suspend it;
 * then the firing's `cost` (commands it would issue) must fit the home's budget.
 */
export function admitFiring(input: {
  readonly suspended: boolean;
  readonly depth: number;
  readonly recentFirings: readonly number[];
  readonly budget: CommandBudget;
  readonly cost: number;
  readonly now: number;
  readonly config?: StormConfig;
}): Admission {
  const config = input.config ?? DEFAULT_STORM_CONFIG;
  if (input.suspended) return { verdict: 'skip' };
  if (exceedsDepth(input.depth, config)) {
    return { verdict: 'suspend', reason: depthReason(input.depth, config), recentFirings: [...input.recentFirings] };
  }
  const fired = recordFiring(input.recentFirings, input.now, config);
  if (fired.storm) return { verdict: 'suspend', reason: stormReason(fired.count, config), recentFirings: fired.recentFirings };
  const taken = takeBudget(input.budget, input.cost, input.now, config);
  if (!taken.ok) {
    return {
      verdict: 'budget_exhausted',
      reason: budgetReason(input.cost, taken.budget, config),
      recentFirings: fired.recentFirings,
      budget: taken.budget,
    };
  }
  return { verdict: 'fire', recentFirings: fired.recentFirings, budget: taken.budget };
}
