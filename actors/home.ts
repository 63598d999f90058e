/** The home actor: home settings, hubs, its devices and what its rules read of them, rules with their timers and runs, scenes, storm control. */
import type { Behavior, ReminderFired, Step } from '../runtime/behavior.ts';
import { deviceActorId, hubActorId, parseActorId } from './actor-id.ts';
import { HUB_LIMITS, hubCredentialIdOf, type HubSecretRotated, type HubSecretRotatedKeeping } from './hub.ts';
import type {
  DeviceBrief,
  DevicePage,
  DeviceRecord,
  HomeMsg,
  HomeReplies,
  HomeReply,
  HomeState,
  HomeSummary,
  HubRecord,
  HubView,
  RuleView,
} from './home-messages.ts';
import { commandCost, issuePlan, planActions } from './rules/action-plan.ts';
import { DECISION_OUTCOMES, DEFAULT_DECISION_LOG_SIZE, emptyDecisionLog, isDecisionOutcome, readDecisions } from './rules/decision-log.ts';
import { ReminderBook } from './rules/reminder-book.ts';
import { applyChange, timerFired, whereOf } from './rules/rule-firing.ts';
import { FRESH_STATUS, ruleReplaced, type RunConfig, type RunScope } from './rules/rule-runs.ts';
import { armSchedules, cancelAllRuleTimers, neverFiring, sameJson } from './rules/rule-timers.ts';
import { DEFAULT_COMMAND_TTL_MS, type GeoLocation, type Rule } from './rules/rule-types.ts';
import {
  invalidField,
  validateId,
  validateLocation,
  validateName,
  validateRule,
  validateScene,
  validateTimeZone,
} from './rules/rule-validation.ts';
import { checkSceneReferences, rulesUsingScene } from './rules/scene-references.ts';
import { DEFAULT_STORM_CONFIG, initialBudget, takeBudget, budgetReason } from './rules/storm-control.ts';
import { loadHome, upgradeEffect, upgradeHome } from './rules/home-upgrade.ts';
import { currentWatch, keepValues, rulesEdited } from './rules/rule-watch.ts';
import type { DeviceChanged, DeviceChanges, DeviceValues, DomainEffect, DomainError } from './types.ts';
import { checkNames, ownGet } from './validation.ts';

/**
 * Limits of a home actor: those of rule runs (storm control; decisionLogSize: entries kept, oldest
 * dropped, default 200; commandTtlMs default 30 000; maxQueuedRuns and maxParallelRuns default 10
 * each) and the number of rules and scenes (default 200 each).
 */
export interface HomeConfig extends RunConfig {
  readonly maxRules: number;
  readonly maxScenes: number;
}

export const DEFAULT_HOME_CONFIG: HomeConfig = {
  storm: DEFAULT_STORM_CONFIG,
  decisionLogSize: DEFAULT_DECISION_LOG_SIZE,
  maxRules: 200,
  maxScenes: 200,
  commandTtlMs: DEFAULT_COMMAND_TTL_MS,
  maxQueuedRuns: 10,
  maxParallelRuns: 10,
};

type HomeStep = Step<HomeState, HomeReply, DomainEffect>;
/** What the home handles: its messages, and its reminders when they come due. */
type HomeInput = HomeMsg | ReminderFired;

const ok = <K extends keyof HomeReplies>(_type: K, value: HomeReplies[K]): HomeReply => ({ ok: true, value });
const fail = (code: DomainError['code'], message: string): HomeReply => ({ ok: false, error: { code, message } });
const read = (state: HomeState, reply: HomeReply): HomeStep => ({ state, reply, journal: false });
const write = (state: HomeState, reply: HomeReply, effects: DomainEffect[] = []): HomeStep => ({
  state,
  reply,
  effects,
  journal: true,
});

const byKey = <T>(record: Readonly<Record<string, T>>): [string, T][] =>
  Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const brief = ([deviceId, d]: [string, DeviceRecord]): DeviceBrief => ({ deviceId, type: d.type, ...(d.hubId ? { hubId: d.hubId } : {}) });

function summary(s: HomeState): HomeSummary {
  return {
    homeId: s.homeId,
    name: s.name,
    timezone: s.timezone,
    ...(s.location === undefined ? {} : { location: s.location }),
    devices: byKey(s.devices).map(brief),
    hubs: byKey(s.hubs).map(([hubId]) => hubId),
    ruleCount: Object.keys(s.rules).length,
    sceneCount: Object.keys(s.scenes).length,
  };
}

function ruleView(s: HomeState, rule: Rule): RuleView {
  const suspended = ownGet(s.ruleStatus, rule.id)?.suspended;
  return suspended === undefined ? rule : { ...rule, suspended };
}

/** The runtime's `ReminderFired` type tag, as a literal: actors import only runtime types (typed, so a change there fails here). */
const REMINDER_FIRED: ReminderFired['type'] = 'reminder';

/** A step's clock, limits, effects (to which handlers append) and reminders. */
const scopeOf = (ctx: StepContext): RunScope => ({ now: ctx.now, cfg: ctx.cfg, effects: [], book: ctx.book });

/** Decision log entries appended from `before` to `after`. */
const appended = (before: HomeState, after: HomeState): number => after.decisions.nextSeq - before.decisions.nextSeq;

function onDeviceChanged(s: HomeState, change: DeviceChanged, ctx: StepContext): HomeStep {
  const scope = scopeOf(ctx);
  const next = applyChange(s, change, scope);
  // A device without a watch forwards everything: tell it what the rules read, so it stops.
  if (change.filtered !== true) scope.effects.push(currentWatch(next, change.deviceId));
  return { state: next, reply: ok('device.changed', { decisions: appended(s, next) }), effects: scope.effects, journal: next !== s };
}

/** A batch of one device's changes, in order, as one step: each is kept and evaluated in turn. */
function onDeviceChanges(s: HomeState, msg: DeviceChanges, ctx: StepContext): HomeStep {
  // The message may have come over the wire: check its shape before trusting the type.
  const changes: unknown = msg.changes;
  if (!Array.isArray(changes)) return read(s, fail('invalid_argument', 'changes must be an array'));
  const scope = scopeOf(ctx);
  let state = s;
  let unfiltered: string | undefined;
  for (const change of msg.changes) {
    state = applyChange(state, change, scope);
    if (change.filtered !== true) unfiltered = change.deviceId;
  }
  if (unfiltered !== undefined) scope.effects.push(currentWatch(state, unfiltered));
  return { state, reply: ok('device.changes', { decisions: appended(s, state) }), effects: scope.effects, journal: state !== s };
}

/** A rule timer came due (see rule-firing.ts): a reminder of the home's, only ever sent by the runtime. */
function onReminder(s: HomeState, fired: ReminderFired, ctx: StepContext): HomeStep {
  const scope = scopeOf(ctx);
  const next = timerFired(s, fired, scope);
  return { state: next, effects: scope.effects, journal: next !== s };
}

/** A device's answer to its watch: the values conditions read, journaled only when they differ. */
function onDeviceValues(s: HomeState, msg: DeviceValues): HomeStep {
  const attributes: unknown = msg.attributes;
  if (typeof msg.deviceId !== 'string' || typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    return read(s, fail('invalid_argument', 'device.values needs a deviceId and an attributes object'));
  }
  const next = keepValues(s, msg.deviceId, msg.attributes);
  return { state: next, reply: ok('device.values', null), journal: next !== s };
}

function activateScene(s: HomeState, sceneId: string, depth: number, now: number, cfg: HomeConfig): HomeStep {
  const scene = ownGet(s.scenes, sceneId);
  if (scene === undefined) return read(s, fail('not_found', `scene ${sceneId} not found`));
  const plan = planActions([{ type: 'scene', scene: sceneId }], s.scenes, cfg.commandTtlMs);
  const cost = commandCost(plan);
  const taken = takeBudget(s.budget, cost, now, cfg.storm);
  if (!taken.ok) return read(s, fail('resource_exhausted', budgetReason(cost, taken.budget, cfg.storm)));
  const issued = issuePlan(plan, { homeId: s.homeId, depth, source: { kind: 'app' }, idPrefix: `s-${sceneId}`, nextSeq: s.nextCommandSeq });
  const commands = issued.taken.flatMap((a) => (a.type === 'command' ? [{ commandId: a.commandId, device: a.device }] : []));
  return write(
    { ...s, budget: taken.budget, nextCommandSeq: issued.nextSeq },
    ok('scenes.activate', { sceneId, commands }),
    issued.effects,
  );
}

/** Devices per page of `home.devices`: at most, and when the caller sets none. */
export const DEVICE_PAGE = { max: 200, default: 50 } as const;

/** A page cursor is the base64url of the last device id served; anything else is not a cursor. */
const encodeCursor = (deviceId: string): string => Buffer.from(deviceId, 'utf8').toString('base64url');
function decodeCursor(cursor: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  return id.length > 0 && encodeCursor(id) === cursor ? id : undefined;
}

function devicePage(s: HomeState, limit: unknown, cursor: unknown): HomeReply {
  const n = limit ?? DEVICE_PAGE.default;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > DEVICE_PAGE.max) {
    return invalidField('limit', `must be an integer from 1 to ${DEVICE_PAGE.max}`);
  }
  let after: string | undefined;
  if (cursor !== undefined) {
    after = typeof cursor === 'string' ? decodeCursor(cursor) : undefined;
    if (after === undefined) return invalidField('cursor', 'is not a cursor from a previous page');
  }
  const sorted = byKey(s.devices);
  // Ids sort as strings, so the page starts at the first id greater than the cursor's, even if
  // that device was removed meanwhile.
  const start = after === undefined ? 0 : sorted.findIndex(([id]) => id > after);
  const rest = start < 0 ? [] : sorted.slice(start);
  const items = rest.slice(0, n).map(brief);
  const last = items[items.length - 1];
  const page: DevicePage = rest.length > n && last ? { items, nextCursor: encodeCursor(last.deviceId) } : { items };
  return ok('home.devices', page);
}

/** Nothing was ever stored for the home: it was never upserted and no device or value reached it. */
const neverWrittenHome = (s: HomeState): boolean => !s.exists && Object.keys(s.devices).length === 0 && Object.keys(s.values).length === 0;

function withoutKey<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const { [key]: _removed, ...rest } = record;
  return rest;
}

/** The state of a home never created. */
function freshHome(homeId: string, cfg: HomeConfig): HomeState {
  return {
    homeId,
    exists: false,
    name: '',
    timezone: 'UTC',
    devices: {},
    values: {},
    hubs: {},
    rules: {},
    ruleStatus: {},
    scenes: {},
    decisions: emptyDecisionLog(),
    budget: initialBudget(cfg.storm),
    nextCommandSeq: 1,
  };
}

/**
 * The home as never created, except its command seq: rule and scene command ids
 * (`<device>~r-<rule>-<seq>`) must not repeat those of the deleted home, which a device may still
 * hold (one a rule named but no hub attached is not told `device.remove`). A repeated id with
 * other params would be refused as an idempotency_conflict; with the same, silently not sent.
 */
const afresh = (s: HomeState, cfg: HomeConfig): HomeState => ({ ...freshHome(s.homeId, cfg), nextCommandSeq: s.nextCommandSeq });

/** What devices and hubs tell a home; a deleted home refuses them, so a late one brings nothing back. */
const FROM_DEVICES: ReadonlySet<HomeMsg['type']> = new Set(['device.attached', 'device.changed', 'device.changes', 'device.values']);

const hubViews = (s: HomeState): HubView[] => byKey(s.hubs).map(([hubId, h]): HubView => ({ hubId, ...h }));

/** The hub of `hubId` (validated), or the failure to answer. */
function hubOf(s: HomeState, hubId: unknown): { ok: true; hubId: string; hub: HubRecord } | { ok: false; reply: HomeReply } {
  const id = validateId(hubId, 'hubId');
  if (!id.ok) return { ok: false, reply: id };
  const hub = ownGet(s.hubs, id.value);
  return hub === undefined
    ? { ok: false, reply: fail('not_found', `hub ${id.value} not found in home ${s.homeId}`) }
    : { ok: true, hubId: id.value, hub };
}

/**
 * Deletes the home. The mark (a journaled step, not deleted keys) is what stops a report or hello
 * still in flight from re-creating devices in a home that is gone; the runtime has no safe way to
 * delete an actor's keys under its fenced writes, and the mark costs one small snapshot.
 */
function deleteHome(s: HomeState, cfg: HomeConfig, book: ReminderBook): HomeStep {
  cancelAllRuleTimers(book);
  const effects: DomainEffect[] = [
    ...Object.keys(s.devices).map((deviceId): DomainEffect => ({
      type: 'tell',
      to: deviceActorId(s.homeId, deviceId),
      msg: { type: 'device.remove' },
    })),
    ...Object.keys(s.hubs).map((hubId): DomainEffect => ({ type: 'tell', to: hubActorId(s.homeId, hubId), msg: { type: 'hub.remove' } })),
  ];
  const next: HomeState = { ...afresh(s, cfg), deleted: true };
  return write(next, ok('home.delete', { homeId: s.homeId, hubs: hubViews(s) }), effects);
}

/**
 * What a step needs besides the state and message. `replaying`: the step is a journaled one being
 * replayed, which must decide as the first run did (see home-upgrade.ts). A check added after
 * a step was journaled (by an older release) must not refuse it on replay, or the state and every
 * later firing (command ids, decision log) diverge from what was acked.
 */
interface StepContext {
  readonly now: number;
  readonly replaying: boolean;
  readonly cfg: HomeConfig;
  /** The home's pending reminders; what the step sets and cancels goes through it. */
  readonly book: ReminderBook;
}

const sameLocation = (a: GeoLocation | undefined, b: GeoLocation | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.latitude === b.latitude && a.longitude === b.longitude);

/** Ids of the rules with a sun trigger, sorted. */
const sunRules = (s: HomeState): string[] =>
  byKey(s.rules)
    .filter(([, r]) => r.when.some((t) => t.type === 'sun'))
    .map(([id]) => id);

/** Creates or updates the home; a new time zone or location moves every schedule's reminder. */
function upsertHome(s: HomeState, msg: Extract<HomeMsg, { type: 'home.upsert' }>, ctx: StepContext): HomeStep {
  // A deleted home is created anew from nothing (but its command seq).
  if (s.deleted === true) s = afresh(s, ctx.cfg);
  const name = validateName(msg.name);
  if (!name.ok) return read(s, name);
  const tz = validateTimeZone(msg.timezone === undefined ? s.timezone : msg.timezone);
  if (!tz.ok) return read(s, tz);
  let location = s.location;
  if (msg.location === null) {
    const users = sunRules(s);
    if (users.length > 0) return read(s, invalidField('location', `is used by sun rules ${users.join(', ')}: change or delete them first`));
    location = undefined;
  } else if (msg.location !== undefined) {
    const v = validateLocation(msg.location);
    if (!v.ok) return read(s, v);
    location = v.value;
  }
  if (s.exists && s.name === name.value && s.timezone === tz.value && sameLocation(s.location, location)) {
    return read(s, ok('home.upsert', { created: false, home: summary(s) }));
  }
  const { location: _old, ...rest } = s;
  const next: HomeState = { ...rest, exists: true, name: name.value, timezone: tz.value, ...(location === undefined ? {} : { location }) };
  if (next.timezone !== s.timezone || !sameLocation(s.location, location)) {
    for (const rule of Object.values(next.rules)) if (rule.enabled) armSchedules(ctx.book, rule, whereOf(next), ctx.now);
  }
  return write(next, ok('home.upsert', { created: !s.exists, home: summary(next) }));
}

/**
 * Stores a rule. A sun trigger needs the home's location, and a schedule that never fires is
 * refused (not on replay: that depends on the croner, suncalc and ICU versions, and a journaled
 * put was accepted). The same rule again changes nothing live (but clears a suspension). Otherwise
 * (see `ruleReplaced`) what the edit leaves unchanged goes on while the rule stays enabled: a
 * `for` hold or schedule whose trigger is unchanged keeps its time, waiting runs and queued
 * firings go on when `then` and `mode` are unchanged (a run resumes at an index of `then`); the
 * rest ends, logged `cancelled`, and new schedules are set. Writing a rule clears its storm status.
 */
function putRule(s: HomeState, input: unknown, ctx: StepContext): HomeStep {
  const { replaying, cfg, now } = ctx;
  const v = validateRule(input);
  if (!v.ok) return read(s, v);
  // Scene references are checked since issue 11: a rule journaled before may name a missing scene.
  if (!replaying) {
    const refs = checkSceneReferences(v.value, s.scenes);
    if (!refs.ok) return read(s, refs);
  }
  const rule = v.value;
  const sun = rule.when.findIndex((t) => t.type === 'sun');
  if (sun >= 0 && s.location === undefined) {
    return read(
      s,
      invalidField(`when[${sun}]`, "is a sun trigger, which needs the home's location: set it first (PUT /v1/homes/{homeId})"),
    );
  }
  const before = ownGet(s.rules, rule.id);
  // On replay, a journaled put of the same rule is one an older release wrote, which reset the
  // rule's storm status as any edit does: the edit below does so again (and keeps every timer).
  if (!replaying && before !== undefined && sameJson(before, rule)) {
    // Saving a rule as it is (an app re-saving) keeps its timers and runs. It still clears a
    // suspension, as saving always did.
    const status = ownGet(s.ruleStatus, rule.id);
    if (status?.suspended === undefined) return read(s, ok('rules.put', { created: false, rule }));
    return write({ ...s, ruleStatus: { ...s.ruleStatus, [rule.id]: FRESH_STATUS } }, ok('rules.put', { created: false, rule }));
  }
  if (!replaying) {
    const never = neverFiring(rule, whereOf(s), now);
    if (never !== undefined) return read(s, invalidField(`when[${never}]`, 'never fires: it has no time within the next 400 days'));
  }
  const created = before === undefined;
  if (created && Object.keys(s.rules).length >= cfg.maxRules) {
    return read(s, fail('failed_precondition', `a home has at most ${cfg.maxRules} rules`));
  }
  const scope = scopeOf(ctx);
  const base = ruleReplaced(s, rule.id, before, rule, whereOf(s), scope);
  // Writing a rule clears its suspension: the app has seen the reason and changed the rule.
  const edited = rulesEdited(s, {
    ...base,
    rules: { ...s.rules, [rule.id]: rule },
    ruleStatus: { ...base.ruleStatus, [rule.id]: FRESH_STATUS },
  });
  return write(edited.state, ok('rules.put', { created, rule }), [...scope.effects, ...edited.effects]);
}

function listDecisions(s: HomeState, msg: Extract<HomeMsg, { type: 'decisions.list' }>, cfg: HomeConfig): HomeStep {
  const limit = msg.limit ?? 50;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > cfg.decisionLogSize) {
    return read(s, invalidField('limit', `must be an integer from 1 to ${cfg.decisionLogSize}`));
  }
  let ruleId: string | undefined;
  if (msg.rule !== undefined) {
    const id = validateId(msg.rule, 'rule');
    if (!id.ok) return read(s, id);
    ruleId = id.value;
  }
  const outcome = msg.outcome;
  if (outcome !== undefined && !isDecisionOutcome(outcome)) {
    return read(s, invalidField('outcome', `must be one of ${DECISION_OUTCOMES.join(', ')}`));
  }
  return read(s, ok('decisions.list', readDecisions(s.decisions, limit, { ruleId, outcome })));
}

function receive(s: HomeState, msg: HomeMsg, ctx: StepContext): HomeStep {
  const { now, replaying, cfg, book } = ctx;
  if (s.deleted === true && FROM_DEVICES.has(msg.type)) return read(s, fail('not_found', `home ${s.homeId} was deleted`));
  switch (msg.type) {
    case 'home.upsert':
      return upsertHome(s, msg, ctx);
    case 'device.attached': {
      const old = ownGet(s.devices, msg.deviceId);
      if (old !== undefined && old.type === msg.deviceType && old.hubId === msg.hubId) {
        // A hub's hello repeats what the home knows, but the device may have missed its watch (a
        // tell can be lost): tell it again. A device that has it writes nothing, and its answer
        // re-syncs the values the home keeps. Costs a tell per device and hello, no write here.
        return {
          state: s,
          reply: ok('device.attached', { deviceId: msg.deviceId }),
          effects: [currentWatch(s, msg.deviceId)],
          journal: false,
        };
      }
      const device: DeviceRecord = { type: msg.deviceType, hubId: msg.hubId };
      const next = { ...s, devices: { ...s.devices, [msg.deviceId]: device } };
      // A device the home (re)learns of hears what the rules read of it before it reports.
      return write(next, ok('device.attached', { deviceId: msg.deviceId }), [currentWatch(next, msg.deviceId)]);
    }
    case 'device.changed':
      return onDeviceChanged(s, msg, ctx);
    case 'device.changes':
      return onDeviceChanges(s, msg, ctx);
    case 'device.values':
      return onDeviceValues(s, msg);
    case 'home.upgrade': {
      const next = upgradeHome(s);
      return { state: next, reply: ok('home.upgrade', null), journal: next !== s };
    }
    default:
      break;
  }
  // Everything below needs the home to exist. A home never written (no upsert, no device told
  // of it) also leaves memory at once: a GET of a random home id keeps no actor resident.
  if (!s.exists) return { ...read(s, fail('not_found', `home ${s.homeId} not found`)), passivate: neverWrittenHome(s) };
  switch (msg.type) {
    case 'home.get':
      return read(s, ok('home.get', summary(s)));
    case 'home.registerHub': {
      const hubId = validateId(msg.hubId, 'hubId');
      if (!hubId.ok) return read(s, hubId);
      if (typeof msg.secretHash !== 'string' || msg.secretHash.length === 0) {
        return read(s, invalidField('secretHash', 'must be a non-empty string'));
      }
      if (Object.hasOwn(s.hubs, hubId.value)) return read(s, fail('already_exists', `hub ${hubId.value} already exists`));
      const hub = { secretHash: msg.secretHash, createdAt: now };
      // The hub actor of a hub removed before (or of a home deleted and created anew) starts afresh.
      return write({ ...s, hubs: { ...s.hubs, [hubId.value]: hub } }, ok('home.registerHub', { hubId: hubId.value, ...hub }), [
        { type: 'tell', to: hubActorId(s.homeId, hubId.value), msg: { type: 'hub.registered' } },
      ]);
    }
    case 'home.rotateHubSecret': {
      const found = hubOf(s, msg.hubId);
      if (!found.ok) return read(s, found.reply);
      if (typeof msg.secretHash !== 'string' || msg.secretHash.length === 0) {
        return read(s, invalidField('secretHash', 'must be a non-empty string'));
      }
      const until = msg.previousValidUntil;
      if (until !== undefined && (typeof until !== 'number' || !Number.isSafeInteger(until) || until < 0)) {
        return read(s, invalidField('previousValidUntil', 'must be epoch milliseconds'));
      }
      const retired = msg.retire;
      const badRetire = retired === undefined ? undefined : checkNames('retire', retired, HUB_LIMITS.retiredPerRotation);
      if (badRetire) return read(s, { ok: false, error: badRetire });
      if (retired !== undefined && until === undefined) return read(s, invalidField('previousValidUntil', 'is required with retire'));
      const { hubId, hub } = found;
      const previous = hub.secretHash === undefined ? {} : { previousSecretHash: hub.secretHash };
      const next = { ...s, hubs: { ...s.hubs, [hubId]: { ...hub, secretHash: msg.secretHash, rotatedAt: now } } };
      // The hub actor ends a stream still open on a retired secret when its grace period ends. It
      // is told only the secrets this rotation retires: a caller of an older release names none,
      // and the hub actor is then told the older way (every secret but the new one).
      const secretHash = msg.secretHash;
      const tellHub: DomainEffect[] =
        until === undefined
          ? []
          : [
              {
                type: 'tell',
                to: hubActorId(s.homeId, hubId),
                msg: (retired === undefined
                  ? { type: 'hub.secretRotated', keep: [hubCredentialIdOf(secretHash)], othersValidUntil: until }
                  : { type: 'hub.secretRotated', retire: [...(retired as string[])], until }) satisfies
                  HubSecretRotated | HubSecretRotatedKeeping,
              },
            ];
      return write(next, ok('home.rotateHubSecret', { hubId, ...previous }), tellHub);
    }
    case 'home.removeHub': {
      const found = hubOf(s, msg.hubId);
      if (!found.ok) return read(s, found.reply);
      const { hubId, hub } = found;
      const secret = hub.secretHash === undefined ? {} : { secretHash: hub.secretHash };
      return write({ ...s, hubs: withoutKey(s.hubs, hubId) }, ok('home.removeHub', { hubId, ...secret }), [
        { type: 'tell', to: hubActorId(s.homeId, hubId), msg: { type: 'hub.remove' } },
      ]);
    }
    case 'home.delete':
      return deleteHome(s, cfg, book);
    case 'home.devices':
      return read(s, devicePage(s, msg.limit, msg.cursor));
    case 'home.hubs':
      return read(s, ok('home.hubs', hubViews(s)));
    case 'rules.list':
      return read(
        s,
        ok(
          'rules.list',
          byKey(s.rules).map(([, r]) => ruleView(s, r)),
        ),
      );
    case 'rules.get': {
      const rule = ownGet(s.rules, msg.ruleId);
      return read(s, rule ? ok('rules.get', ruleView(s, rule)) : fail('not_found', `rule ${msg.ruleId} not found`));
    }
    case 'rules.put':
      return putRule(s, msg.rule, ctx);
    case 'rules.delete': {
      const before = ownGet(s.rules, msg.ruleId);
      if (before === undefined) return read(s, fail('not_found', `rule ${msg.ruleId} not found`));
      const scope = scopeOf(ctx);
      const base = ruleReplaced(s, before.id, before, undefined, whereOf(s), scope);
      const edited = rulesEdited(s, { ...base, rules: withoutKey(s.rules, before.id), ruleStatus: withoutKey(base.ruleStatus, before.id) });
      return write(edited.state, ok('rules.delete', { ruleId: before.id }), [...scope.effects, ...edited.effects]);
    }
    case 'rules.resume': {
      const rule = ownGet(s.rules, msg.ruleId);
      if (rule === undefined) return read(s, fail('not_found', `rule ${msg.ruleId} not found`));
      const status = ownGet(s.ruleStatus, msg.ruleId);
      if (status === undefined || (status.suspended === undefined && status.recentFirings.length === 0)) {
        return read(s, ok('rules.resume', rule));
      }
      return write({ ...s, ruleStatus: { ...s.ruleStatus, [rule.id]: FRESH_STATUS } }, ok('rules.resume', rule));
    }
    case 'scenes.list':
      return read(
        s,
        ok(
          'scenes.list',
          byKey(s.scenes).map(([, sc]) => sc),
        ),
      );
    case 'scenes.get': {
      const scene = ownGet(s.scenes, msg.sceneId);
      return read(s, scene ? ok('scenes.get', scene) : fail('not_found', `scene ${msg.sceneId} not found`));
    }
    case 'scenes.put': {
      const v = validateScene(msg.scene);
      if (!v.ok) return read(s, v);
      const scene = v.value;
      const created = !Object.hasOwn(s.scenes, scene.id);
      if (created && Object.keys(s.scenes).length >= cfg.maxScenes) {
        return read(s, fail('failed_precondition', `a home has at most ${cfg.maxScenes} scenes`));
      }
      return write({ ...s, scenes: { ...s.scenes, [scene.id]: scene } }, ok('scenes.put', { created, scene }));
    }
    case 'scenes.delete': {
      if (!Object.hasOwn(s.scenes, msg.sceneId)) return read(s, fail('not_found', `scene ${msg.sceneId} not found`));
      // Rules name only scenes that exist (checked when they are written); a rule stored before
      // that check still runs, its missing scene logged as a skipped action. A delete journaled
      // before the check is replayed as it was accepted.
      const users = replaying ? [] : rulesUsingScene(s.rules, msg.sceneId);
      if (users.length > 0) {
        return read(
          s,
          fail('failed_precondition', `scene ${msg.sceneId} is used by rules ${users.join(', ')}: change or delete them first`),
        );
      }
      return write({ ...s, scenes: withoutKey(s.scenes, msg.sceneId) }, ok('scenes.delete', { sceneId: msg.sceneId }));
    }
    case 'scenes.activate': {
      const depth = msg.depth ?? 0;
      if (!Number.isSafeInteger(depth) || depth < 0) return read(s, invalidField('depth', 'must be a non-negative integer'));
      return activateScene(s, msg.sceneId, depth, now, cfg);
    }
    case 'decisions.list':
      return listDecisions(s, msg, cfg);
    default:
      return read(s, invalidField('type', `unknown message type ${JSON.stringify((msg as { type?: unknown }).type)}`));
  }
}

/** Builds the home behaviour with `config` over the defaults. */
export function createHomeBehavior(config: Partial<HomeConfig> = {}): Behavior<HomeState, HomeInput, HomeReply, DomainEffect> {
  const cfg: HomeConfig = { ...DEFAULT_HOME_CONFIG, ...config };
  return {
    kind: 'home',
    initial(id: string): HomeState {
      const parsed = parseActorId(id);
      if (parsed?.kind !== 'home') throw new Error(`not a home actor id: ${id}`);
      return freshHome(parsed.homeId, cfg);
    },
    receive(state, msg, ctx) {
      const loaded = loadHome(state);
      const firing = msg.type === REMINDER_FIRED;
      // The reminder that fires is gone before this step's own ops apply (it may set the same name again).
      const book = new ReminderBook(ctx.reminders, firing ? msg.name : undefined);
      const stepCtx: StepContext = { now: ctx.now, replaying: ctx.replaying, cfg, book };
      const decided = firing ? onReminder(loaded, msg, stepCtx) : receive(loaded, msg, stepCtx);
      const ops = book.ops();
      const step: HomeStep = ops.length === 0 ? decided : { ...decided, reminders: ops, journal: true };
      // A mirroring home leaves the mirror at a journaled message of its own (see home-upgrade.ts).
      if (loaded.mirror !== true || ctx.replaying || msg.type === 'home.upgrade') return step;
      return { ...step, effects: [...(step.effects ?? []), upgradeEffect(loaded)] };
    },
  };
}

/** The home actor, `home:{homeId}`, with the default limits. */
export const homeBehavior = createHomeBehavior();
