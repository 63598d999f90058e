/** Hub actor: which devices a hub serves, its stream session, and how far its reports are durable. */
import type { Behavior, Step } from '../runtime/behavior.ts';
import type { DeviceAttach, HubConnection } from './device-state.ts';
import { deviceActorId, homeActorId, parseActorId } from './actor-id.ts';
import type { DomainEffect, DomainError, Outcome } from './types.ts';
import { checkInt, checkKey, checkNames, invalid, ok, VALUE_LIMITS } from './validation.ts';

/** Limits of a hub. */
export const HUB_LIMITS = {
  /** Devices one hub may serve. */
  devices: 1000,
} as const;

/** A device as the hub describes it in its hello. */
export interface HubDevice {
  readonly deviceId: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

/**
 * Hub actor state. `connectedAt` is epoch ms when the current session opened (absent while
 * disconnected); `sessionNode` the cluster node holding the stream; `lastDurableSeq` the highest
 * hub seq up to which every report is durable (never decreases).
 */
export interface HubState {
  readonly homeId: string;
  readonly hubId: string;
  readonly devices: readonly string[];
  readonly connected: boolean;
  readonly connectedAt?: number;
  readonly lastDurableSeq: number;
  readonly sessionNode?: string;
}

/** The hub opened its stream on node `nodeId` and lists the devices it serves. */
export interface HubHello {
  readonly type: 'hub.hello';
  readonly devices: readonly HubDevice[];
  readonly nodeId: string;
}
/** The stream closed on `nodeId`; ignored if another node holds the current session. */
export interface HubDisconnect {
  readonly type: 'hub.disconnect';
  readonly nodeId?: string;
}
/** Reports up to hub seq `upToSeq` are durable. */
export interface HubDurable {
  readonly type: 'hub.durable';
  readonly upToSeq: number;
}
export interface HubGet {
  readonly type: 'hub.get';
}
export type HubMsg = HubHello | HubDisconnect | HubDurable | HubGet;

/** Reply to hello and durable: the hub resumes sending after `lastDurableSeq`. */
export interface HubResume {
  readonly lastDurableSeq: number;
}
/** Reply to disconnect: whether the hub is still connected (true when the disconnect was ignored). */
export interface HubDisconnected {
  readonly connected: boolean;
}
/** Reply value per message type (every reply is an Outcome of it). */
export interface HubReplies {
  'hub.hello': HubResume;
  'hub.disconnect': HubDisconnected;
  'hub.durable': HubResume;
  'hub.get': HubState;
}
export type HubReply = Outcome<HubReplies[keyof HubReplies]>;
type HubStep = Step<HubState, HubReply, DomainEffect>;

const rejected = (s: HubState, error: DomainError): HubStep => ({ state: s, reply: { ok: false, error }, journal: false });
const tell = (s: HubState, deviceId: string, msg: DeviceAttach | HubConnection): DomainEffect => ({
  type: 'tell',
  to: deviceActorId(s.homeId, deviceId),
  msg,
});

/** Checks a hello's device list: ids 1..128 characters, unique, at most `HUB_LIMITS.devices`. */
export function checkHubDevices(devices: unknown): DomainError | undefined {
  if (!Array.isArray(devices) || devices.length > HUB_LIMITS.devices) {
    return invalid('devices', `must be an array of at most ${HUB_LIMITS.devices} devices`);
  }
  const seen = new Set<string>();
  for (const [i, d] of devices.entries()) {
    const at = `devices[${i}]`;
    if (typeof d !== 'object' || d === null) return invalid(at, 'must be an object');
    const { deviceId, type, capabilities } = d as Record<string, unknown>;
    const e =
      checkKey(`${at}.deviceId`, deviceId, VALUE_LIMITS.idLength) ??
      checkKey(`${at}.type`, type, VALUE_LIMITS.nameLength) ??
      checkNames(`${at}.capabilities`, capabilities, VALUE_LIMITS.attributesPerMessage);
    if (e) return e;
    if (seen.has(deviceId as string)) return invalid(`${at}.deviceId`, `repeats ${String(deviceId)}`);
    seen.add(deviceId as string);
  }
  return undefined;
}

function hello(s: HubState, m: HubHello, now: number): HubStep {
  const e = checkKey('nodeId', m.nodeId, VALUE_LIMITS.idLength) ?? checkHubDevices(m.devices);
  if (e) return rejected(s, e);
  const connection: HubConnection = { type: 'hub.connection', online: true, hubId: s.hubId };
  // Attach is idempotent on the device and home side, so every device is told, then its stream
  // is opened; the home learns which hub serves the device.
  const effects: DomainEffect[] = m.devices.flatMap((d): DomainEffect[] => [
    tell(s, d.deviceId, { type: 'device.attach', hubId: s.hubId, deviceType: d.type, capabilities: [...d.capabilities] }),
    tell(s, d.deviceId, connection),
    {
      type: 'tell',
      to: homeActorId(s.homeId),
      msg: { type: 'device.attached', deviceId: d.deviceId, deviceType: d.type, hubId: s.hubId },
    },
  ]);
  const served = new Set(m.devices.map((d) => d.deviceId));
  for (const gone of s.devices.filter((id) => !served.has(id))) {
    effects.push(tell(s, gone, { type: 'hub.connection', online: false, hubId: s.hubId }));
  }
  const next: HubState = {
    ...s,
    devices: m.devices.map((d) => d.deviceId),
    connected: true,
    connectedAt: now,
    sessionNode: m.nodeId,
  };
  return { state: next, reply: ok({ lastDurableSeq: s.lastDurableSeq }), effects, journal: true };
}

function disconnect(s: HubState, m: HubDisconnect): HubStep {
  if (m.nodeId !== undefined && typeof m.nodeId !== 'string') return rejected(s, invalid('nodeId', 'must be a string'));
  // A late close from a node that lost the session must not take down the new one.
  const stale = m.nodeId !== undefined && s.sessionNode !== undefined && m.nodeId !== s.sessionNode;
  if (!s.connected || stale) return { state: s, reply: ok({ connected: s.connected }), journal: false };
  const { connectedAt: _at, sessionNode: _node, ...rest } = s;
  const effects = s.devices.map((id) => tell(s, id, { type: 'hub.connection', online: false, hubId: s.hubId }));
  return { state: { ...rest, connected: false }, reply: ok({ connected: false }), effects, journal: true };
}

function durable(s: HubState, m: HubDurable): HubStep {
  const e = checkInt('upToSeq', m.upToSeq, 0);
  if (e) return rejected(s, e);
  if (m.upToSeq <= s.lastDurableSeq) return { state: s, reply: ok({ lastDurableSeq: s.lastDurableSeq }), journal: false };
  return { state: { ...s, lastDurableSeq: m.upToSeq }, reply: ok({ lastDurableSeq: m.upToSeq }), journal: true };
}

/** The hub actor, ids `hub:{homeId}:{hubId}` (homeId has no `:`). */
export const hubBehavior: Behavior<HubState, HubMsg, HubReply, DomainEffect> = {
  kind: 'hub',
  initial(id) {
    const parsed = parseActorId(id);
    if (parsed?.kind !== 'hub') throw new Error(`not a hub actor id: ${id}`);
    return { homeId: parsed.homeId, hubId: parsed.hubId, devices: [], connected: false, lastDurableSeq: 0 };
  },
  receive(state, msg, ctx) {
    switch (msg.type) {
      case 'hub.hello':
        return hello(state, msg, ctx.now);
      case 'hub.disconnect':
        return disconnect(state, msg);
      case 'hub.durable':
        return durable(state, msg);
      case 'hub.get':
        return { state, reply: ok(state), journal: false };
      default:
        return rejected(state, invalid('type', `is not a hub message: ${String((msg as { type?: unknown }).type)}`));
    }
  },
};
