/** Actor ids: the one place that builds and parses `home:{homeId}`, `device:{homeId}:{deviceId}` and `hub:{homeId}:{hubId}`. */

/**
 * Home ids (the shard key) are 1-64 of `A-Z a-z 0-9 _ . -`: safe in actor ids, keys and URLs. The
 * homeId is always the segment after the kind, so `cluster/shard-of.ts` finds the shard key of
 * any id without knowing its kind (a home, its devices and hubs share a shard).
 */
export const HOME_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export type HomeActorId = `home:${string}`;
export type DeviceActorId = `device:${string}:${string}`;
export type HubActorId = `hub:${string}:${string}`;
export type ActorId = HomeActorId | DeviceActorId | HubActorId;

/** An actor id taken apart. Device and hub ids may hold any character, `:` included. */
export type ParsedActorId =
  | { readonly kind: 'home'; readonly homeId: string }
  | { readonly kind: 'device'; readonly homeId: string; readonly deviceId: string }
  | { readonly kind: 'hub'; readonly homeId: string; readonly hubId: string };

/** `homeId` must be a HOME_ID (it has no `:`); callers check it at the edge. */
export const homeActorId = (homeId: string): HomeActorId => `home:${homeId}`;
export const deviceActorId = (homeId: string, deviceId: string): DeviceActorId => `device:${homeId}:${deviceId}`;
export const hubActorId = (homeId: string, hubId: string): HubActorId => `hub:${homeId}:${hubId}`;

/**
 * The parts of an id built by this module, or undefined for anything else: an unknown kind, an
 * empty homeId or local id, a home id with more segments.
 */
export function parseActorId(id: string): ParsedActorId | undefined {
  const first = id.indexOf(':');
  if (first < 0) return undefined;
  const kind = id.slice(0, first);
  const rest = id.slice(first + 1);
  if (kind === 'home') return rest.length > 0 && !rest.includes(':') ? { kind, homeId: rest } : undefined;
  const second = rest.indexOf(':');
  if (second <= 0 || second === rest.length - 1) return undefined;
  const homeId = rest.slice(0, second);
  const local = rest.slice(second + 1);
  if (kind === 'device') return { kind, homeId, deviceId: local };
  if (kind === 'hub') return { kind, homeId, hubId: local };
  return undefined;
}
