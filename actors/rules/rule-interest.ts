/**
 * What a home's rules read of each device: the attributes and events a device must forward to its
 * home (its watch), and the attribute values the home must keep because conditions read them.
 */
import type { AttributeCondition, Condition, Rule, Trigger } from './rule-types.ts';

/**
 * What one device forwards to its home (names sorted, unique): a report that changes one of
 * `attributes` or carries one of `events`, with the current values of `attributes` and `values`.
 * `values` are read only by conditions of rules the device itself triggers: they travel with the
 * change, so a change of them alone is not forwarded.
 */
export interface DeviceWatch {
  readonly attributes: readonly string[];
  readonly events: readonly string[];
  readonly values: readonly string[];
}

/** A device no rule reads: it forwards nothing. */
export const NO_WATCH: DeviceWatch = { attributes: [], events: [], values: [] };

/** The interest of a home's rules, per device id. */
export interface RuleInterest {
  /** Devices some enabled rule reads, with what each must forward. Devices not listed forward nothing. */
  readonly watch: ReadonlyMap<string, DeviceWatch>;
  /**
   * Attributes whose latest value the home keeps, per device: those a condition (at any depth of
   * and/or/not) reads in a rule that something other than a change of that device fires: another
   * device, a schedule, or an attribute trigger's `for` timer (which fires after the change has
   * gone). A trigger reads only the change that carries it, and a condition on the device whose
   * change fires the rule reads the values that travel with that change, so neither is kept.
   */
  readonly kept: ReadonlyMap<string, readonly string[]>;
}

interface Collecting {
  readonly attributes: Set<string>;
  readonly events: Set<string>;
  readonly values: Set<string>;
}

const sorted = (set: ReadonlySet<string>): string[] => [...set].sort();

/** The attribute conditions of `conditions`, including those inside and/or/not. */
function leaves(conditions: readonly Condition[], out: AttributeCondition[] = []): AttributeCondition[] {
  for (const c of conditions) {
    if (c.type === 'attribute') out.push(c);
    else if (c.type === 'not') leaves([c.condition], out);
    else if (c.type === 'and' || c.type === 'or') leaves(c.conditions, out);
  }
  return out;
}

/** The device whose change fires the rule at once, with its values: undefined for timer-fired triggers. */
const changeDevice = (t: Trigger): string | undefined =>
  t.type === 'event' || (t.type === 'attribute' && t.for === undefined) ? t.device : undefined;

function derive(rules: Readonly<Record<string, Rule>>): RuleInterest {
  const watch = new Map<string, Collecting>();
  const kept = new Map<string, Set<string>>();
  const of = (device: string): Collecting => {
    let w = watch.get(device);
    if (w === undefined) watch.set(device, (w = { attributes: new Set(), events: new Set(), values: new Set() }));
    return w;
  };
  for (const rule of Object.values(rules)) {
    // A disabled rule reads nothing; enabling it is a `rules.put`, which derives the interest again.
    // A suspended rule still counts: `rules.resume` does not change the rules.
    if (!rule.enabled) continue;
    for (const t of rule.when) {
      if (t.type === 'attribute') of(t.device).attributes.add(t.attribute);
      else if (t.type === 'event') of(t.device).events.add(t.event);
    }
    for (const c of leaves(rule.if)) {
      // Checked on a change, conditions read the triggering device's values from it, any other's from the home;
      // a timer's firing (checkConditions without a change) reads every value from the home.
      if (rule.when.some((t) => changeDevice(t) === c.device)) of(c.device).values.add(c.attribute);
      if (rule.when.some((t) => changeDevice(t) !== c.device)) {
        of(c.device).attributes.add(c.attribute);
        let k = kept.get(c.device);
        if (k === undefined) kept.set(c.device, (k = new Set()));
        k.add(c.attribute);
      }
    }
  }
  return {
    watch: new Map(
      [...watch].map(([d, w]) => {
        // A value that is forwarded anyway travels with the change already.
        const values = new Set([...w.values].filter((v) => !w.attributes.has(v)));
        return [d, { attributes: sorted(w.attributes), events: sorted(w.events), values: sorted(values) }];
      }),
    ),
    kept: new Map([...kept].map(([d, k]) => [d, sorted(k)])),
  };
}

// States are immutable and a rule edit replaces the `rules` record, so the interest is derived once
// per rules object, not once per change; the cache holds nothing that is not in a live state.
const cache = new WeakMap<object, RuleInterest>();

/** The interest of `rules` (memoized per rules object). */
export function interestOf(rules: Readonly<Record<string, Rule>>): RuleInterest {
  let interest = cache.get(rules);
  if (interest === undefined) cache.set(rules, (interest = derive(rules)));
  return interest;
}

/** What `device` must forward under `interest`. */
export const watchOf = (interest: RuleInterest, device: string): DeviceWatch => interest.watch.get(device) ?? NO_WATCH;

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export const sameWatch = (a: DeviceWatch, b: DeviceWatch): boolean =>
  sameList(a.attributes, b.attributes) && sameList(a.events, b.events) && sameList(a.values, b.values);

/** Devices whose watch differs between two interests, with their new watch, sorted by device id. */
export function changedWatches(before: RuleInterest, after: RuleInterest): [string, DeviceWatch][] {
  const devices = new Set([...before.watch.keys(), ...after.watch.keys()]);
  const out: [string, DeviceWatch][] = [];
  for (const d of [...devices].sort()) {
    const next = watchOf(after, d);
    if (!sameWatch(watchOf(before, d), next)) out.push([d, next]);
  }
  return out;
}
