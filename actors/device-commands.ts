/** Command lifecycle inside a device actor: issue, deliver, check delivery, complete, expire, and the causal window. */
import type { Step } from '../runtime/behavior.ts';
import { COMMAND_LIMITS } from './device-state.ts';
import { COMMAND_STATUS_TOPIC } from './event-topics.ts';
import type { CommandRecord, CommandResend, CommandResult, DeviceReply, DeviceState, ExpireResult } from './device-state.ts';
import type { DomainEffect, DomainError, IssueCommand } from './types.ts';
import { checkInt, checkKey, checkValues, invalid, ok, ownGet, VALUE_LIMITS } from './validation.ts';

type DeviceStep = Step<DeviceState, DeviceReply, DomainEffect>;

const isLive = (c: CommandRecord): boolean => c.status === 'queued' || c.status === 'sent';
const byIssue = (a: CommandRecord, b: CommandRecord): number => a.issueNo - b.issueNo;
const notFound = (s: DeviceState, commandId: string): DeviceStep => ({
  state: s,
  reply: { ok: false, error: { code: 'not_found', message: `no command ${commandId} on device ${s.deviceId}` } },
  journal: false,
});

/** Causal depth a report applied at `now` (epoch ms) carries: the active window's depth, else 0. */
export const causalDepth = (s: DeviceState, now: number): number => (s.causal !== undefined && now < s.causal.untilMs ? s.causal.depth : 0);

const statusEvent = (s: DeviceState, c: CommandRecord): DomainEffect => ({
  type: 'publish',
  homeId: s.homeId,
  topic: COMMAND_STATUS_TOPIC,
  data: { deviceId: s.deviceId, ...c },
});

/**
 * The command for the hub's stream, released once this step is durable. Its way on: the node's
 * effect dispatcher (`node/effect-dispatcher.ts`) → `HubCommandDelivery`
 * (`edge-api/hub-ingress/hub-command-delivery.ts`) → the hub's session, here or on its node.
 */
const hubCommand = (s: DeviceState, hubId: string, c: CommandRecord): DomainEffect => ({
  type: 'hub.command',
  homeId: s.homeId,
  hubId,
  command: { commandId: c.commandId, deviceId: s.deviceId, name: c.name, params: c.params, expiresAtMs: c.expiresAtMs },
});

type Resends = Readonly<Record<string, CommandResend>>;

/** Epoch ms at which `sent` command `c` is checked next (see `DeviceState.resends`). */
export function resendAt(s: DeviceState, c: CommandRecord): number {
  const r = s.resends === undefined ? undefined : ownGet(s.resends, c.commandId);
  return r?.at ?? (c.sentAt ?? c.createdAt) + COMMAND_LIMITS.resendAfterMs;
}

/** Milliseconds from a command's `n`-th re-send to its next check: 3 s doubling per re-send (6, 12 s; `n` < `resendLimit`). */
export const resendDelay = (n: number): number => COMMAND_LIMITS.resendAfterMs * 2 ** n;

/** The highest issueNo among the device's commands that went down to the hub (0: none). */
const lastSentIssueNo = (s: DeviceState): number =>
  Object.values(s.commands).reduce((n, c) => (c.sentAt !== undefined && c.issueNo > n ? c.issueNo : n), 0);

/**
 * Whether `sent` command `c` is still checked (and re-sent when its check is due): fewer than
 * `resendLimit` re-sends so far, and no later command of the device sent since it (`lastSent`:
 * `lastSentIssueNo(s)`). A re-send after a later command would run them on the hub in the wrong
 * order (an "on" lost with a dead node, re-sent after the "off" the app issued next, would leave
 * the device on): such a command stays `sent` until its result, its expiry or the hub's next hello,
 * which sends every `sent` command again in issue order. A command issued later was sent after
 * it (sends go down in issue order), so "sent since" is "issued later and sent".
 */
function checked(s: DeviceState, c: CommandRecord, lastSent: number): boolean {
  if (c.status !== 'sent' || c.issueNo < lastSent) return false;
  const r = s.resends === undefined ? undefined : ownGet(s.resends, c.commandId);
  return (r?.n ?? 0) < COMMAND_LIMITS.resendLimit;
}

/** `s` with `resends` in place of its own (the field left out when there is none). */
export function withResends(s: DeviceState, resends: Resends | undefined): DeviceState {
  const { resends: _old, ...rest } = s;
  return resends === undefined || Object.keys(resends).length === 0 ? rest : { ...rest, resends };
}

/** `s.resends` without the entries of `ids` (the same object when it holds none of them). */
function withoutResends(s: DeviceState, ids: readonly string[]): Resends | undefined {
  const { resends } = s;
  if (resends === undefined || !ids.some((id) => Object.hasOwn(resends, id))) return resends;
  const drop = new Set(ids);
  return Object.fromEntries(Object.entries(resends).filter(([id]) => !drop.has(id)));
}

/**
 * The device's next wake-up (epoch ms): the earliest expiry of a live command and, while its hub's
 * stream is open, the earliest delivery check of a `sent` one still checked (`checked`; never
 * later than that command's expiry: then it is expired, not sent again). One durable reminder
 * (`~wake`) holds it for all of the device's commands.
 */
export function nextCommandWake(s: DeviceState): number | undefined {
  const checking = s.hubOnline && s.hubId !== undefined;
  const lastSent = checking ? lastSentIssueNo(s) : 0;
  let at: number | undefined;
  for (const c of Object.values(s.commands)) {
    if (!isLive(c)) continue;
    const t = checking && checked(s, c, lastSent) ? Math.min(c.expiresAtMs, resendAt(s, c)) : c.expiresAtMs;
    if (at === undefined || t < at) at = t;
  }
  return at;
}

/** Keeps at most `history` commands by dropping the oldest terminal ones (live ones are never dropped). */
export function boundHistory(commands: Readonly<Record<string, CommandRecord>>): Readonly<Record<string, CommandRecord>> {
  const all = Object.values(commands);
  const excess = all.length - COMMAND_LIMITS.history;
  if (excess <= 0) return commands;
  const drop = new Set(
    all
      .filter((c) => !isLive(c))
      .sort(byIssue)
      .slice(0, excess)
      .map((c) => c.commandId),
  );
  return Object.fromEntries(Object.entries(commands).filter(([id]) => !drop.has(id)));
}

/**
 * The hub's stream is open: in issue order, expired live commands become `expired`, queued ones
 * become `sent`, and `sent` ones whose result never came are sent again (the hub dedupes by id;
 * a stream writes each id once, so one that already carried it, the first send racing this one,
 * does not carry it twice: edge-api/hub-ingress/hub-outbound.ts). Their delivery checks start
 * over from this send (`resends`, for `DeviceState.resends`).
 */
export function deliverPending(
  s: DeviceState,
  hubId: string,
  now: number,
): { commands: Record<string, CommandRecord>; resends: Resends; effects: DomainEffect[]; changed: boolean } {
  const commands: Record<string, CommandRecord> = { ...s.commands };
  const resends: Record<string, CommandResend> = { ...s.resends };
  const effects: DomainEffect[] = [];
  let changed = false;
  for (const c of Object.values(s.commands).filter(isLive).sort(byIssue)) {
    if (c.expiresAtMs <= now || c.status === 'queued') {
      const next: CommandRecord =
        c.expiresAtMs <= now ? { ...c, status: 'expired', completedAt: now } : { ...c, status: 'sent', sentAt: now };
      commands[c.commandId] = next;
      delete resends[c.commandId];
      if (next.status === 'sent') effects.push(hubCommand(s, hubId, next));
      effects.push(statusEvent(s, next));
      changed = true;
    } else {
      effects.push(hubCommand(s, hubId, c));
      const at = now + COMMAND_LIMITS.resendAfterMs;
      const held = ownGet(resends, c.commandId);
      if (held?.at !== at || held.n !== 0) {
        resends[c.commandId] = { at, n: 0 };
        changed = true;
      }
    }
  }
  return { commands, resends, effects, changed };
}

/**
 * The device's wake-up (`command.expire`): live commands past their expiry become `expired`; then,
 * while the hub's stream is open, the `sent` commands still checked (`checked`: no later command
 * sent since, fewer than `resendLimit` re-sends: the newest sent one at most) whose delivery check
 * is due are sent again, under the same ids: a send lost with a node that died (after the step
 * that marked the command `sent` was durable) reaches the hub within seconds, where the hub's
 * stream is, wherever the device's shard went. Each is checked again
 * `resendDelay(n)` later, until its result, expiry, `resendLimit` re-sends, a later command's send
 * or the hub's next connect. A repeat that reaches a stream that already wrote the id is not
 * written again; one the hub already ran is answered with its result (the hub dedupes by id).
 */
export function checkCommands(s: DeviceState, now: number): DeviceStep {
  const { state: after, expired, effects } = expireDue(s, now);
  const hubId = after.hubOnline ? after.hubId : undefined;
  const resent: string[] = [];
  let state = after;
  if (hubId !== undefined) {
    const lastSent = lastSentIssueNo(after);
    const sent = Object.values(after.commands).filter((c) => checked(after, c, lastSent));
    const due = sent.filter((c) => resendAt(after, c) <= now).sort(byIssue);
    if (due.length > 0) {
      const resends: Record<string, CommandResend> = { ...after.resends };
      for (const c of due) {
        const n = (ownGet(resends, c.commandId)?.n ?? 0) + 1;
        resends[c.commandId] = { at: now + resendDelay(n), n };
        effects.push(hubCommand(after, hubId, c));
        resent.push(c.commandId);
      }
      state = withResends(after, resends);
    }
  }
  if (state === s) return { state: s, reply: ok<ExpireResult>({ expired, resent }), journal: false };
  return { state, reply: ok<ExpireResult>({ expired, resent }), effects, journal: true };
}

/**
 * What of `m` differs from the command already recorded under its id (`name`, `params` or
 * `ttlMs`), or undefined when it asks for the same command. Who asks (app or rule) and the causal
 * depth are not compared: a retry or a redelivered rule command carries the same request.
 */
function differingField(c: CommandRecord, m: IssueCommand): 'name' | 'params' | 'ttlMs' | undefined {
  if (c.name !== m.name) return 'name';
  const keys = Object.keys(m.params);
  if (keys.length !== Object.keys(c.params).length || keys.some((k) => ownGet(c.params, k) !== m.params[k])) return 'params';
  // The record keeps the expiry; expiresAtMs - createdAt is the ttlMs it was issued with.
  if (c.expiresAtMs - c.createdAt !== m.ttlMs) return 'ttlMs';
  return undefined;
}

/**
 * `command.issue`: idempotent by commandId (the same command again answers the first, changing
 * nothing; the same id with another name, params or ttlMs is an `idempotency_conflict`); sent at
 * once when the hub is online, else queued.
 */
export function issueCommand(s: DeviceState, m: IssueCommand, now: number): DeviceStep {
  const e =
    checkKey('commandId', m.commandId, VALUE_LIMITS.idLength) ??
    checkKey('name', m.name, VALUE_LIMITS.nameLength) ??
    checkInt('ttlMs', m.ttlMs, 1, COMMAND_LIMITS.maxTtlMs) ??
    checkValues('params', m.params, false) ??
    checkInt('depth', m.depth, 0) ??
    (m.source?.kind === 'app'
      ? undefined
      : m.source?.kind === 'rule'
        ? checkKey('source.ruleId', m.source.ruleId, VALUE_LIMITS.idLength)
        : invalid('source', "must be {kind:'app'} or {kind:'rule', ruleId}"));
  if (e) return { state: s, reply: { ok: false, error: e }, journal: false };
  const existing = ownGet(s.commands, m.commandId);
  if (existing) {
    const field = differingField(existing, m);
    if (field === undefined) return { state: s, reply: ok(existing), journal: false };
    const message = `command ${m.commandId} was already issued with another ${field}: an idempotency key names one command`;
    return { state: s, reply: { ok: false, error: { code: 'idempotency_conflict', message, field } }, journal: false };
  }
  const all = Object.values(s.commands);
  if (all.filter((c) => isLive(c) && c.expiresAtMs > now).length >= COMMAND_LIMITS.history) {
    const message = `${COMMAND_LIMITS.history} commands are already pending on device ${s.deviceId}`;
    return { state: s, reply: { ok: false, error: { code: 'failed_precondition', message } }, journal: false };
  }
  const hubId = s.hubOnline ? s.hubId : undefined;
  const cmd: CommandRecord = {
    commandId: m.commandId,
    name: m.name,
    params: { ...m.params },
    status: hubId === undefined ? 'queued' : 'sent',
    createdAt: now,
    expiresAtMs: now + m.ttlMs,
    depth: m.depth,
    source: m.source.kind === 'rule' ? { kind: 'rule', ruleId: m.source.ruleId } : { kind: 'app' },
    issueNo: all.reduce((n, c) => Math.max(n, c.issueNo), 0) + 1,
    ...(hubId === undefined ? {} : { sentAt: now }),
  };
  const next: DeviceState = { ...s, commands: boundHistory({ ...s.commands, [cmd.commandId]: cmd }) };
  const effects = hubId === undefined ? [statusEvent(s, cmd)] : [hubCommand(s, hubId, cmd), statusEvent(s, cmd)];
  return { state: next, reply: ok(cmd), effects, journal: true };
}

/**
 * A command result's `result` map: checked as report attributes are (the field named), and at most
 * `COMMAND_LIMITS.resultBytes` as JSON.
 */
export function checkResult(result: unknown): DomainError | undefined {
  const e = checkValues('result', result, false);
  if (e) return e;
  const bytes = Buffer.byteLength(JSON.stringify(result), 'utf8');
  return bytes <= COMMAND_LIMITS.resultBytes
    ? undefined
    : invalid('result', `must be at most ${COMMAND_LIMITS.resultBytes} bytes as JSON, not ${bytes}`);
}

/**
 * `command.result` from the hub: a live command succeeds or fails, keeping the hub's `result` map
 * (`checkResult`: a bad one refuses the whole result); a terminal one is left as it is. On replay
 * the result is not checked: a journaled result was accepted once (under the limits of its day).
 */
export function completeCommand(s: DeviceState, m: CommandResult, now: number, replaying = false): DeviceStep {
  const e =
    checkKey('commandId', m.commandId, VALUE_LIMITS.idLength) ??
    (typeof m.ok === 'boolean' ? undefined : invalid('ok', 'must be a boolean')) ??
    (m.error === undefined || typeof m.error === 'string' ? undefined : invalid('error', 'must be a string')) ??
    (m.result === undefined || replaying ? undefined : checkResult(m.result));
  if (e) return { state: s, reply: { ok: false, error: e }, journal: false };
  const cmd = ownGet(s.commands, m.commandId);
  if (!cmd) return notFound(s, m.commandId);
  if (!isLive(cmd)) return { state: s, reply: ok(cmd), journal: false };
  const error = m.error === undefined ? {} : { error: m.error.slice(0, VALUE_LIMITS.textLength) };
  const result = m.result === undefined || Object.keys(m.result).length === 0 ? {} : { result: { ...m.result } };
  const done: CommandRecord = { ...cmd, status: m.ok ? 'succeeded' : 'failed', completedAt: now, ...error, ...result };
  // A rule's command that worked: reports it causes carry its depth, so the home can see a loop.
  const untilMs = now + COMMAND_LIMITS.causalWindowMs;
  const causal = m.ok && cmd.depth > 0 ? { causal: { depth: Math.max(cmd.depth, causalDepth(s, now)), untilMs } } : {};
  const next = withResends({ ...s, ...causal, commands: { ...s.commands, [cmd.commandId]: done } }, withoutResends(s, [cmd.commandId]));
  return { state: next, reply: ok(done), effects: [statusEvent(s, done)], journal: true };
}

/** `command.get`: the record, or not_found. */
export function getCommand(s: DeviceState, commandId: string): DeviceStep {
  const cmd = typeof commandId === 'string' ? ownGet(s.commands, commandId) : undefined;
  return cmd ? { state: s, reply: ok(cmd), journal: false } : notFound(s, commandId);
}

/** Every live command with expiresAtMs <= now becomes `expired` (its delivery check goes with it). */
function expireDue(s: DeviceState, now: number): { state: DeviceState; expired: string[]; effects: DomainEffect[] } {
  const due = Object.values(s.commands)
    .filter((c) => isLive(c) && c.expiresAtMs <= now)
    .sort(byIssue);
  if (due.length === 0) return { state: s, expired: [], effects: [] };
  const commands: Record<string, CommandRecord> = { ...s.commands };
  const effects: DomainEffect[] = [];
  for (const c of due) {
    const expired: CommandRecord = { ...c, status: 'expired', completedAt: now };
    commands[c.commandId] = expired;
    effects.push(statusEvent(s, expired));
  }
  const expired = due.map((c) => c.commandId);
  return { state: withResends({ ...s, commands }, withoutResends(s, expired)), expired, effects };
}

/** `command.expire` without delivery checks (a removed device): every live command with expiresAtMs <= now becomes `expired`. */
export function expireCommands(s: DeviceState, now: number): DeviceStep {
  const { state, expired, effects } = expireDue(s, now);
  if (state === s) return { state: s, reply: ok<ExpireResult>({ expired }), journal: false };
  return { state, reply: ok<ExpireResult>({ expired }), effects, journal: true };
}
