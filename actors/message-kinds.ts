/**
 * The message types each actor kind accepts, for checks at the node's borders (a peer node's
 * forwarded messages): one constant-time lookup instead of running the reducer on garbage.
 */
import { parseActorId, type ParsedActorId } from './actor-id.ts';
import type { DeviceMsg } from './device-state.ts';
import type { HomeMsg } from './home-messages.ts';
import type { HubMsg } from './hub.ts';

/**
 * Every member of each message union, checked by the compiler both ways: a message type added to
 * DeviceMsg, HomeMsg or HubMsg without an entry here (or an entry that is not one) fails to build.
 */
const DEVICE = {
  'device.attach': true,
  'hub.connection': true,
  report: true,
  'report.batch': true,
  'shadow.get': true,
  'shadow.setDesired': true,
  'command.issue': true,
  'command.result': true,
  'command.get': true,
  'command.expire': true,
  'device.watch': true,
  'device.remove': true,
} as const satisfies Record<DeviceMsg['type'], true>;

const HOME = {
  'home.upsert': true,
  'home.get': true,
  'home.registerHub': true,
  'home.hubs': true,
  'home.devices': true,
  'home.rotateHubSecret': true,
  'home.removeHub': true,
  'home.delete': true,
  'device.attached': true,
  'device.changed': true,
  'device.changes': true,
  'device.values': true,
  'home.upgrade': true,
  'rules.list': true,
  'rules.get': true,
  'rules.put': true,
  'rules.delete': true,
  'rules.resume': true,
  'scenes.list': true,
  'scenes.get': true,
  'scenes.put': true,
  'scenes.delete': true,
  'scenes.activate': true,
  'decisions.list': true,
} as const satisfies Record<HomeMsg['type'], true>;

const HUB = {
  'hub.hello': true,
  'hub.disconnect': true,
  'hub.durable': true,
  'hub.get': true,
  'hub.remove': true,
  'hub.registered': true,
  'hub.secretRotated': true,
} as const satisfies Record<HubMsg['type'], true>;

/** Message types by actor kind. */
export const MESSAGE_TYPES: Readonly<Record<ParsedActorId['kind'], ReadonlySet<string>>> = {
  device: new Set(Object.keys(DEVICE)),
  home: new Set(Object.keys(HOME)),
  hub: new Set(Object.keys(HUB)),
};

/** Why a message cannot be for an actor: its id names no actor kind, it is not `{type: string, ...}`, or its kind has no such type. */
export type MessageRefusal = 'unknown_actor' | 'not_a_message' | 'unknown_type';

/**
 * undefined when `msg` is a message type the actor kind of `actorId` handles (its fields are still
 * the reducer's to validate), else why not.
 */
export function messageRefusal(actorId: string, msg: unknown): MessageRefusal | undefined {
  const parsed = parseActorId(actorId);
  if (parsed === undefined) return 'unknown_actor';
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'not_a_message';
  const type = (msg as { type?: unknown }).type;
  if (typeof type !== 'string') return 'not_a_message';
  return MESSAGE_TYPES[parsed.kind].has(type) ? undefined : 'unknown_type';
}
