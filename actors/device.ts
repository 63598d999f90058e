/** Device actor: the shadow (reported/desired/delta), report ordering by hub seq, and the command entry points. */
import type { Behavior, Step } from '../runtime/behavior.ts';
import { causalDepth, completeCommand, deliverPending, expireCommands, getCommand, issueCommand } from './device-commands.ts';
import type { CommandRecord } from './device-commands.ts';
import { homeActorId } from './types.ts';
import type { DeviceChanged, DeviceChanges, DomainEffect, DomainError, IssueCommand, Outcome, Value } from './types.ts';
import { checkInt, checkKey, checkNames, checkValues, invalid, ok, ownGet, VALUE_LIMITS } from './validation.ts';

export type { CommandRecord } from './device-commands.ts';

/** Limits of the shadow. */
export const DEVICE_LIMITS = {
  /** Desired attributes one device keeps. */
  desiredAttributes: 256,
  /** Applied seqs remembered to tell a duplicate report from a stale one. */
  seqWindow: 32,
} as const;

/** One reported attribute: its value and the hub timestamp (epoch ms) of the report that set it. */
export interface ReportedValue {
  readonly value: Value;
  readonly ts: number;
}

/**
 * Device actor state, plain JSON. `lastSeq` is the highest hub seq applied (0 = none); `recentSeqs`
 * the last `seqWindow` applied seqs, ascending. `causal.untilMs` and `lastSeen` are epoch ms.
 * `hubOnline` says the serving hub's stream is open; `online` that the device reported since then.
 */
export interface DeviceState {
  readonly homeId: string;
  readonly deviceId: string;
  readonly hubId?: string;
  readonly type?: string;
  readonly capabilities: readonly string[];
  readonly reported: Readonly<Record<string, ReportedValue>>;
  readonly desired: Readonly<Record<string, Value>>;
  /** Increments on every change of reported values or desired. */
  readonly version: number;
  readonly online: boolean;
  readonly hubOnline: boolean;
  readonly lastSeen?: number;
  readonly lastSeq: number;
  readonly recentSeqs: readonly number[];
  readonly commands: Readonly<Record<string, CommandRecord>>;
  readonly causal?: { readonly depth: number; readonly untilMs: number };
}

/** From the hub actor when the hub says hello: which hub serves the device, and what it is. */
export interface DeviceAttach {
  readonly type: 'device.attach';
  readonly hubId: string;
  readonly deviceType: string;
  readonly capabilities: readonly string[];
}
/** The hub's stream opened or closed; `hubId`, when given, must be the device's hub or it is ignored. */
export interface HubConnection { readonly type: 'hub.connection'; readonly online: boolean; readonly hubId?: string }
/** A report from the hub: `seq` is the hub's sequence number (>= 1), `tsMs` the hub's clock in epoch ms. */
export interface Report {
  readonly type: 'report';
  readonly seq: number;
  readonly tsMs: number;
  readonly attributes: Readonly<Record<string, Value>>;
  readonly event?: string;
}
/** Several reports of this device from one hub batch, in seq order: one step, one journal entry. */
export interface ReportBatch {
  readonly type: 'report.batch';
  readonly items: readonly Omit<Report, 'type'>[];
}
export interface ShadowGet { readonly type: 'shadow.get' }
/** Merge into `desired`; `null` removes a key. `ifVersion`: fail with version_conflict unless it is the version. */
export interface SetDesired {
  readonly type: 'shadow.setDesired';
  readonly desired: Readonly<Record<string, Value | null>>;
  readonly ifVersion?: number;
}
/** The hub ran (ok) or could not run a command. */
export interface CommandResult { readonly type: 'command.result'; readonly commandId: string; readonly ok: boolean; readonly error?: string }
export interface CommandGet { readonly type: 'command.get'; readonly commandId: string }
/** Sent periodically by the host: expire every queued/sent command whose expiresAtMs <= ctx.now. */
export interface CommandExpire { readonly type: 'command.expire' }
export type DeviceMsg =
  | DeviceAttach | HubConnection | Report | ReportBatch | ShadowGet | SetDesired | IssueCommand | CommandResult | CommandGet | CommandExpire;

/** Reply to a report: a report at or below lastSeq is acknowledged but not applied. */
export interface ReportAck { readonly applied: boolean; readonly reason?: 'duplicate' | 'stale'; readonly version: number }
/** Reply to a report batch: one outcome per item, in order (an invalid item fails alone). */
export interface ReportBatchAck { readonly results: readonly Outcome<ReportAck>[] }
/** The shadow as apps read it; `delta` = desired keys whose value differs from the reported one. */
export interface Shadow {
  readonly deviceId: string;
  readonly type: string | null;
  readonly capabilities: readonly string[];
  readonly reported: Readonly<Record<string, ReportedValue>>;
  readonly desired: Readonly<Record<string, Value>>;
  readonly delta: Readonly<Record<string, Value>>;
  readonly version: number;
  readonly online: boolean;
  /** Epoch ms of the last applied report, null if none. */
  readonly lastSeen: number | null;
}
/** Reply to command.expire: the ids that expired, in issue order. */
export interface ExpireResult { readonly expired: readonly string[] }
export type DeviceReply = Outcome<ReportAck> | Outcome<ReportBatchAck> | Outcome<Shadow> | Outcome<CommandRecord> | Outcome<ExpireResult> | Outcome<null>;
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

function attach(s: DeviceState, m: DeviceAttach): DeviceStep {
  const e = checkKey('hubId', m.hubId, VALUE_LIMITS.idLength)
    ?? checkKey('deviceType', m.deviceType, VALUE_LIMITS.nameLength)
    ?? checkNames('capabilities', m.capabilities, VALUE_LIMITS.attributesPerMessage);
  if (e) return rejected(s, e);
  const sameCaps =
    s.capabilities.length === m.capabilities.length && s.capabilities.every((c, i) => c === m.capabilities[i]);
  if (s.hubId === m.hubId && s.type === m.deviceType && sameCaps) return unchanged(s);
  // A new hub's stream is not known to be open until that hub says so.
  const hubOnline = s.hubId === m.hubId && s.hubOnline;
  const next: DeviceState = { ...s, hubId: m.hubId, type: m.deviceType, capabilities: [...m.capabilities], hubOnline };
  return { state: next, reply: ok(null), journal: true };
}

function connection(s: DeviceState, m: HubConnection, now: number): DeviceStep {
  if (m.hubId !== undefined && s.hubId !== undefined && m.hubId !== s.hubId) return unchanged(s); // a hub it left
  if (!m.online) {
    const changed = s.hubOnline || s.online;
    return { state: changed ? { ...s, hubOnline: false, online: false } : s, reply: ok(null), journal: changed };
  }
  if (s.hubId === undefined) return s.hubOnline ? unchanged(s) : { state: { ...s, hubOnline: true }, reply: ok(null), journal: true };
  const { commands, effects, changed } = deliverPending(s, s.hubId, now);
  const journal = changed || !s.hubOnline;
  return { state: journal ? { ...s, hubOnline: true, commands } : s, reply: ok(null), effects, journal };
}

const checkReport = (m: Omit<Report, 'type'>): DomainError | undefined =>
  checkInt('seq', m.seq, 1)
  ?? (typeof m.tsMs === 'number' && Number.isFinite(m.tsMs) ? undefined : invalid('tsMs', 'must be a finite number'))
  ?? checkValues('attributes', m.attributes, false)
  ?? (m.event === undefined ? undefined : checkKey('event', m.event, VALUE_LIMITS.nameLength));

/**
 * Applies reports in order: the new state, one outcome per report, and the changes for the home.
 * Ordering is by the hub's seq: a report at or below `lastSeq` is acknowledged and not applied.
 * Works on one copy of the state for the whole batch (the input state is never mutated).
 */
function applyReports(
  s: DeviceState,
  items: readonly Omit<Report, 'type'>[],
  now: number,
): { state: DeviceState; results: Outcome<ReportAck>[]; changes: DeviceChanged[] } {
  const results: Outcome<ReportAck>[] = [];
  const changes: DeviceChanged[] = [];
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
      changes.push({
        type: 'device.changed',
        deviceId: s.deviceId,
        deviceType: s.type ?? 'unknown',
        changed,
        attributes: reportedValues(reported),
        ...(m.event === undefined ? {} : { event: m.event }),
        depth,
        tsMs: m.tsMs,
      });
    }
  }
  if (reported === undefined) return { state: s, results, changes };
  const { causal, ...rest } = s; // an expired causal window is dropped
  const state: DeviceState = {
    ...rest,
    ...(depth > 0 && causal ? { causal } : {}),
    reported,
    lastSeq,
    lastSeen: now,
    online: true,
    recentSeqs,
    version,
  };
  return { state, results, changes };
}

function report(s: DeviceState, m: Report, now: number): DeviceStep {
  const { state, results, changes } = applyReports(s, [m], now);
  const reply = results[0]!;
  if (!reply.ok) return rejected(s, reply.error);
  const journal = state !== s;
  if (changes.length === 0) return { state, reply, journal };
  const effects: DomainEffect[] = [{ type: 'tell', to: homeActorId(s.homeId), msg: changes[0]! }, shadowEvent(state)];
  return { state, reply, effects, journal };
}

/** Largest report batch one message may carry. */
const MAX_BATCH = 1_000;

function reportBatch(s: DeviceState, m: ReportBatch, now: number): DeviceStep {
  if (!Array.isArray(m.items) || m.items.length === 0 || m.items.length > MAX_BATCH) {
    return rejected(s, invalid('items', `must be an array of 1-${MAX_BATCH} reports`));
  }
  const { state, results, changes } = applyReports(s, m.items, now);
  const reply = ok<ReportBatchAck>({ results });
  if (changes.length === 0) return { state, reply, journal: state !== s };
  // One message to the home and one shadow event per batch, not per report.
  const toHome: DeviceChanges = { type: 'device.changes', changes };
  return { state, reply, effects: [{ type: 'tell', to: homeActorId(s.homeId), msg: toHome }, shadowEvent(state)], journal: true };
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
  const next: DeviceState = { ...s, desired, version: s.version + 1 };
  return { state: next, reply: ok(shadowOf(next)), effects: [shadowEvent(next)], journal: true };
}

/** A device exists once a hub has announced it or it has reported. */
const known = (s: DeviceState): boolean => s.hubId !== undefined || s.lastSeq > 0;
const unknownDevice = (s: DeviceState): DeviceStep => rejected(s, { code: 'not_found', message: `device ${s.deviceId} not found in home ${s.homeId}` });

/** The device actor, ids `device:{homeId}:{deviceId}` (homeId has no `:`). */
export const deviceBehavior: Behavior<DeviceState, DeviceMsg, DeviceReply, DomainEffect> = {
  kind: 'device',
  initial(id) {
    const m = /^device:([^:]+):(.+)$/.exec(id);
    if (!m?.[1] || !m[2]) throw new Error(`not a device actor id: ${id}`);
    return {
      homeId: m[1],
      deviceId: m[2],
      capabilities: [],
      reported: {},
      desired: {},
      version: 0,
      online: false,
      hubOnline: false,
      lastSeq: 0,
      recentSeqs: [],
      commands: {},
    };
  },
  /** Wakes at the earliest expiry of a queued or sent command, to expire it. */
  nextWakeAt(state) {
    let at: number | undefined;
    for (const c of Object.values(state.commands)) {
      if ((c.status === 'queued' || c.status === 'sent') && (at === undefined || c.expiresAtMs < at)) at = c.expiresAtMs;
    }
    return at;
  },
  wakeMessage: { type: 'command.expire' },
  receive(state, msg, ctx) {
    switch (msg.type) {
      case 'device.attach': return attach(state, msg);
      case 'hub.connection': return connection(state, msg, ctx.now);
      case 'report': return report(state, msg, ctx.now);
      case 'report.batch': return reportBatch(state, msg, ctx.now);
      case 'shadow.get': return known(state) ? { state, reply: ok(shadowOf(state)), journal: false } : unknownDevice(state);
      case 'shadow.setDesired': return known(state) ? setDesired(state, msg) : unknownDevice(state);
      // An app may only command a device a hub has announced; a rule's command waits for it.
      case 'command.issue': return known(state) || msg.source?.kind !== 'app' ? issueCommand(state, msg, ctx.now) : unknownDevice(state);
      case 'command.result': return completeCommand(state, msg, ctx.now);
      case 'command.get': return getCommand(state, msg.commandId);
      case 'command.expire': return expireCommands(state, ctx.now);
      default: return rejected(state, invalid('type', `is not a device message: ${String((msg as { type?: unknown }).type)}`));
    }
  },
};
