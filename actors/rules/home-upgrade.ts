/**
 * Loading a home state written before watches. Such a state mirrors every reported value of every
 * device in `devices[id].attributes`, and its journal tail was written by a reducer that kept
 * them all: a rule put after a change could read a value no rule read when it arrived.
 *
 * Why the home keeps that mirror until a journaled `home.upgrade` rather than pruning it when it
 * loads: recovery replays the tail through this reducer, and a replayed rule firing must decide as
 * the first run did (its command ids and decision depend on the values it read). Pruning on load
 * would drop a value an old entry still reads. Pruning on the first live message would not do
 * either: entries journaled after it (by this code, live) would replay against the unpruned mirror
 * and could decide otherwise. So the switch is itself a journaled message: every live step of a
 * mirroring home tells the home `home.upgrade` (the first to arrive upgrades, the rest are reads),
 * and a replay switches at the same point of the journal as the first run did.
 */
import type { DeviceRecord, HomeState } from '../home-messages.ts';
import type { DomainEffect, Value } from '../types.ts';
import { homeActorId } from '../actor-id.ts';
import { interestOf } from './rule-interest.ts';
import { pruneValues } from './rule-watch.ts';

type LegacyRecord = DeviceRecord & { readonly attributes?: Readonly<Record<string, Value>> };

/** A state written before watches: no `values`, the device records hold every value. */
const isLegacy = (s: HomeState): boolean => (s as Partial<HomeState>).values === undefined;

/**
 * A state written before watches in today's shape, still mirroring: every device's values move to
 * `values` and `mirror` is set. Any other state is returned as it is. Pure, so a replay from such a
 * snapshot derives the same state.
 */
export function loadHome(s: HomeState): HomeState {
  if (!isLegacy(s)) return s;
  const devices: Record<string, DeviceRecord> = {};
  const values: Record<string, Readonly<Record<string, Value>>> = {};
  for (const [id, d] of Object.entries(s.devices as Readonly<Record<string, LegacyRecord>>)) {
    devices[id] = { type: d.type, ...(d.hubId === undefined ? {} : { hubId: d.hubId }) };
    if (d.attributes !== undefined && Object.keys(d.attributes).length > 0) values[id] = { ...d.attributes };
  }
  return { ...s, devices, values, mirror: true };
}

/** The `home.upgrade` a mirroring home sends itself after each live step. */
export const upgradeEffect = (s: HomeState): DomainEffect => ({
  type: 'tell',
  to: homeActorId(s.homeId),
  msg: { type: 'home.upgrade' },
});

/**
 * A mirroring home (`loadHome`) that keeps from now on only the values its rules' conditions read;
 * the same state when it is not mirroring.
 */
export function upgradeHome(s: HomeState): HomeState {
  if (s.mirror !== true) return s;
  const { mirror: _mirror, ...rest } = s;
  return { ...rest, values: pruneValues(s.values, interestOf(s.rules).kept) };
}
