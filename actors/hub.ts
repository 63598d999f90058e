/** Hub actor: which devices a hub serves, its stream session, and how far its reports are durable. */
import type { Behavior, Step } from '../runtime/behavior.ts';
import type { DeviceAttach, HubConnection } from './device-state.ts';
import { deviceActorId, homeActorId, parseActorId } from './actor-id.ts';
import type { DomainEffect, DomainError, HubSessionEndReason, Outcome } from './types.ts';
import { checkInt, checkKey, checkNames, invalid, ok, VALUE_LIMITS } from './validation.ts';

/** Limits of a hub. */
export const HUB_LIMITS = {
  /** Devices one hub may serve. */
  devices: 1000,
  /**
   * Secrets one rotation may name as retired. A hub holds a secret per rotation still in its grace
   * period (up to 30 days), so frequent rotations with a long grace period add up; beyond this the
   * caller names the first ones only (see the rotate route).
   */
  retiredPerRotation: 1000,
} as const;

/** A device as the hub describes it in its hello. */
export interface HubDevice {
  readonly deviceId: string;
  readonly type: string;
  readonly capabilities: readonly string[];
}

/**
 * The public id of a hub secret, from its digest (see `hashSecret`): `hc_` and the first 24 hex
 * digits. It names the secret a session authenticated with in the hub actor's state and journal
 * without storing the digest, the credential store's lookup key.
 */
export const hubCredentialIdOf = (digest: string): string => `hc_${digest.slice(0, 24)}`;

/**
 * A rotation of an older release (journaled `hub.secretRotated {keep, othersValidUntil}`): the
 * secrets `keep` (credential ids) stay valid, every other one stops at `othersValidUntil`. Kept in
 * a state until the first rotation of the current shape replaces it.
 */
export interface HubSecretRotation {
  readonly keep: readonly string[];
  readonly othersValidUntil: number;
}

/** A secret a rotation retired: its credential id and the epoch ms at which it stops. */
export interface RetiredHubSecret {
  readonly credentialId: string;
  readonly until: number;
}

/**
 * Retired secrets the hub actor remembers, newest last. Older entries are dropped: a dropped
 * secret is out of the credential store by then or stops there at its own `until` (the store
 * ends it independently of the actor), and the ingress looks the secret up in the store again
 * right before it sends the hello, so a hub cannot come back with it. The list only spares the
 * store that check's race and ends sessions already open; 16 covers a burst of rotations.
 */
export const RETIRED_SECRETS_KEPT = 16;

/**
 * Hub actor state. `connectedAt` is epoch ms when the current session opened (absent while
 * disconnected); `sessionNode` the cluster node holding the stream; `lastDurableSeq` the highest
 * hub seq up to which every report is durable (never decreases while the hub is registered).
 */
export interface HubState {
  readonly homeId: string;
  readonly hubId: string;
  readonly devices: readonly string[];
  readonly connected: boolean;
  readonly connectedAt?: number;
  readonly lastDurableSeq: number;
  readonly sessionNode?: string;
  /**
   * Id of the current session on `sessionNode` (absent in states journaled before it existed):
   * with the node it names the one stream that may end the session or move the cursor, so a late
   * message from an older stream never touches a newer one.
   */
  readonly sessionId?: string;
  /** Credential id (`hubCredentialIdOf`) of the secret the current session authenticated with, when its node said. */
  readonly sessionCredential?: string;
  /** Epoch ms at which the current session's secret stops (a rotation retired it with a grace period). */
  readonly sessionValidUntil?: number;
  /**
   * The last rotation of an older release, which named the secrets kept rather than those retired
   * (absent once a rotation of the current shape came, or when there was none).
   */
  readonly secrets?: HubSecretRotation;
  /** Secrets retired by rotations (at most `RETIRED_SECRETS_KEPT`, newest last; absent: none). */
  readonly retiredSecrets?: readonly RetiredHubSecret[];
  /**
   * Set by `hub.remove`: everything else is as in a hub never registered, and a hello is refused
   * until `hub.registered` (a registration anew) starts the hub afresh. Without it a hub removed
   * and registered again would resume at its old cursor, and its reports up to it (a factory-reset
   * hub counts from 1 again) would be acked as duplicates and never applied.
   */
  readonly removed?: true;
  /**
   * Registrations anew after a removal (absent: 0), kept through the removal. Every `device.attach`
   * carries it as `hubIncarnation`, so a device restarts its seq order when the hub it follows
   * starts again from seq 1 (its devices, unlike the hub's cursor, outlive the removal).
   */
  readonly incarnation?: number;
}

/**
 * The hub opened stream `sessionId` on node `nodeId` and lists the devices it serves. A session
 * still open elsewhere is superseded: it is ended with ABORTED (a `hub.session.end` effect).
 * Refused (field `credentialId`) while the hub is removed (not_found: the ingress ends the stream
 * with UNAVAILABLE, as its secret authenticated, so the hub was registered again and `hub.registered`
 * is on its way) and when a rotation retired the stream's secret and its grace period is over
 * (failed_precondition: the stream ends with UNAUTHENTICATED). A secret no rotation named is
 * accepted: a new one is stored before its rotation tells the hub actor, and may be used at once.
 */
export interface HubHello {
  readonly type: 'hub.hello';
  readonly devices: readonly HubDevice[];
  readonly nodeId: string;
  /** Unique per stream; absent from callers that predate it (then the node alone identifies the session). */
  readonly sessionId?: string;
  /** `hubCredentialIdOf` the digest of the secret the stream authenticated with; absent from callers that predate it. */
  readonly credentialId?: string;
}
/** The stream closed on `nodeId`; ignored unless it is the current session (node, and session id when given). */
export interface HubDisconnect {
  readonly type: 'hub.disconnect';
  readonly nodeId?: string;
  readonly sessionId?: string;
}
/**
 * Reports up to hub seq `upToSeq` are durable, says the session on `nodeId`. Of the sender, the
 * actor checks only that `nodeId` is the node holding the hub's current session (a hub with no
 * open session refuses every one): the cursor is where the hub resumes, so one moved by anyone
 * else (a superseded stream's node, a closed session) would make the hub skip reports that were
 * never applied. The
 * value is not compared with what the hub sent (the actor does not know it): `upToSeq` is only
 * checked to be a safe integer of at least 0, and a value at or below the cursor is ignored, so the
 * cursor never moves back. The node is trusted to name itself and to report only seqs it made
 * durable: messages reach a hub actor only from the node's own hub ingress or over the peer port,
 * whose peers must prove cluster membership (mutual TLS or the cluster secret). Within the node the
 * ingress writes the cursor only from its current session (durable-cursor.ts), so the session id
 * need not be checked here.
 *
 * A journaled one is replayed by its `upToSeq` alone: entries of older releases have no `nodeId`,
 * or came from a node that had lost the session, and were accepted; refusing them now would bring
 * the recovered cursor back below what the hub was told.
 */
export interface HubDurable {
  readonly type: 'hub.durable';
  readonly upToSeq: number;
  readonly nodeId: string;
}
export interface HubGet {
  readonly type: 'hub.get';
}
/**
 * The hub was deleted: its open stream, wherever it is, ends with UNAUTHENTICATED, its state
 * (devices, cursor, session) is erased and it is marked `removed` (a hello is refused).
 */
export interface HubRemove {
  readonly type: 'hub.remove';
}
/** The home registered the hub (anew or for the first time): a removed hub starts as a hub never seen (cursor 0). */
export interface HubRegistered {
  readonly type: 'hub.registered';
}
/**
 * The home rotated the hub's secret: the secrets `retire` (credential ids: those the hub had in
 * the credential store when the rotation began, and one the home recorded that predates the
 * store's index of hub secrets) stop at `until` (epoch ms), as the store ends them. Every other
 * secret, the rotation's new one and that of a rotation racing it included, is left alone. A
 * session open on a retired secret ends then (at once when it is past) with UNAUTHENTICATED: the
 * `hub.session.end` effect carries the time and the session's node enforces it with a timer. A
 * secret already retired keeps the earlier of its ends.
 */
export interface HubSecretRotated {
  readonly type: 'hub.secretRotated';
  readonly retire: readonly string[];
  readonly until: number;
}
/**
 * The shape of an older release (still in journals, and sent by an older home during a rolling
 * upgrade): the secrets `keep` stay, every other one stops at `othersValidUntil`.
 */
export interface HubSecretRotatedKeeping {
  readonly type: 'hub.secretRotated';
  readonly keep: readonly string[];
  readonly othersValidUntil: number;
}
export type HubMsg =
  HubHello | HubDisconnect | HubDurable | HubGet | HubRemove | HubRegistered | HubSecretRotated | HubSecretRotatedKeeping;

/**
 * Reply to hello and durable: the hub resumes sending after `lastDurableSeq`. `validUntil` (hello
 * only): epoch ms at which the stream's secret stops, when a rotation retired it with a grace period.
 */
export interface HubResume {
  readonly lastDurableSeq: number;
  readonly validUntil?: number;
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
  'hub.remove': HubRemoved;
  'hub.registered': { readonly registered: true };
  /** sessionValidUntil: when the open session's secret stops, if the rotation retired it. */
  'hub.secretRotated': { readonly sessionValidUntil?: number };
}
/** Reply to remove. */
export interface HubRemoved {
  readonly removed: true;
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

/** Ends the current session's stream (on whichever node holds it) with `reason`; `at` epoch ms, for a retired secret. */
const endSession = (s: HubState, reason: HubSessionEndReason, at?: number): DomainEffect[] =>
  s.connected && s.sessionNode !== undefined
    ? [
        {
          type: 'hub.session.end',
          homeId: s.homeId,
          hubId: s.hubId,
          nodeId: s.sessionNode,
          sessionId: s.sessionId,
          reason,
          ...(at === undefined ? {} : { at }),
        },
      ]
    : [];

/** A hub never registered, or registered anew. */
const freshHub = (homeId: string, hubId: string): HubState => ({ homeId, hubId, devices: [], connected: false, lastDurableSeq: 0 });

/** The hub's incarnation as a state field (absent while it is 0). */
const incarnationOf = (s: HubState): Pick<HubState, 'incarnation'> => (s.incarnation === undefined ? {} : { incarnation: s.incarnation });

/** The earlier of two optional epoch ms. */
const earlier = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

/**
 * Epoch ms at which secret `credentialId` stops by the rotations the hub actor knows of, or
 * undefined when none retired it.
 */
const retiredUntil = (s: HubState, credentialId: string): number | undefined => {
  const kept = s.secrets === undefined || s.secrets.keep.includes(credentialId) ? undefined : s.secrets.othersValidUntil;
  return earlier(kept, s.retiredSecrets?.find((r) => r.credentialId === credentialId)?.until);
};

/**
 * True when the message names the current session (a message without a session id matches on the
 * node alone). The node is trusted to name itself: see `HubDurable`.
 */
const isCurrent = (s: HubState, nodeId: string | undefined, sessionId: string | undefined): boolean =>
  s.connected && nodeId === s.sessionNode && (sessionId === undefined || s.sessionId === undefined || sessionId === s.sessionId);

function hello(s: HubState, m: HubHello, now: number, replaying: boolean): HubStep {
  const e =
    checkKey('nodeId', m.nodeId, VALUE_LIMITS.idLength) ??
    (m.sessionId === undefined ? undefined : checkKey('sessionId', m.sessionId, VALUE_LIMITS.idLength)) ??
    (m.credentialId === undefined ? undefined : checkKey('credentialId', m.credentialId, VALUE_LIMITS.idLength)) ??
    checkHubDevices(m.devices);
  if (e) return rejected(s, e);
  // A node that does not say the stream's secret (an older release, during a rolling upgrade)
  // checked it at connect; only a rotation after the hello then ends its session.
  const validUntil = m.credentialId === undefined ? undefined : retiredUntil(s, m.credentialId);
  // A journaled hello was accepted by its first run, which is the judge: it is replayed as it was.
  if (!replaying && s.removed === true) {
    return rejected(s, { code: 'not_found', field: 'credentialId', message: `hub ${s.hubId} of home ${s.homeId} was removed` });
  }
  if (!replaying && validUntil !== undefined && validUntil <= now) {
    return rejected(s, {
      code: 'failed_precondition',
      field: 'credentialId',
      message: `the secret this stream authenticated with was rotated out of hub ${s.hubId}`,
    });
  }
  // A newer stream supersedes the one still open; on the same node the ingress already did so.
  // (A session id is compared only when both are known: states journaled before ids existed have none.)
  const newer = m.nodeId !== s.sessionNode || (s.sessionId !== undefined && m.sessionId !== undefined && m.sessionId !== s.sessionId);
  const effects: DomainEffect[] = s.connected && newer ? endSession(s, 'superseded') : [];
  const connection: HubConnection = { type: 'hub.connection', online: true, hubId: s.hubId };
  // Attach is idempotent on the device and home side, so every device is told, then its stream
  // is opened; the home learns which hub serves the device.
  for (const d of m.devices) {
    effects.push(
      tell(s, d.deviceId, {
        type: 'device.attach',
        hubId: s.hubId,
        deviceType: d.type,
        capabilities: [...d.capabilities],
        hubIncarnation: s.incarnation ?? 0,
      }),
      tell(s, d.deviceId, connection),
      {
        type: 'tell',
        to: homeActorId(s.homeId),
        msg: { type: 'device.attached', deviceId: d.deviceId, deviceType: d.type, hubId: s.hubId },
      },
    );
  }
  const served = new Set(m.devices.map((d) => d.deviceId));
  for (const gone of s.devices.filter((id) => !served.has(id))) {
    effects.push(tell(s, gone, { type: 'hub.connection', online: false, hubId: s.hubId }));
  }
  const { sessionId: _old, sessionCredential: _cred, sessionValidUntil: _until, ...rest } = s;
  const next: HubState = {
    ...rest,
    devices: m.devices.map((d) => d.deviceId),
    connected: true,
    connectedAt: now,
    sessionNode: m.nodeId,
    ...(m.sessionId === undefined ? {} : { sessionId: m.sessionId }),
    ...(m.credentialId === undefined ? {} : { sessionCredential: m.credentialId }),
    ...(validUntil === undefined ? {} : { sessionValidUntil: validUntil }),
  };
  const reply = ok({ lastDurableSeq: s.lastDurableSeq, ...(validUntil === undefined ? {} : { validUntil }) });
  return { state: next, reply, effects, journal: true };
}

/** The state of a hub without a session, and the device effects that say so. */
function disconnected(s: HubState): { state: HubState; effects: DomainEffect[] } {
  const { connectedAt: _at, sessionNode: _node, sessionId: _id, sessionCredential: _cred, sessionValidUntil: _until, ...rest } = s;
  const effects = s.devices.map((id) => tell(s, id, { type: 'hub.connection', online: false, hubId: s.hubId }));
  return { state: { ...rest, connected: false }, effects };
}

function disconnect(s: HubState, m: HubDisconnect): HubStep {
  if (m.nodeId !== undefined && typeof m.nodeId !== 'string') return rejected(s, invalid('nodeId', 'must be a string'));
  if (m.sessionId !== undefined && typeof m.sessionId !== 'string') return rejected(s, invalid('sessionId', 'must be a string'));
  // A late close from a stream that lost the session (another node, or an older stream) must not take down the new one.
  const stale = m.nodeId !== undefined && s.sessionNode !== undefined && !isCurrent(s, m.nodeId, m.sessionId);
  if (!s.connected || stale) return { state: s, reply: ok({ connected: s.connected }), journal: false };
  const { state, effects } = disconnected(s);
  return { state, reply: ok({ connected: false }), effects, journal: true };
}

function durable(s: HubState, m: HubDurable, replaying: boolean): HubStep {
  const e = checkInt('upToSeq', m.upToSeq, 0) ?? (replaying ? undefined : checkKey('nodeId', m.nodeId, VALUE_LIMITS.idLength));
  if (e) return rejected(s, e);
  if (!replaying && !isCurrent(s, m.nodeId, undefined)) {
    const where = s.connected ? `the session is on node ${String(s.sessionNode)}` : 'the hub has no open session';
    return rejected(s, { code: 'failed_precondition', field: 'nodeId', message: `hub.durable from node ${m.nodeId} refused: ${where}` });
  }
  if (m.upToSeq <= s.lastDurableSeq) return { state: s, reply: ok({ lastDurableSeq: s.lastDurableSeq }), journal: false };
  return { state: { ...s, lastDurableSeq: m.upToSeq }, reply: ok({ lastDurableSeq: m.upToSeq }), journal: true };
}

function remove(s: HubState): HubStep {
  if (s.removed === true) return { state: s, reply: ok({ removed: true }), journal: false };
  const end = endSession(s, 'removed');
  const { effects } = s.connected ? disconnected(s) : { effects: [] };
  const state: HubState = { ...freshHub(s.homeId, s.hubId), removed: true, ...incarnationOf(s) };
  return { state, reply: ok({ removed: true }), effects: [...end, ...effects], journal: true };
}

/**
 * A registration starts a removed hub afresh, as its next incarnation (its devices restart their
 * seq order on its first hello). Any other hub is left as it is: one never removed
 * has nothing stale (a hub id is registered once per home until removed), and its first hello may
 * have come before this message (the home tells the hub once its step is durable, the hub may
 * connect as soon as it has its secret): that session stays.
 */
function registered(s: HubState): HubStep {
  if (s.removed !== true) return { state: s, reply: ok({ registered: true }), journal: false };
  const state: HubState = { ...freshHub(s.homeId, s.hubId), incarnation: (s.incarnation ?? 0) + 1 };
  return { state, reply: ok({ registered: true }), journal: true };
}

/**
 * The retired secrets after a rotation retired `retire` at `until`: each keeps the earlier of its
 * ends, moves to the newest place, and only the newest `RETIRED_SECRETS_KEPT` stay.
 */
function mergeRetired(known: readonly RetiredHubSecret[], retire: readonly string[], until: number): RetiredHubSecret[] {
  const named = new Set(retire);
  const merged = [...named].map((credentialId) => ({
    credentialId,
    until: Math.min(until, known.find((r) => r.credentialId === credentialId)?.until ?? until),
  }));
  return [...known.filter((r) => !named.has(r.credentialId)), ...merged].slice(-RETIRED_SECRETS_KEPT);
}

function checkRotation(m: HubSecretRotated | HubSecretRotatedKeeping): DomainError | undefined {
  if ('keep' in m) {
    return (
      checkNames('keep', m.keep, VALUE_LIMITS.attributesPerMessage) ??
      (m.keep.length === 0 ? invalid('keep', 'must name the secret that stays') : undefined) ??
      checkInt('othersValidUntil', m.othersValidUntil, 0)
    );
  }
  return checkNames('retire', m.retire, HUB_LIMITS.retiredPerRotation) ?? checkInt('until', m.until, 0);
}

function secretRotated(s: HubState, m: HubSecretRotated | HubSecretRotatedKeeping): HubStep {
  const e = checkRotation(m);
  if (e) return rejected(s, e);
  if (s.removed === true) return { state: s, reply: ok({}), journal: false };
  let next: HubState;
  let until: number | undefined;
  if ('keep' in m) {
    // An older release's rotation, replayed (or sent) as it was decided then: everything but `keep`.
    next = { ...s, secrets: { keep: [...m.keep], othersValidUntil: m.othersValidUntil } };
    until = s.sessionCredential !== undefined && m.keep.includes(s.sessionCredential) ? undefined : m.othersValidUntil;
  } else {
    // The older rule would retire this rotation's new secret: the retired list replaces it (what it
    // retired is in the credential store's hands, as for entries dropped from the list).
    const { secrets: _older, ...rest } = s;
    next = { ...rest, retiredSecrets: mergeRetired(s.retiredSecrets ?? [], m.retire, m.until) };
    // A session whose node did not say its secret counts as on a retired one: it reconnects and says.
    until = s.sessionCredential === undefined || m.retire.includes(s.sessionCredential) ? m.until : undefined;
  }
  if (!s.connected) until = undefined;
  // A secret already ending earlier keeps its earlier end.
  const end = earlier(until, s.sessionValidUntil);
  const reply = ok(end === undefined ? {} : { sessionValidUntil: end });
  if (end === s.sessionValidUntil) return { state: next, reply, journal: true };
  const effects = endSession(s, 'secret_retired', end);
  return { state: { ...next, sessionValidUntil: end }, reply, effects, journal: true };
}

/** The hub actor, ids `hub:{homeId}:{hubId}` (homeId has no `:`). */
export const hubBehavior: Behavior<HubState, HubMsg, HubReply, DomainEffect> = {
  kind: 'hub',
  initial(id) {
    const parsed = parseActorId(id);
    if (parsed?.kind !== 'hub') throw new Error(`not a hub actor id: ${id}`);
    return freshHub(parsed.homeId, parsed.hubId);
  },
  receive(state, msg, ctx) {
    switch (msg.type) {
      case 'hub.hello':
        return hello(state, msg, ctx.now, ctx.replaying);
      case 'hub.disconnect':
        return disconnect(state, msg);
      case 'hub.durable':
        return durable(state, msg, ctx.replaying);
      case 'hub.get':
        return { state, reply: ok(state), journal: false };
      case 'hub.remove':
        return remove(state);
      case 'hub.registered':
        return registered(state);
      case 'hub.secretRotated':
        return secretRotated(state, msg);
      default:
        return rejected(state, invalid('type', `is not a hub message: ${String((msg as { type?: unknown }).type)}`));
    }
  },
};
