/** Unit tests of the device actor's command lifecycle: idempotency, delivery, results, TTL, causal depth, bounds. */
import { describe, expect, it } from 'vitest';
import { errorOf, valueOf } from '../support/outcome.ts';
import { deviceBehavior } from '../../actors/device.ts';
import { COMMAND_LIMITS } from '../../actors/device-state.ts';
import type { CommandRecord, DeviceMsg, DeviceState, ExpireResult } from '../../actors/device-state.ts';
import { deviceActorId } from '../../actors/actor-id.ts';
import type { DomainEffect, IssueCommand, Value } from '../../actors/types.ts';

const ID = deviceActorId('h1', 'lamp');
const run = (s: DeviceState, msg: DeviceMsg, now = 1_000) => deviceBehavior.receive(s, msg, { id: ID, now, replaying: false });
const issue = (commandId: string, over: Partial<IssueCommand> = {}): IssueCommand => ({
  type: 'command.issue',
  commandId,
  name: 'set',
  params: { on: true },
  ttlMs: 10_000,
  depth: 0,
  source: { kind: 'app' },
  ...over,
});
const result = (commandId: string, ok: boolean, error?: string): DeviceMsg => ({
  type: 'command.result',
  commandId,
  ok,
  ...(error ? { error } : {}),
});
const report = (seq: number, on: boolean): DeviceMsg => ({ type: 'report', seq, tsMs: seq, attributes: { on } });
const online: DeviceMsg = { type: 'hub.connection', online: true, hubId: 'hub1' };
const offlineDevice = (): DeviceState =>
  run(deviceBehavior.initial(ID), { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] }).state;
const onlineDevice = (): DeviceState => run(offlineDevice(), online).state;
const sentIds = (effects: readonly DomainEffect[] | undefined): string[] =>
  (effects ?? []).flatMap((e) => (e.type === 'hub.command' ? [e.command.commandId] : []));
const depthOf = (effects: readonly DomainEffect[] | undefined): number | undefined => {
  const tell = (effects ?? []).find((e) => e.type === 'tell');
  return tell?.type === 'tell' ? (tell.msg as { depth: number }).depth : undefined;
};

describe('device command lifecycle', () => {
  it('sends a command at once when the hub is online', () => {
    const step = run(onlineDevice(), issue('c1'), 2_000);
    expect(valueOf<CommandRecord>(step.reply)).toMatchObject({
      commandId: 'c1',
      status: 'sent',
      sentAt: 2_000,
      createdAt: 2_000,
      expiresAtMs: 12_000,
    });
    expect(step.effects?.[0]).toEqual({
      type: 'hub.command',
      homeId: 'h1',
      hubId: 'hub1',
      command: { commandId: 'c1', deviceId: 'lamp', name: 'set', params: { on: true }, expiresAtMs: 12_000 },
    });
    expect(step.effects?.[1]).toMatchObject({ type: 'publish', topic: 'command.status', data: { commandId: 'c1', status: 'sent' } });
  });

  it('is idempotent by commandId: the same command again returns the first unchanged', () => {
    const first = run(onlineDevice(), issue('c1', { params: { on: true, level: 3 } }), 2_000);
    // Params in another order are the same params; a later retry keeps its ttlMs, not its expiry.
    const second = run(first.state, issue('c1', { params: { level: 3, on: true } }), 3_000);
    expect(second.reply).toEqual(first.reply);
    expect(second.journal).toBe(false);
    expect(second.effects ?? []).toEqual([]);
    expect(second.state).toBe(first.state);
  });

  it('answers idempotency_conflict, naming what differs, when a commandId is reused for another command', () => {
    const first = run(onlineDevice(), issue('c1', { params: { on: true, level: 3 } }), 2_000);
    const cases: [Partial<IssueCommand>, string][] = [
      [{ name: 'toggle', params: { on: true, level: 3 } }, 'name'],
      [{ params: { on: false, level: 3 } }, 'params'],
      [{ params: { on: true } }, 'params'],
      [{ params: { on: true, level: 3, fade: 1 } }, 'params'],
      [{ params: { on: true, level: '3' } }, 'params'],
      [{ params: { on: true, level: 3 }, ttlMs: 20_000 }, 'ttlMs'],
    ];
    for (const [over, field] of cases) {
      const step = run(first.state, issue('c1', over), 3_000);
      expect(step.reply, JSON.stringify(over)).toMatchObject({ ok: false, error: { code: 'idempotency_conflict', field } });
      expect(step.journal).toBe(false);
      expect(step.effects ?? []).toEqual([]);
      expect(step.state).toBe(first.state);
    }
    // The first command is kept as it was, and a retry of it still answers it.
    expect(valueOf<CommandRecord>(run(first.state, { type: 'command.get', commandId: 'c1' }).reply).params).toEqual({ on: true, level: 3 });
    expect(run(first.state, issue('c1', { params: { on: true, level: 3 } }), 4_000).reply).toEqual(first.reply);
  });

  it('keeps a rule command redelivered with its deterministic id idempotent, whatever asks for it again', () => {
    const fromRule = issue('lamp~r-r1-7', { depth: 2, source: { kind: 'rule', ruleId: 'r1' } });
    const first = run(onlineDevice(), fromRule, 2_000);
    expect(valueOf<CommandRecord>(first.reply)).toMatchObject({ status: 'sent', depth: 2, source: { kind: 'rule', ruleId: 'r1' } });
    const redelivered = run(first.state, fromRule, 2_500);
    expect(redelivered.reply).toEqual(first.reply);
    expect(redelivered.journal).toBe(false);
    // Who asks and at which depth is not part of the request: the same command is the same.
    const sameFromApp = run(first.state, issue('lamp~r-r1-7'), 3_000);
    expect(sameFromApp.reply).toEqual(first.reply);
    // The rule's next firing has the next id: a new command, never a conflict.
    const next = run(first.state, issue('lamp~r-r1-8', { depth: 2, source: { kind: 'rule', ruleId: 'r1' } }), 3_000);
    expect(valueOf<CommandRecord>(next.reply).commandId).toBe('lamp~r-r1-8');
  });

  it('queues while the hub is offline and sends in issue order on reconnect', () => {
    let s = offlineDevice();
    for (const id of ['9', 'b', 'a', '10']) s = run(s, issue(id)).state; // numeric-looking ids must keep issue order
    expect(Object.values(s.commands).map((c) => c.status)).toEqual(['queued', 'queued', 'queued', 'queued']);
    const step = run(s, online, 2_000);
    expect(sentIds(step.effects)).toEqual(['9', 'b', 'a', '10']);
    expect(step.journal).toBe(true);
    expect(Object.values(step.state.commands).every((c) => c.status === 'sent' && c.sentAt === 2_000)).toBe(true);
  });

  it("queues a rule's command for a device no hub has attached yet", () => {
    const step = run(deviceBehavior.initial(ID), issue('c1', { depth: 1, source: { kind: 'rule', ruleId: 'r1' } }));
    expect(valueOf<CommandRecord>(step.reply).status).toBe('queued');
  });

  it("rejects an app's command for a device no hub has announced with not_found", () => {
    const step = run(deviceBehavior.initial(ID), issue('c1'));
    expect(errorOf(step.reply).code).toBe('not_found');
    expect(step.journal).toBe(false);
  });

  it('resends sent commands without a result when the hub reconnects (the hub dedupes by id)', () => {
    let s = run(onlineDevice(), issue('c1')).state;
    s = run(s, { type: 'hub.connection', online: false }).state;
    expect(s).toMatchObject({ hubOnline: false, online: false });
    const step = run(s, online, 2_000);
    expect(sentIds(step.effects)).toEqual(['c1']);
    expect(step.state.commands.c1?.sentAt).toBe(1_000);
  });

  it('ignores a connection change from a hub the device no longer belongs to', () => {
    const s = onlineDevice();
    const step = run(s, { type: 'hub.connection', online: false, hubId: 'old-hub' });
    expect(step.state).toBe(s);
    expect(step.journal).toBe(false);
  });

  it('completes a live command as succeeded or failed, and leaves a terminal one alone', () => {
    let s = run(run(onlineDevice(), issue('ok1')).state, issue('bad1')).state;
    const okStep = run(s, result('ok1', true), 1_500);
    expect(valueOf<CommandRecord>(okStep.reply)).toMatchObject({ status: 'succeeded', completedAt: 1_500 });
    s = run(okStep.state, result('bad1', false, 'device busy'), 1_600).state;
    expect(s.commands.bad1).toMatchObject({ status: 'failed', completedAt: 1_600, error: 'device busy' });
    const late = run(s, result('bad1', true), 1_700);
    expect(valueOf<CommandRecord>(late.reply).status).toBe('failed');
    expect(late.journal).toBe(false);
    expect(late.state).toBe(s);
    expect(errorOf(run(s, result('nope', true)).reply).code).toBe('not_found');
    expect(errorOf(run(s, { type: 'command.get', commandId: 'toString' }).reply).code).toBe('not_found');
    expect(valueOf<CommandRecord>(run(s, { type: 'command.get', commandId: 'ok1' }).reply).status).toBe('succeeded');
  });

  it('keeps the result map a hub sends with its command result, and shows it on command.get', () => {
    const s = run(onlineDevice(), issue('r1')).state;
    const done = run(s, { type: 'command.result', commandId: 'r1', ok: true, result: { level: 42, applied: true, note: 'dimmed' } });
    expect(valueOf<CommandRecord>(done.reply)).toMatchObject({ status: 'succeeded', result: { level: 42, applied: true, note: 'dimmed' } });
    const got = valueOf<CommandRecord>(run(done.state, { type: 'command.get', commandId: 'r1' }).reply);
    expect(got.result).toEqual({ level: 42, applied: true, note: 'dimmed' });
    // An empty map (what a hub that sends none decodes to) records no result.
    const plain = run(s, { type: 'command.result', commandId: 'r1', ok: true, result: {} });
    expect(valueOf<CommandRecord>(plain.reply)).not.toHaveProperty('result');
  });

  it('refuses a bad result map naming the field, and leaves the command live for a good result', () => {
    const s = run(onlineDevice(), issue('r2')).state;
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
    const cases: [unknown, string][] = [
      [{ level: Number.NaN }, 'result.level'],
      [{ level: { nested: 1 } }, 'result.level'],
      [{ note: 'x'.repeat(1_025) }, 'result.note'],
      [{ ['n'.repeat(65)]: 1 }, `result.${'n'.repeat(65)}`],
      [tooMany, 'result'],
      [[1, 2], 'result'],
      ['done', 'result'],
    ];
    for (const [bad, field] of cases) {
      const step = run(s, { type: 'command.result', commandId: 'r2', ok: true, result: bad as Record<string, Value> });
      expect(errorOf(step.reply), JSON.stringify(bad).slice(0, 40)).toMatchObject({ code: 'invalid_argument', field });
      expect(step.state).toBe(s);
    }
    expect(valueOf<CommandRecord>(run(s, { type: 'command.result', commandId: 'r2', ok: true, result: { ok: 1 } }).reply).status).toBe(
      'succeeded',
    );
  });

  it('refuses a result past COMMAND_LIMITS.resultBytes of JSON naming `result`; one at the limit is kept', () => {
    const s = run(onlineDevice(), issue('r3')).state;
    // Five 1,000-character texts pass every per-value check (64 entries of 1 KB each would).
    const big = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`n${i}`, 'x'.repeat(1_000)]));
    const refused = run(s, { type: 'command.result', commandId: 'r3', ok: true, result: big });
    expect(errorOf(refused.reply)).toMatchObject({ code: 'invalid_argument', field: 'result' });
    expect(errorOf(refused.reply).message).toMatch(/^result must be at most 4096 bytes as JSON, not \d+$/);
    expect(refused.state).toBe(s);
    // Text counts in UTF-8 bytes: 1,400 × '€' (3 bytes each) is 4,200 bytes in 1,400 characters.
    const euros = run(s, { type: 'command.result', commandId: 'r3', ok: true, result: { a: '€'.repeat(1_000), b: '€'.repeat(400) } });
    expect(errorOf(euros.reply)).toMatchObject({ field: 'result' });
    // Exactly at the limit: kept.
    const exact: Record<string, Value> = { n0: 'x'.repeat(1_024), n1: 'x'.repeat(1_024), n2: 'x'.repeat(1_024), n3: '' };
    exact.n3 = 'x'.repeat(COMMAND_LIMITS.resultBytes - Buffer.byteLength(JSON.stringify(exact)));
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(COMMAND_LIMITS.resultBytes);
    expect(valueOf<CommandRecord>(run(s, { type: 'command.result', commandId: 'r3', ok: true, result: exact }).reply).result).toEqual(
      exact,
    );
  });

  it('replays a journaled result as it was decided: the result checks are not applied again', () => {
    const s = run(onlineDevice(), issue('r4')).state;
    // Journaled under older limits (or none): a result the checks of today refuse.
    const old = { type: 'command.result', commandId: 'r4', ok: true, result: { note: 'x'.repeat(5_000) } } as const;
    expect(errorOf(run(s, old).reply).field).toBe('result.note');
    const replayed = deviceBehavior.receive(s, old, { id: ID, now: 1_000, replaying: true });
    expect(valueOf<CommandRecord>(replayed.reply)).toMatchObject({ status: 'succeeded', result: { note: 'x'.repeat(5_000) } });
  });

  it('expires queued and sent commands once their TTL has passed', () => {
    let s = run(onlineDevice(), issue('sent', { ttlMs: 100 }), 1_000).state;
    s = run(s, { type: 'hub.connection', online: false }).state;
    s = run(s, issue('queued', { ttlMs: 200 }), 1_000).state;
    const early = run(s, { type: 'command.expire' }, 1_099);
    expect(valueOf<ExpireResult>(early.reply).expired).toEqual([]);
    expect(early.journal).toBe(false);
    const mid = run(s, { type: 'command.expire' }, 1_100);
    expect(valueOf<ExpireResult>(mid.reply).expired).toEqual(['sent']);
    const late = run(mid.state, { type: 'command.expire' }, 1_200);
    expect(valueOf<ExpireResult>(late.reply).expired).toEqual(['queued']);
    expect(late.state.commands.queued).toMatchObject({ status: 'expired', completedAt: 1_200 });
    expect(late.effects).toEqual([
      expect.objectContaining({ topic: 'command.status', data: expect.objectContaining({ status: 'expired' }) }),
    ]);
  });

  it('does not send expired commands on reconnect, and marks them expired', () => {
    let s = run(offlineDevice(), issue('old', { ttlMs: 100 }), 1_000).state;
    s = run(s, issue('new', { ttlMs: 10_000 }), 1_000).state;
    const step = run(s, online, 1_500);
    expect(sentIds(step.effects)).toEqual(['new']);
    expect(step.state.commands.old?.status).toBe('expired');
  });

  it('carries a rule command’s causal depth into DeviceChanged until the window closes', () => {
    let s = run(onlineDevice(), issue('r', { depth: 2, source: { kind: 'rule', ruleId: 'night-light' } }), 1_000).state;
    s = run(s, result('r', true), 2_000).state;
    expect(s.causal).toEqual({ depth: 2, untilMs: 2_000 + COMMAND_LIMITS.causalWindowMs });
    const within = run(s, report(1, true), 6_999);
    expect(depthOf(within.effects)).toBe(2);
    const after = run(within.state, report(2, false), 7_000);
    expect(depthOf(after.effects)).toBe(0);
    expect(after.state.causal).toBeUndefined();
  });

  it('opens no causal window for an app command or a failed rule command', () => {
    let s = run(onlineDevice(), issue('app')).state;
    s = run(s, issue('rule', { depth: 3, source: { kind: 'rule', ruleId: 'r' } })).state;
    s = run(run(s, result('app', true)).state, result('rule', false)).state;
    expect(s.causal).toBeUndefined();
    expect(depthOf(run(s, report(1, true)).effects)).toBe(0);
  });

  it.each([
    [issue(''), 'commandId'],
    [issue('c', { name: '' }), 'name'],
    [issue('c', { name: 'n'.repeat(65) }), 'name'],
    [issue('c', { ttlMs: 0 }), 'ttlMs'],
    [issue('c', { ttlMs: 86_400_001 }), 'ttlMs'],
    [issue('c', { ttlMs: 1.5 }), 'ttlMs'],
    [issue('c', { params: { level: Number.NaN } }), 'params.level'],
    [issue('c', { depth: -1 }), 'depth'],
    [issue('c', { source: { kind: 'rule', ruleId: '' } }), 'source.ruleId'],
    [issue('__proto__'), 'commandId'],
  ] as [DeviceMsg, string][])('rejects an invalid command naming the field (%#: %s)', (msg, field) => {
    const step = run(onlineDevice(), msg);
    expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field });
    expect(step.journal).toBe(false);
  });

  it('keeps at most 100 commands, dropping the oldest terminal ones first', () => {
    let s = onlineDevice();
    s = run(s, issue('live', { ttlMs: 86_400_000 })).state;
    for (let i = 0; i < 120; i++) {
      s = run(s, issue(`c${i}`)).state;
      s = run(s, result(`c${i}`, true)).state;
    }
    const ids = Object.keys(s.commands);
    expect(ids).toHaveLength(COMMAND_LIMITS.history);
    expect(ids).toContain('live');
    expect(ids).not.toContain('c20'); // live + c0..c119 = 121: the 21 oldest terminal ones went
    expect(ids).toContain('c21');
    expect(ids).toContain('c119');
  });

  it('refuses a new command when 100 are already pending', () => {
    let s = offlineDevice();
    for (let i = 0; i < COMMAND_LIMITS.history; i++) s = run(s, issue(`q${i}`)).state;
    const step = run(s, issue('one-more'));
    expect(errorOf(step.reply).code).toBe('failed_precondition');
    expect(Object.keys(step.state.commands)).toHaveLength(COMMAND_LIMITS.history);
  });
});
