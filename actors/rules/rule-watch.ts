/**
 * How a home keeps what its rules read of its devices: it tells each device its watch (what to
 * forward) and keeps only the values its conditions read. Everything here is derived from the
 * rules, so a report no rule reads never reaches the home.
 *
 * Why the kept values are journaled (only when they change) rather than kept unjournaled and
 * re-read from the devices after recovery: a rule firing is a journaled step whose outcome
 * (decision, budget, command ids) depends on the values its conditions read, and recovery replays
 * that step through the reducer. Values that changed between journaled steps without being
 * journaled would be missing at replay, so the replayed step could decide otherwise than the first
 * run did (a different command id is a duplicate command). Keeping only condition-read attributes
 * makes those steps rare: a change of anything else (trigger-only attributes, and those only read
 * by conditions of rules the same device triggers) writes nothing on the home unless a rule fires.
 */
import { deviceActorId } from '../actor-id.ts';
import type { DeviceRecord, HomeState } from '../home-messages.ts';
import type { DeviceWatchMsg, DomainEffect, Value } from '../types.ts';
import { ownGet } from '../validation.ts';
import { changedWatches, interestOf, watchOf, type DeviceWatch, type RuleInterest } from './rule-interest.ts';

/** A `tell` of `watch` to the home's device `deviceId`. */
export function watchEffect(homeId: string, deviceId: string, watch: DeviceWatch): DomainEffect {
  const msg: DeviceWatchMsg = { type: 'device.watch', attributes: watch.attributes, events: watch.events, values: watch.values };
  return { type: 'tell', to: deviceActorId(homeId, deviceId), msg };
}

/** The watch `deviceId` must have under the home's current rules, as a tell. */
export const currentWatch = (s: HomeState, deviceId: string): DomainEffect =>
  watchEffect(s.homeId, deviceId, watchOf(interestOf(s.rules), deviceId));

/**
 * `values` restricted to what `kept` lists; the same object when nothing is dropped. Runs on a
 * rule edit (and once when a home leaves the old mirror), never per change.
 */
export function pruneValues(
  values: HomeState['values'],
  kept: ReadonlyMap<string, readonly string[]>,
): Readonly<Record<string, Readonly<Record<string, Value>>>> {
  let pruned: Record<string, Readonly<Record<string, Value>>> | undefined;
  for (const [device, attributes] of Object.entries(values)) {
    const keep = kept.get(device);
    const names = Object.keys(attributes);
    const left = keep === undefined ? [] : names.filter((k) => keep.includes(k));
    if (left.length === names.length) continue;
    pruned ??= { ...values };
    if (left.length === 0) delete pruned[device];
    else pruned[device] = Object.fromEntries(left.map((k) => [k, attributes[k]!]));
  }
  return pruned ?? values;
}

/** Devices whose kept attributes under `after` include one not kept under `before`. */
function gainedKept(before: RuleInterest, after: RuleInterest): string[] {
  const out: string[] = [];
  for (const [device, names] of after.kept) {
    const was = before.kept.get(device);
    if (was === undefined || names.some((k) => !was.includes(k))) out.push(device);
  }
  return out;
}

/**
 * After a rule edit from `before` to `next`: the values no rule keeps any more are dropped, and
 * each known device whose watch changed, or whose values the home starts keeping, is told its
 * watch. It answers with its current values: that is how a condition that starts reading an
 * attribute gets its value, even when the device forwards that attribute already (another rule
 * triggers on it) and its watch is unchanged; such a device writes nothing, it only answers.
 */
export function rulesEdited(before: HomeState, next: HomeState): { state: HomeState; effects: DomainEffect[] } {
  const was = interestOf(before.rules);
  const is = interestOf(next.rules);
  const told = new Set([...changedWatches(was, is).map(([device]) => device), ...gainedKept(was, is)]);
  // Only devices the home knows: one it learns of later hears its watch then (attach, or its
  // first change, which it forwards unfiltered), and a rule naming a device that never appears
  // activates no actor.
  const effects = [...told]
    .filter((device) => Object.hasOwn(next.devices, device))
    .sort()
    .map((device) => watchEffect(next.homeId, device, watchOf(is, device)));
  // A mirroring home keeps every value until it upgrades (see home-upgrade.ts).
  const values = next.mirror === true ? next.values : pruneValues(next.values, is.kept);
  return { state: values === next.values ? next : { ...next, values }, effects };
}

/**
 * Keeps the values of `attributes` (a device's current values) that conditions read; the same
 * state when none of them differs. Copies that device's kept values and the (small) map of devices
 * conditions read, never the home's map of every device.
 */
export function keepValues(s: HomeState, deviceId: string, attributes: Readonly<Record<string, Value>>): HomeState {
  // A mirroring home keeps every value it hears of (see home-upgrade.ts).
  const kept = s.mirror === true ? Object.keys(attributes) : interestOf(s.rules).kept.get(deviceId);
  if (kept === undefined) return s;
  const old = ownGet(s.values, deviceId);
  let next: Record<string, Value> | undefined;
  for (const k of kept) {
    const v = ownGet(attributes, k);
    if (v === undefined || (old !== undefined && ownGet(old, k) === v)) continue;
    (next ??= { ...old })[k] = v;
  }
  return next === undefined ? s : { ...s, values: { ...s.values, [deviceId]: next } };
}

/** Records a device the home hears of with its type; the same state when it knows it already. */
export function knowDevice(s: HomeState, deviceId: string, type: string): HomeState {
  const old = ownGet(s.devices, deviceId);
  if (old !== undefined && old.type === type) return s;
  const device: DeviceRecord = { type, ...(old?.hubId === undefined ? {} : { hubId: old.hubId }) };
  // A new device or a new type: rare, so copying the device map here is fine.
  return { ...s, devices: { ...s.devices, [deviceId]: device } };
}
