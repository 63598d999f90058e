/** Device actor: the shadow (reported/desired/delta), report ordering by hub seq, forwarding what its home's rules read, and the command entry points. */
import type { Behavior, Step } from '../runtime/behavior.ts';
import { homeActorId, parseActorId } from './actor-id.ts';
import {
  causalDepth,
  checkCommands,
  completeCommand,
  deliverPending,
  expireCommands,
  getCommand,
  issueCommand,
  nextCommandWake,
  withResends,
} from './device-commands.ts';
import { DEVICE_LIMITS } from './device-state.ts';
import type {
  DeviceAttach,
  DeviceMsg,
  DeviceReply,
  DeviceState,
  HubConnection,
  Report,
  ReportAck,
  ReportBatch,
  ReportBatchAck,
  ReportedValue,
  SetDesired,
  Shadow,
} from './device-state.ts';
import type { DeviceChanged, DeviceChanges, DeviceValues, DeviceWatchMsg, DomainEffect, DomainError, Outcome, Value } from './types.ts';
import { checkInt, checkKey, checkNames, checkValues, invalid, ok, ownGet, VALUE_LIMITS } from './validation.ts';

type DeviceStep = Step<DeviceState, DeviceReply, DomainEffect>;

const rejected = (s: DeviceState, error: DomainError): DeviceStep => ({ state: s, reply: { ok: false, error }, journal: false });
const unchanged = (s: DeviceState): DeviceStep => ({ state: s, reply: ok(null), journal: false });

/** Desired keys whose value differs from (or is missing in) the reported values. */
export const computeDelta = (
  reported: Readonly<Record<string, ReportedValue>>,
  desired: Readonly<Record<string, Value>>,
): Record<string, Value> => Object.fromEntries(Object.entries(desired).filter(([k, v]) => ownGet(reported, k)?.value !== v));

/** The bare reported values, without timestamps. */
export const reportedValues = (reported: Readonly<Record<string, ReportedValue>>): Record<string, Value> =>
  Object.fromEntries(Object.entries(reported).map(([k, r]) => [k, r.value]));

/** The shadow view of a device state. */
export const shadowOf = (s: DeviceState): Shadow => ({
  deviceId: s.deviceId,
  type: s.type ?? null,
  capabilities: s.capabilities,
  reported: s.reported,
  desired: s.desired,
  delta: computeDelta(s.reported, s.desired),
  version: s.version,
  online: s.online,
  lastSeen: s.lastSeen ?? null,
});

const shadowEvent = (s: DeviceState): DomainEffect => ({
  type: 'publish',
  homeId: s.homeId,
  topic: 'device.shadow',
  data: {
    deviceId: s.deviceId,
    version: s.version,
    reported: reportedValues(s.reported),
    desired: s.desired,
    delta: computeDelta(s.reported, s.desired),
  },
});

/** Whether some desired key's value differs from (or is missing in) the reported values. */
const hasDelta = (reported: Readonly<Record<string, ReportedValue>>, desired: Readonly<Record<string, Value>>): boolean => {
  for (const k in desired) if (ownGet(reported, k)?.value !== desired[k]) return true;
  return false;
};

/** Whether two deltas hold the same keys with the same values. */
function sameDelta(a: Readonly<Record<string, Value>>, b: Readonly<Record<string, Value>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}

/**
 * Tells the device's hub (its stream is open) the whole delta at the current version, and records
 * in `hubHasDelta` whether the hub now holds a target: an empty delta tells it there is nothing to
 * do. `desired` keeps a key after the hub reported the value (the standing target, as apps read
 * it): should the device drift from it later, the delta is not empty again and goes down on the
 * hub's next connect.
 */
function tellHub(s: DeviceState & { hubId: string }, delta: Record<string, Value>): { state: DeviceState; effect: DomainEffect } {
  const effect: DomainEffect = { type: 'hub.desired', homeId: s.homeId, hubId: s.hubId, deviceId: s.deviceId, version: s.version, delta };
  const holds = Object.keys(delta).length > 0;
  if (holds === (s.hubHasDelta === true)) return { state: s, effect };
  const { hubHasDelta: _old, ...rest } = s;
  return { state: holds ? { ...s, hubHasDelta: true } : rest, effect };
}

/**
 * Whether an attach starts a new seq order: `lastSeq` was counted by another hub, or by an earlier
 * incarnation of this one (removed, then registered anew: a factory-reset hub counts from 1
 * again), whose reports would otherwise be acked as duplicates and never applied. A state from
 * before incarnations were kept counted incarnation 0 or one it was never told of: only a later
 * one restarts it. An attach without an incarnation (a journal entry of an older release) keeps
 * the order, as it did when it ran.
 */
function restartsSeqOrder(s: DeviceState, m: DeviceAttach): boolean {
  if (m.hubIncarnation === undefined || s.hubId === undefined) return false;
  if (s.hubId !== m.hubId) return true;
  return s.hubIncarnation === undefined ? m.hubIncarnation > 0 : s.hubIncarnation !== m.hubIncarnation;
}

function attach(s: DeviceState, m: DeviceAttach): DeviceStep {
  const e =
    checkKey('hubId', m.hubId, VALUE_LIMITS.idLength) ??
    checkKey('deviceType', m.deviceType, VALUE_LIMITS.nameLength) ??
    checkNames('capabilities', m.capabilities, VALUE_LIMITS.attributesPerMessage) ??
    (m.hubIncarnation === undefined ? undefined : checkInt('hubIncarnation', m.hubIncarnation, 0));
  if (e) return rejected(s, e);
  const sameCaps = s.capabilities.length === m.capabilities.length && s.capabilities.every((c, i) => c === m.capabilities[i]);
  const sameIncarnation = m.hubIncarnation === undefined || m.hubIncarnation === s.hubIncarnation;
  if (s.hubId === m.hubId && s.type === m.deviceType && sameCaps && sameIncarnation) return unchanged(s);
  // A new hub's stream is not known to be open until that hub says so.
  const hubOnline = s.hubId === m.hubId && s.hubOnline;
  // The incarnation that counts the seqs from now on (one of another hub is dropped).
  const counted = m.hubIncarnation ?? (s.hubId === m.hubId ? s.hubIncarnation : undefined);
  const { hubIncarnation: _old, ...rest } = s;
  const next: DeviceState = {
    ...rest,
    hubId: m.hubId,
    type: m.deviceType,
    capabilities: [...m.capabilities],
    hubOnline,
    ...(restartsSeqOrder(s, m) ? { lastSeq: 0, recentSeqs: [] } : {}),
    ...(counted === undefined ? {} : { hubIncarnation: counted }),
  };
  return { state: next, reply: ok(null), journal: true };
}

function connection(s: DeviceState, m: HubConnection, now: number): DeviceStep {
  if (m.hubId !== undefined && s.hubId !== undefined && m.hubId !== s.hubId) return unchanged(s); // a hub it left
  if (!m.online) {
    const changed = s.hubOnline || s.online;
    return { state: changed ? { ...s, hubOnline: false, online: false } : s, reply: ok(null), journal: changed };
  }
  if (s.hubId === undefined) return s.hubOnline ? unchanged(s) : { state: { ...s, hubOnline: true }, reply: ok(null), journal: true };
  const { commands, resends, effects, changed } = deliverPending(s, s.hubId, now);
  let state: DeviceState = changed || !s.hubOnline ? withResends({ ...s, hubOnline: true, commands }, resends) : s;
  // Every connect (each hello tells each device once) sends the delta the hub may have missed,
  // after the commands: the standing target is the last word. An empty one only to a hub that may
  // still hold an older target (desired changed back while it was away).
  const delta = computeDelta(state.reported, state.desired);
  if (Object.keys(delta).length > 0 || state.hubHasDelta === true) {
    const told = tellHub({ ...state, hubId: s.hubId }, delta);
    state = told.state;
    effects.push(told.effect);
  }
  return { state, reply: ok(null), effects, journal: state !== s };
}

const checkReport = (m: Omit<Report, 'type'>): DomainError | undefined =>
  checkInt('seq', m.seq, 1) ??
  (typeof m.tsMs === 'number' && Number.isFinite(m.tsMs) ? undefined : invalid('tsMs', 'must be a finite number')) ??
  checkValues('attributes', m.attributes, false) ??
  (m.event === undefined ? undefined : checkKey('event', m.event, VALUE_LIMITS.nameLength));

/** A change told as it is: the device has no watch from its home yet (new, or state from before watches). */
function unfiltered(
  s: DeviceState,
  changed: Readonly<Record<string, Value>>,
  reported: Readonly<Record<string, ReportedValue>>,
  m: Omit<Report, 'type'>,
  depth: number,
): DeviceChanged {
  return {
    type: 'device.changed',
    deviceId: s.deviceId,
    deviceType: s.type ?? 'unknown',
    changed,
    attributes: reportedValues(reported),
    ...(m.event === undefined ? {} : { event: m.event }),
    depth,
    tsMs: m.tsMs,
  };
}

/** The current values of the named attributes that have been reported, added to `into`. */
function watchedValues(
  names: readonly string[],
  reported: Readonly<Record<string, ReportedValue>>,
  into: Record<string, Value> = {},
): Record<string, Value> {
  for (const k of names) {
    const r = ownGet(reported, k);
    if (r !== undefined) into[k] = r.value;
  }
  return into;
}

/**
 * The part of a change the home's rules read, or undefined when they read none of it: then the
 * home is not told at all, and the report costs the device's step alone.
 */
function watched(
  s: DeviceState,
  watch: NonNullable<DeviceState['watch']>,
  changed: Readonly<Record<string, Value>>,
  reported: Readonly<Record<string, ReportedValue>>,
  m: Omit<Report, 'type'>,
  depth: number,
): DeviceChanged | undefined {
  const event = m.event !== undefined && watch.events.includes(m.event) ? m.event : undefined;
  let seen: Record<string, Value> | undefined;
  for (const k of watch.attributes) {
    if (Object.hasOwn(changed, k)) (seen ??= {})[k] = changed[k]!;
  }
  if (seen === undefined && event === undefined) return undefined;
  return {
    type: 'device.changed',
    deviceId: s.deviceId,
    deviceType: s.type ?? 'unknown',
    changed: seen ?? {},
    attributes: watchedValues(watch.values, reported, watchedValues(watch.attributes, reported)),
    ...(event === undefined ? {} : { event }),
    depth,
    tsMs: m.tsMs,
    filtered: true,
  };
}

/** Most names a watch may list (a home's rules bound what it reads of one device). */
const MAX_WATCHED = 8_192;

const sortedUnique = (xs: readonly string[]): boolean => xs.every((x, i) => i === 0 || xs[i - 1]! < x);
const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The home says what its rules read of this device: kept (journaled when it differs), and answered
 * with the current values of the watched attributes, so the home's conditions read them at once.
 */
function setWatch(s: DeviceState, m: DeviceWatchMsg): DeviceStep {
  for (const field of ['attributes', 'events', 'values'] as const) {
    const e = checkNames(field, m[field], MAX_WATCHED);
    if (e) return rejected(s, e);
    if (!sortedUnique(m[field])) return rejected(s, invalid(field, 'must be sorted and unique'));
  }
  const same =
    s.watch !== undefined &&
    sameNames(s.watch.attributes, m.attributes) &&
    sameNames(s.watch.events, m.events) &&
    sameNames(s.watch.values, m.values);
  const state = same ? s : { ...s, watch: { attributes: [...m.attributes], events: [...m.events], values: [...m.values] } };
  const attributes = watchedValues(m.attributes, s.reported);
  const effects: DomainEffect[] = [];
  if (Object.keys(attributes).length > 0) {
    const values: DeviceValues = { type: 'device.values', deviceId: s.deviceId, attributes };
    effects.push({ type: 'tell', to: homeActorId(s.homeId), msg: values });
  }
  return { state, reply: ok(null), effects, journal: !same };
}

/**
 * Applies reports in order: the new state, one outcome per report, and the changes for the home.
 * Ordering is by the hub's seq: a report at or below `lastSeq` is acknowledged and not applied.
 * Works on one copy of the state for the whole batch (the input state is never mutated).
 */
function applyReports(
  s: DeviceState,
  items: readonly Omit<Report, 'type'>[],
  now: number,
  replaying: boolean,
): { state: DeviceState; results: Outcome<ReportAck>[]; changes: DeviceChanged[]; notable: boolean } {
  const results: Outcome<ReportAck>[] = [];
  const changes: DeviceChanged[] = [];
  let notable = false; // some report changed a value or carried an event: apps following the shadow hear of it
  let reported: Record<string, ReportedValue> | undefined;
  let recentSeqs = s.recentSeqs;
  let { lastSeq, version } = s;
  const depth = causalDepth(s, now);
  for (const m of items) {
    const e = checkReport(m);
    if (e) {
      results.push({ ok: false, error: e });
      continue;
    }
    if (m.seq <= lastSeq) {
      // Older than what was applied: acknowledged so the hub moves on, never applied again.
      results.push(ok({ applied: false, reason: recentSeqs.includes(m.seq) ? 'duplicate' : 'stale', version }));
      continue;
    }
    reported ??= { ...s.reported };
    // Not on replay: a journaled report was accepted once (before this limit existed, too).
    if (!replaying && addsPastLimit(reported, m.attributes)) {
      results.push({
        ok: false,
        error: invalid('attributes', `would give device ${s.deviceId} more than ${DEVICE_LIMITS.reportedAttributes} reported attributes`),
      });
      continue;
    }
    const changed: Record<string, Value> = {};
    let anyChange = false;
    for (const [k, v] of Object.entries(m.attributes)) {
      if (ownGet(reported, k)?.value !== v) {
        changed[k] = v;
        anyChange = true;
      }
      reported[k] = { value: v, ts: m.tsMs };
    }
    lastSeq = m.seq;
    recentSeqs = recentSeqs.length < DEVICE_LIMITS.seqWindow ? [...recentSeqs, m.seq] : [...recentSeqs.slice(1), m.seq];
    if (anyChange) version++;
    results.push(ok({ applied: true, version }));
    if (anyChange || m.event !== undefined) {
      notable = true;
      const change = s.watch === undefined ? unfiltered(s, changed, reported, m, depth) : watched(s, s.watch, changed, reported, m, depth);
      if (change) changes.push(change);
    }
  }
  if (reported === undefined) return { state: s, results, changes, notable };
  const { causal, hubHasDelta, ...rest } = s; // an expired causal window is dropped
  // Reports that met the whole delta: the hub reached its target. (An empty delta it was never
  // told of, desired taken back while it was away, still goes down on its next connect.)
  const heading = hubHasDelta === true && !(hasDelta(s.reported, s.desired) && !hasDelta(reported, s.desired));
  const state: DeviceState = {
    ...rest,
    ...(depth > 0 && causal ? { causal } : {}),
    ...(heading ? { hubHasDelta } : {}),
    reported,
    lastSeq,
    lastSeen: now,
    online: true,
    recentSeqs,
    version,
  };
  return { state, results, changes, notable };
}

/** Whether applying `attributes` would leave `reported` with more than DEVICE_LIMITS.reportedAttributes names. */
function addsPastLimit(reported: Readonly<Record<string, ReportedValue>>, attributes: Readonly<Record<string, Value>>): boolean {
  let fresh = 0;
  for (const k in attributes) if (!Object.hasOwn(reported, k)) fresh++;
  // Counted only when a report brings a new name: most reports update names the device has.
  return fresh > 0 && Object.keys(reported).length + fresh > DEVICE_LIMITS.reportedAttributes;
}

function report(s: DeviceState, m: Report, now: number, replaying: boolean): DeviceStep {
  const { state, results, changes, notable } = applyReports(s, [m], now, replaying);
  const reply = results[0]!;
  if (!reply.ok) return rejected(s, reply.error);
  const journal = state !== s;
  if (!notable) return { state, reply, journal };
  const effects: DomainEffect[] = [shadowEvent(state)];
  if (changes.length > 0) effects.unshift({ type: 'tell', to: homeActorId(s.homeId), msg: changes[0]! });
  return { state, reply, effects, journal };
}

function reportBatch(s: DeviceState, m: ReportBatch, now: number, replaying: boolean): DeviceStep {
  if (!Array.isArray(m.items) || m.items.length === 0 || m.items.length > DEVICE_LIMITS.reportBatch) {
    return rejected(s, invalid('items', `must be an array of 1-${DEVICE_LIMITS.reportBatch} reports`));
  }
  const { state, results, changes, notable } = applyReports(s, m.items, now, replaying);
  const reply = ok<ReportBatchAck>({ results });
  if (!notable) return { state, reply, journal: state !== s };
  // One message to the home (only if its rules read some of it) and one shadow event per batch, not per report.
  const effects: DomainEffect[] = [shadowEvent(state)];
  if (changes.length > 0)
    effects.unshift({ type: 'tell', to: homeActorId(s.homeId), msg: { type: 'device.changes', changes } satisfies DeviceChanges });
  return { state, reply, effects, journal: true };
}

function setDesired(s: DeviceState, m: SetDesired): DeviceStep {
  const e = checkValues('desired', m.desired, true) ?? (m.ifVersion === undefined ? undefined : checkInt('ifVersion', m.ifVersion, 0));
  if (e) return rejected(s, e);
  if (m.ifVersion !== undefined && m.ifVersion !== s.version) {
    return rejected(s, { code: 'version_conflict', message: `shadow of ${s.deviceId} is at version ${s.version}, not ${m.ifVersion}` });
  }
  const desired: Record<string, Value> = { ...s.desired };
  let changed = false;
  for (const [k, v] of Object.entries(m.desired)) {
    if (v === null ? Object.hasOwn(desired, k) : ownGet(desired, k) !== v) changed = true;
    if (v === null) delete desired[k];
    else desired[k] = v;
  }
  if (!changed) return { state: s, reply: ok(shadowOf(s)), journal: false };
  if (Object.keys(desired).length > DEVICE_LIMITS.desiredAttributes) {
    return rejected(s, invalid('desired', `would exceed ${DEVICE_LIMITS.desiredAttributes} desired attributes`));
  }
  let next: DeviceState = { ...s, desired, version: s.version + 1 };
  const effects: DomainEffect[] = [shadowEvent(next)];
  // The hub hears of every change of the delta while its stream is open, an emptied one too (it
  // then stops heading for the old target); a change that leaves the delta as it was is not sent.
  const delta = computeDelta(next.reported, desired);
  if (next.hubOnline && next.hubId !== undefined && !sameDelta(computeDelta(s.reported, s.desired), delta)) {
    const told = tellHub({ ...next, hubId: next.hubId }, delta);
    next = told.state;
    effects.push(told.effect);
  }
  return { state: next, reply: ok(shadowOf(next)), effects, journal: true };
}

/** A device exists once a hub has announced it or it has reported. */
const known = (s: DeviceState): boolean => s.hubId !== undefined || s.lastSeq > 0;

/** Nothing was ever stored for the device: no hub, report, connection, watch or command. */
const neverWritten = (s: DeviceState): boolean =>
  !known(s) && !s.hubOnline && s.version === 0 && s.watch === undefined && Object.keys(s.commands).length === 0;

/**
 * A `not_found` answer of a device that was never written also lets its actor leave memory at
 * once (`Step.passivate`): a GET of a random device id must not keep an actor for passivateAfterMs.
 */
const leavingIfNeverWritten = (step: DeviceStep): DeviceStep =>
  step.reply?.ok === false && step.reply.error.code === 'not_found' && neverWritten(step.state) ? { ...step, passivate: true } : step;

const unknownDevice = (s: DeviceState): DeviceStep =>
  leavingIfNeverWritten(rejected(s, { code: 'not_found', message: `device ${s.deviceId} not found in home ${s.homeId}` }));

/**
 * The state of a device never written; `version` 0, or where the version of a removed device
 * left off (versions never go back: a hub may ignore a delta older than one it applied).
 */
const freshDevice = (homeId: string, deviceId: string, version = 0): DeviceState => ({
  homeId,
  deviceId,
  capabilities: [],
  reported: {},
  desired: {},
  version,
  online: false,
  hubOnline: false,
  lastSeq: 0,
  recentSeqs: [],
  commands: {},
});

/**
 * Erases the device (its home was deleted) but keeps a mark, as a journaled step rather than
 * deleted keys: a report or command result still in flight must find a device that refuses it,
 * not an empty one that a report would bring back to life.
 */
function remove(s: DeviceState): DeviceStep {
  if (s.removed === true) return unchanged(s);
  // Nothing left to serve: the actor leaves memory once the mark is written (with a final snapshot).
  // The mark keeps the version, one past the last (the removal is a change): a device created
  // anew goes on from it.
  const mark: DeviceState = { ...freshDevice(s.homeId, s.deviceId, s.version + 1), removed: true };
  return { state: mark, reply: ok(null), journal: true, passivate: true };
}

/** A removed device: a hub's attach (of a home created anew) starts it afresh; the rest is refused or ignored. */
function whileRemoved(s: DeviceState, msg: DeviceMsg, now: number): DeviceStep {
  switch (msg.type) {
    case 'device.attach': {
      const step = attach(freshDevice(s.homeId, s.deviceId, s.version), msg);
      // A refused attach leaves the mark as it was.
      return step.journal === true ? step : { ...step, state: s };
    }
    case 'device.remove':
    case 'hub.connection':
    case 'device.watch':
      return { ...unchanged(s), passivate: true };
    case 'command.expire':
      return expireCommands(s, now);
    default:
      // Reads of a removed device (a GET, a late report) do not keep it resident either.
      return { ...rejected(s, { code: 'not_found', message: `device ${s.deviceId} of home ${s.homeId} was removed` }), passivate: true };
  }
}

/** The device actor, ids `device:{homeId}:{deviceId}` (homeId has no `:`). */
export const deviceBehavior: Behavior<DeviceState, DeviceMsg, DeviceReply, DomainEffect> = {
  kind: 'device',
  initial(id) {
    const parsed = parseActorId(id);
    if (parsed?.kind !== 'device') throw new Error(`not a device actor id: ${id}`);
    return freshDevice(parsed.homeId, parsed.deviceId);
  },
  /**
   * Wakes at the earliest expiry of a queued or sent command, to expire it, or at the earliest
   * delivery check of a sent one (while the hub's stream is open), to send it again.
   */
  nextWakeAt: nextCommandWake,
  wakeMessage: { type: 'command.expire' },
  receive(state, msg, ctx) {
    if (state.removed === true) return whileRemoved(state, msg, ctx.now);
    switch (msg.type) {
      case 'device.remove':
        return remove(state);
      case 'device.attach':
        return attach(state, msg);
      case 'hub.connection':
        return connection(state, msg, ctx.now);
      case 'report':
        return report(state, msg, ctx.now, ctx.replaying);
      case 'report.batch':
        return reportBatch(state, msg, ctx.now, ctx.replaying);
      case 'shadow.get':
        return known(state) ? { state, reply: ok(shadowOf(state)), journal: false } : unknownDevice(state);
      case 'shadow.setDesired':
        return known(state) ? setDesired(state, msg) : unknownDevice(state);
      // An app may only command a device a hub has announced; a rule's command waits for it.
      case 'command.issue':
        return known(state) || msg.source?.kind !== 'app' ? issueCommand(state, msg, ctx.now) : unknownDevice(state);
      case 'command.result':
        return leavingIfNeverWritten(completeCommand(state, msg, ctx.now, ctx.replaying));
      case 'command.get':
        return leavingIfNeverWritten(getCommand(state, msg.commandId));
      case 'command.expire':
        return checkCommands(state, ctx.now);
      case 'device.watch':
        return setWatch(state, msg);
      default:
        return rejected(state, invalid('type', `is not a device message: ${String((msg as { type?: unknown }).type)}`));
    }
  },
};
