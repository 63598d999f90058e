/** Unit tests of the hub actor: hello/attach, sessions across nodes, durable seq, validation. */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import { errorOf } from '../support/outcome.ts';
import { HUB_LIMITS, hubBehavior, RETIRED_SECRETS_KEPT } from '../../actors/hub.ts';
import type { HubDevice, HubHello, HubMsg, HubState } from '../../actors/hub.ts';
import { hubActorId } from '../../actors/actor-id.ts';
import type { DomainEffect } from '../../actors/types.ts';

const ID = hubActorId('h1', 'hub1');
const run = (s: HubState, msg: HubMsg, now = 1_000) => hubBehavior.receive(s, msg, { id: ID, now, replaying: false });
const dev = (deviceId: string, type = 'light'): HubDevice => ({ deviceId, type, capabilities: ['on'] });
const hello = (devices: HubDevice[], nodeId = 'node-a'): HubHello => ({ type: 'hub.hello', devices, nodeId });
const tells = (effects: readonly DomainEffect[] | undefined): [string, unknown][] =>
  (effects ?? []).flatMap((e) => (e.type === 'tell' ? [[e.to, e.msg] as [string, unknown]] : []));

describe('hubBehavior', () => {
  it('parses homeId and hubId from its id', () => {
    expect(hubBehavior.initial(ID)).toEqual({ homeId: 'h1', hubId: 'hub1', devices: [], connected: false, lastDurableSeq: 0 });
    expect(() => hubBehavior.initial('device:h1:d1')).toThrow(/not a hub actor id/);
  });

  it('attaches every listed device, opens its connection and replies where to resume', () => {
    const s0 = { ...hubBehavior.initial(ID), lastDurableSeq: 41 };
    const step = run(s0, hello([dev('lamp'), dev('door', 'contact_sensor')]), 5_000);
    expect(step.reply).toEqual({ ok: true, value: { lastDurableSeq: 41 } });
    expect(step.journal).toBe(true);
    expect(step.state).toMatchObject({ devices: ['lamp', 'door'], connected: true, connectedAt: 5_000, sessionNode: 'node-a' });
    expect(tells(step.effects)).toEqual([
      ['device:h1:lamp', { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'], hubIncarnation: 0 }],
      ['device:h1:lamp', { type: 'hub.connection', online: true, hubId: 'hub1' }],
      ['home:h1', { type: 'device.attached', deviceId: 'lamp', deviceType: 'light', hubId: 'hub1' }],
      ['device:h1:door', { type: 'device.attach', hubId: 'hub1', deviceType: 'contact_sensor', capabilities: ['on'], hubIncarnation: 0 }],
      ['device:h1:door', { type: 'hub.connection', online: true, hubId: 'hub1' }],
      ['home:h1', { type: 'device.attached', deviceId: 'door', deviceType: 'contact_sensor', hubId: 'hub1' }],
    ]);
  });

  it('tells a device the hub no longer lists that its connection closed', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp'), dev('old')])).state;
    const step = run(s1, hello([dev('lamp')], 'node-b'));
    expect(tells(step.effects)).toContainEqual(['device:h1:old', { type: 'hub.connection', online: false, hubId: 'hub1' }]);
    expect(step.state.devices).toEqual(['lamp']);
  });

  it('closes the session on disconnect from the node that holds it', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp')])).state;
    const step = run(s1, { type: 'hub.disconnect', nodeId: 'node-a' });
    expect(step.reply).toEqual({ ok: true, value: { connected: false } });
    expect(step.state.connected).toBe(false);
    expect(step.state.sessionNode).toBeUndefined();
    expect(tells(step.effects)).toEqual([['device:h1:lamp', { type: 'hub.connection', online: false, hubId: 'hub1' }]]);
    expect(run(step.state, { type: 'hub.disconnect' }).journal).toBe(false);
  });

  it('ignores a disconnect from another node after the hub reconnected elsewhere', () => {
    let s = run(hubBehavior.initial(ID), hello([dev('lamp')], 'node-a')).state;
    s = run(s, hello([dev('lamp')], 'node-b')).state;
    const step = run(s, { type: 'hub.disconnect', nodeId: 'node-a' });
    expect(step.reply).toEqual({ ok: true, value: { connected: true } });
    expect(step.state).toBe(s);
    expect(step.journal).toBe(false);
    expect(step.effects ?? []).toEqual([]);
  });

  it('never moves the durable seq backwards and journals only when it moves', () => {
    const s0 = run(hubBehavior.initial(ID), hello([dev('lamp')], 'n')).state;
    const up = run(s0, { type: 'hub.durable', upToSeq: 10, nodeId: 'n' });
    expect(up).toMatchObject({ journal: true, reply: { ok: true, value: { lastDurableSeq: 10 } } });
    const back = run(up.state, { type: 'hub.durable', upToSeq: 7, nodeId: 'n' });
    expect(back).toMatchObject({ journal: false, reply: { ok: true, value: { lastDurableSeq: 10 } } });
    expect(back.state).toBe(up.state);
    expect(run(back.state, { type: 'hub.hello', devices: [], nodeId: 'n' }).reply).toEqual({ ok: true, value: { lastDurableSeq: 10 } });
  });

  it('reads its state with hub.get without journaling', () => {
    const s1 = run(hubBehavior.initial(ID), hello([dev('lamp')])).state;
    const step = run(s1, { type: 'hub.get' });
    expect(step).toMatchObject({ journal: false, reply: { ok: true, value: { hubId: 'hub1', connected: true, devices: ['lamp'] } } });
  });

  it.each([
    [hello([dev('a'), dev('b'), dev('c'), dev('')]), 'devices[3].deviceId'],
    [hello([dev('a'), dev('x'.repeat(129))]), 'devices[1].deviceId'],
    [hello([dev('a'), dev('b'), dev('a')]), 'devices[2].deviceId'],
    [hello([dev('a', '')]), 'devices[0].type'],
    [hello([{ deviceId: 'a', type: 't', capabilities: [1 as unknown as string] }]), 'devices[0].capabilities[0]'],
    [hello(Array.from({ length: 1001 }, (_, i) => dev(`d${i}`))), 'devices'],
    [hello([dev('a')], ''), 'nodeId'],
    [{ type: 'hub.durable', upToSeq: -1, nodeId: 'n' }, 'upToSeq'],
    [{ type: 'hub.durable', upToSeq: 2.5, nodeId: 'n' }, 'upToSeq'],
    [{ type: 'hub.durable', upToSeq: 2 }, 'nodeId'],
    [{ ...hello([dev('a')]), sessionId: '' }, 'sessionId'],
  ] as [HubMsg, string][])('rejects invalid input naming the field (%#: %s)', (msg, field) => {
    const s0 = hubBehavior.initial(ID);
    const step = run(s0, msg);
    expect(errorOf(step.reply)).toMatchObject({ code: 'invalid_argument', field });
    expect(step.state).toBe(s0);
    expect(step.journal).toBe(false);
  });

  it('takes the durable cursor only from the node of its current session: a forged or stale one is refused', () => {
    const s0 = { ...hubBehavior.initial(ID), lastDurableSeq: 5 };
    // No session at all: nobody may move the cursor.
    const none = run(s0, { type: 'hub.durable', upToSeq: Number.MAX_SAFE_INTEGER, nodeId: 'node-a' });
    expect(errorOf(none.reply)).toMatchObject({ code: 'failed_precondition', field: 'nodeId' });
    expect(none.state).toBe(s0);
    const s1 = run(s0, { ...hello([dev('lamp')], 'node-b'), sessionId: 'b1' }).state;
    // Another node (a forged peer message, or the node of a superseded stream).
    const forged = run(s1, { type: 'hub.durable', upToSeq: Number.MAX_SAFE_INTEGER, nodeId: 'node-a' });
    expect(errorOf(forged.reply)).toMatchObject({
      code: 'failed_precondition',
      message: expect.stringMatching(/node node-a refused.*node-b/),
    });
    expect(forged.state).toBe(s1);
    expect(forged.journal).toBe(false);
    expect(run(s1, { type: 'hub.durable', upToSeq: 9, nodeId: 'node-b' }).state.lastDurableSeq).toBe(9);
  });

  it('supersedes a session open on another node: its end is an effect naming that node and session only', () => {
    const s1 = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' }).state;
    const step = run(s1, { ...hello([dev('lamp')], 'node-b'), sessionId: 'b1' });
    expect(step.state).toMatchObject({ connected: true, sessionNode: 'node-b', sessionId: 'b1' });
    expect((step.effects ?? []).filter((e) => e.type === 'hub.session.end')).toEqual([
      { type: 'hub.session.end', homeId: 'h1', hubId: 'hub1', nodeId: 'node-a', sessionId: 'a1', reason: 'superseded' },
    ]);
    // The older session's late disconnect changes nothing.
    const late = run(step.state, { type: 'hub.disconnect', nodeId: 'node-a', sessionId: 'a1' });
    expect(late.state).toBe(step.state);
    // A reconnect to the same node ends the older stream there too (the ingress does it at once; the effect is idempotent).
    const again = run(step.state, { ...hello([dev('lamp')], 'node-b'), sessionId: 'b2' });
    expect((again.effects ?? []).filter((e) => e.type === 'hub.session.end')).toEqual([
      { type: 'hub.session.end', homeId: 'h1', hubId: 'hub1', nodeId: 'node-b', sessionId: 'b1', reason: 'superseded' },
    ]);
    // ...and then the older stream's disconnect on the same node is stale as well.
    const stale = run(again.state, { type: 'hub.disconnect', nodeId: 'node-b', sessionId: 'b1' });
    expect(stale.state).toBe(again.state);
    expect(run(again.state, { type: 'hub.disconnect', nodeId: 'node-b', sessionId: 'b2' }).state.connected).toBe(false);
  });

  it('does not supersede anything on a first hello or after a disconnect', () => {
    const s1 = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' });
    expect((s1.effects ?? []).some((e) => e.type === 'hub.session.end')).toBe(false);
    const off = run(s1.state, { type: 'hub.disconnect', nodeId: 'node-a', sessionId: 'a1' }).state;
    expect(off).not.toHaveProperty('sessionId');
    const s2 = run(off, { ...hello([dev('lamp')], 'node-b'), sessionId: 'b1' });
    expect((s2.effects ?? []).some((e) => e.type === 'hub.session.end')).toBe(false);
  });

  it('hub.remove ends the open session with reason removed and records the hub disconnected', () => {
    const s1 = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' }).state;
    const step = run(s1, { type: 'hub.remove' });
    expect(step.reply).toEqual({ ok: true, value: { removed: true } });
    expect(step.journal).toBe(true);
    expect(step.state).toMatchObject({ connected: false });
    expect(step.state).not.toHaveProperty('sessionNode');
    expect(step.effects).toEqual([
      { type: 'hub.session.end', homeId: 'h1', hubId: 'hub1', nodeId: 'node-a', sessionId: 'a1', reason: 'removed' },
      { type: 'tell', to: 'device:h1:lamp', msg: { type: 'hub.connection', online: false, hubId: 'hub1' } },
    ]);
    // Without a session there is nothing to end.
    const again = run(step.state, { type: 'hub.remove' });
    expect(again).toMatchObject({ journal: false, reply: { ok: true, value: { removed: true } } });
    expect(again.effects ?? []).toEqual([]);
  });

  it('hub.remove erases the hub: a hello is refused until hub.registered starts it afresh at cursor 0', () => {
    let s = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' }).state;
    s = run(s, { type: 'hub.durable', upToSeq: 40, nodeId: 'node-a' }).state;
    const removed = run(s, { type: 'hub.remove' }).state;
    expect(removed).toEqual({ homeId: 'h1', hubId: 'hub1', devices: [], connected: false, lastDurableSeq: 0, removed: true });
    const refused = run(removed, { ...hello([dev('lamp')], 'node-b'), sessionId: 'b1', credentialId: 'hc_1' });
    expect(errorOf(refused.reply)).toMatchObject({ code: 'not_found', field: 'credentialId', message: 'hub hub1 of home h1 was removed' });
    expect(refused.state).toBe(removed);
    expect(refused.effects ?? []).toEqual([]); // no device.attach revives a removed device
    const fresh = run(removed, { type: 'hub.registered' });
    expect(fresh).toMatchObject({ journal: true, reply: { ok: true, value: { registered: true } } });
    // Afresh, as its next incarnation.
    expect(fresh.state).toEqual({ ...hubBehavior.initial(ID), incarnation: 1 });
    expect(run(fresh.state, hello([dev('lamp')], 'node-b')).reply).toEqual({ ok: true, value: { lastDurableSeq: 0 } });
  });

  it('counts its incarnations through removals and tells every attached device which one serves it', () => {
    const attachOf = (s: HubState) =>
      tells(run(s, { ...hello([dev('lamp')], 'node-a'), sessionId: 'x' }).effects).find(
        ([, m]) => (m as { type: string }).type === 'device.attach',
      );
    let s = hubBehavior.initial(ID);
    expect(attachOf(s)).toEqual([
      'device:h1:lamp',
      { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'], hubIncarnation: 0 },
    ]);
    for (const incarnation of [1, 2]) {
      s = run(run(s, { type: 'hub.remove' }).state, { type: 'hub.registered' }).state;
      expect(s.incarnation).toBe(incarnation);
      expect(attachOf(s)?.[1]).toMatchObject({ hubIncarnation: incarnation });
    }
    // The removal keeps the count (a registration anew goes on from it); a plain reconnect does not move it.
    const removed = run(s, { type: 'hub.remove' }).state;
    expect(removed).toMatchObject({ removed: true, incarnation: 2 });
    const reconnected = run(run(s, hello([dev('lamp')], 'node-a')).state, hello([dev('lamp')], 'node-b')).state;
    expect(reconnected.incarnation).toBe(2);
    expect(run(reconnected, { type: 'hub.registered' }).state).toBe(reconnected);
  });

  it('hub.remove of a disconnected hub still erases its cursor; hub.registered of a hub not removed keeps its session', () => {
    let s = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' }).state;
    s = run(s, { type: 'hub.durable', upToSeq: 7, nodeId: 'node-a' }).state;
    // A new hub's first hello may come before its registration's hub.registered.
    const reg = run(s, { type: 'hub.registered' });
    expect(reg).toMatchObject({ journal: false, state: s, reply: { ok: true, value: { registered: true } } });
    expect(reg.effects ?? []).toEqual([]);
    const off = run(run(s, { type: 'hub.disconnect', nodeId: 'node-a', sessionId: 'a1' }).state, { type: 'hub.remove' });
    expect(off).toMatchObject({ journal: true, state: { lastDurableSeq: 0, devices: [], removed: true } });
    expect(off.effects ?? []).toEqual([]);
  });

  describe('secret rotation', () => {
    const OLD = 'hc_old';
    const NEW = 'hc_new';
    const open = (credentialId = OLD) =>
      run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1', credentialId }, 1_000).state;
    const ends = (effects: readonly DomainEffect[] | undefined) => (effects ?? []).filter((e) => e.type === 'hub.session.end');

    it('ends the session on a retired secret at the end of the grace period (at once without grace)', () => {
      const s = open();
      expect(s.sessionCredential).toBe(OLD);
      const now = run(s, { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 2_000 }, 2_000);
      expect(now.journal).toBe(true);
      expect(ends(now.effects)).toEqual([
        { type: 'hub.session.end', homeId: 'h1', hubId: 'hub1', nodeId: 'node-a', sessionId: 'a1', reason: 'secret_retired', at: 2_000 },
      ]);
      const later = run(s, { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 60_000 }, 2_000);
      expect(later.reply).toEqual({ ok: true, value: { sessionValidUntil: 60_000 } });
      expect(ends(later.effects)).toMatchObject([{ reason: 'secret_retired', at: 60_000 }]);
      // A second rotation may shorten the grace, never lengthen it.
      const shorter = run(later.state, { type: 'hub.secretRotated', keep: ['hc_newer'], othersValidUntil: 30_000 }, 3_000);
      expect(ends(shorter.effects)).toMatchObject([{ at: 30_000 }]);
      const longer = run(shorter.state, { type: 'hub.secretRotated', keep: ['hc_newest'], othersValidUntil: 90_000 }, 4_000);
      expect(ends(longer.effects)).toEqual([]);
      expect(longer.state.sessionValidUntil).toBe(30_000);
    });

    it('leaves a session on the kept secret alone, and treats one whose node did not say its secret as retired', () => {
      const kept = run(open(NEW), { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 2_000 }, 2_000);
      expect(ends(kept.effects)).toEqual([]);
      expect(kept.state.sessionValidUntil).toBeUndefined();
      const unknown = run(hubBehavior.initial(ID), { ...hello([dev('lamp')], 'node-a'), sessionId: 'a1' }).state;
      expect(ends(run(unknown, { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 2_000 }, 2_000).effects)).toHaveLength(1);
    });

    it('refuses a hello on a secret past its grace, and tells one within it when its secret stops', () => {
      const rotated = run(hubBehavior.initial(ID), { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 5_000 }, 1_000).state;
      const within = run(rotated, { ...hello([dev('lamp')]), sessionId: 'a1', credentialId: OLD }, 4_000);
      expect(within.reply).toEqual({ ok: true, value: { lastDurableSeq: 0, validUntil: 5_000 } });
      expect(within.state.sessionValidUntil).toBe(5_000);
      const past = run(rotated, { ...hello([dev('lamp')]), sessionId: 'a2', credentialId: OLD }, 5_000);
      expect(errorOf(past.reply)).toMatchObject({ code: 'failed_precondition', field: 'credentialId' });
      expect(past.state).toBe(rotated);
      // A node of an older release does not say the secret: it checked it at connect.
      expect(run(rotated, { ...hello([dev('lamp')]), sessionId: 'a4' }, 9_000).reply).toEqual({ ok: true, value: { lastDurableSeq: 0 } });
      expect(run(rotated, { ...hello([dev('lamp')]), sessionId: 'a3', credentialId: NEW }, 9_000).reply).toEqual({
        ok: true,
        value: { lastDurableSeq: 0 },
      });
    });

    it.each([
      [{ type: 'hub.secretRotated', keep: [], othersValidUntil: 1 }, 'keep'],
      [{ type: 'hub.secretRotated', keep: 'hc_new', othersValidUntil: 1 }, 'keep'],
      [{ type: 'hub.secretRotated', keep: [NEW], othersValidUntil: -1 }, 'othersValidUntil'],
      [{ ...hello([dev('a')]), credentialId: '' }, 'credentialId'],
    ] as [HubMsg, string][])('rejects an invalid rotation or credential id (%#: %s)', (msg, field) => {
      expect(errorOf(run(hubBehavior.initial(ID), msg).reply)).toMatchObject({ code: 'invalid_argument', field });
    });

    it('a removed hub ignores a rotation', () => {
      const removed = run(open(), { type: 'hub.remove' }).state;
      const step = run(removed, { type: 'hub.secretRotated', keep: [NEW], othersValidUntil: 1 });
      expect(step).toMatchObject({ journal: false, state: removed });
      expect(run(removed, { type: 'hub.secretRotated', retire: [OLD], until: 1 })).toMatchObject({ journal: false, state: removed });
    });
  });

  describe('secret rotation naming the secrets it retires', () => {
    const A = 'hc_a';
    const B = 'hc_b';
    const C = 'hc_c';
    const retire = (ids: string[], until: number): HubMsg => ({ type: 'hub.secretRotated', retire: ids, until });
    const helloOn = (credentialId: string | undefined, sessionId = 's1'): HubHello => ({
      ...hello([dev('lamp')], 'node-a'),
      sessionId,
      ...(credentialId === undefined ? {} : { credentialId }),
    });
    const ends = (effects: readonly DomainEffect[] | undefined) => (effects ?? []).filter((e) => e.type === 'hub.session.end');
    const REFUSED = { code: 'failed_precondition', field: 'credentialId' };

    it('accepts a hello on a new secret before its rotation reaches the hub actor (the store holds it already)', () => {
      // Rotation 1 retired A for B; rotation 2 stored C, and the hub connects with C before the home tells the actor.
      const s = run(hubBehavior.initial(ID), retire([A], 1_000), 500).state;
      expect(run(s, helloOn(C), 5_000).reply).toEqual({ ok: true, value: { lastDurableSeq: 0 } });
      expect(run(s, helloOn(B), 5_000).reply).toEqual({ ok: true, value: { lastDurableSeq: 0 } });
      expect(errorOf(run(s, helloOn(A), 5_000).reply)).toMatchObject(REFUSED);
      expect(run(s, helloOn(A), 999).reply).toEqual({ ok: true, value: { lastDurableSeq: 0, validUntil: 1_000 } });
    });

    it('keeps both new secrets of two racing rotations: each retires only what existed before it', () => {
      // Both read [A] before either stored its own (B, then C); the hub actor hears of both.
      let s = run(hubBehavior.initial(ID), retire([A], 2_000), 1_000).state;
      s = run(s, retire([A], 2_000), 1_001).state;
      for (const id of [B, C]) expect(run(s, helloOn(id), 9_000).reply).toEqual({ ok: true, value: { lastDurableSeq: 0 } });
      expect(errorOf(run(s, helloOn(A), 9_000).reply)).toMatchObject(REFUSED);
      expect(s.retiredSecrets).toEqual([{ credentialId: A, until: 2_000 }]);
    });

    it("ends a session on a retired secret at the rotation's end, and leaves one on another secret open", () => {
      const onA = run(hubBehavior.initial(ID), helloOn(A), 1_000).state;
      const step = run(onA, retire([A], 60_000), 2_000);
      expect(step.reply).toEqual({ ok: true, value: { sessionValidUntil: 60_000 } });
      expect(ends(step.effects)).toEqual([
        { type: 'hub.session.end', homeId: 'h1', hubId: 'hub1', nodeId: 'node-a', sessionId: 's1', reason: 'secret_retired', at: 60_000 },
      ]);
      expect(step.state.sessionValidUntil).toBe(60_000);
      const onC = run(hubBehavior.initial(ID), helloOn(C), 1_000).state;
      const other = run(onC, retire([A, B], 2_000), 2_000);
      expect(ends(other.effects)).toEqual([]);
      expect(other.reply).toEqual({ ok: true, value: {} });
      expect(other.state.sessionValidUntil).toBeUndefined();
      // A session whose node did not say its secret counts as on a retired one: it reconnects and says.
      const unsaid = run(hubBehavior.initial(ID), helloOn(undefined), 1_000).state;
      expect(ends(run(unsaid, retire([A], 3_000), 2_000).effects)).toMatchObject([{ at: 3_000 }]);
    });

    it("lets a later rotation shorten a retired secret's end, never extend it", () => {
      const onA = run(hubBehavior.initial(ID), helloOn(A), 1_000).state;
      const first = run(onA, retire([A], 60_000), 2_000).state;
      const shorter = run(first, retire([A, B], 30_000), 3_000);
      expect(ends(shorter.effects)).toMatchObject([{ at: 30_000 }]);
      const longer = run(shorter.state, retire([A, B, C], 90_000), 4_000);
      expect(ends(longer.effects)).toEqual([]);
      expect(longer.state.sessionValidUntil).toBe(30_000);
      expect(longer.state.retiredSecrets).toEqual([
        { credentialId: A, until: 30_000 },
        { credentialId: B, until: 30_000 },
        { credentialId: C, until: 90_000 },
      ]);
      expect(errorOf(run(longer.state, helloOn(A, 's2'), 30_000).reply)).toMatchObject(REFUSED);
    });

    it(`remembers the newest ${RETIRED_SECRETS_KEPT} retired secrets`, () => {
      let s = hubBehavior.initial(ID);
      for (let i = 0; i < RETIRED_SECRETS_KEPT + 4; i++) s = run(s, retire([`hc_${i}`], 1_000 + i), 1_000).state;
      expect(s.retiredSecrets).toHaveLength(RETIRED_SECRETS_KEPT);
      expect(s.retiredSecrets?.[0]).toEqual({ credentialId: 'hc_4', until: 1_004 });
      expect(errorOf(run(s, helloOn('hc_4'), 5_000).reply)).toMatchObject(REFUSED);
      // A secret named again moves to the newest place (and keeps its earlier end).
      s = run(s, retire(['hc_4'], 9_000), 2_000).state;
      expect(s.retiredSecrets?.at(-1)).toEqual({ credentialId: 'hc_4', until: 1_004 });
      // hc_0 was dropped: the credential store, which the ingress asks again before the hello, ended it.
      expect(run(s, helloOn('hc_0'), 5_000).reply).toMatchObject({ ok: true });
    });

    it('replaces a rotation of the older shape, which would refuse the new secret', () => {
      const older = run(hubBehavior.initial(ID), { type: 'hub.secretRotated', keep: [B], othersValidUntil: 1_000 }, 500).state;
      expect(errorOf(run(older, helloOn(C), 5_000).reply)).toMatchObject(REFUSED);
      const s = run(older, retire([B], 2_000), 600).state;
      expect(s.secrets).toBeUndefined();
      expect(run(s, helloOn(C), 5_000).reply).toMatchObject({ ok: true });
      expect(errorOf(run(s, helloOn(B), 5_000).reply)).toMatchObject(REFUSED);
    });

    it(`accepts a rotation naming ${HUB_LIMITS.retiredPerRotation} secrets`, () => {
      const ids = Array.from({ length: HUB_LIMITS.retiredPerRotation }, (_, i) => `hc_${i}`);
      const onFirst = run(hubBehavior.initial(ID), helloOn('hc_0'), 1_000).state;
      const step = run(onFirst, retire(ids, 2_000), 1_500);
      expect(step.reply).toEqual({ ok: true, value: { sessionValidUntil: 2_000 } });
      expect(step.state.retiredSecrets).toHaveLength(RETIRED_SECRETS_KEPT);
    });

    it.each([
      [{ type: 'hub.secretRotated', retire: 'hc_a', until: 1 }, 'retire'],
      [{ type: 'hub.secretRotated', retire: [''], until: 1 }, 'retire[0]'],
      [{ type: 'hub.secretRotated', retire: Array.from({ length: 1001 }, (_, i) => `hc_${i}`), until: 1 }, 'retire'],
      [{ type: 'hub.secretRotated', retire: [A], until: -1 }, 'until'],
      [{ type: 'hub.secretRotated', retire: [A] }, 'until'],
      [{ type: 'hub.secretRotated' }, 'retire'],
    ] as unknown as [HubMsg, string][])('rejects an invalid rotation (%#: %s)', (msg, field) => {
      expect(errorOf(run(hubBehavior.initial(ID), msg).reply)).toMatchObject({ code: 'invalid_argument', field });
    });
  });

  it('accepts 1000 devices', () => {
    const step = run(hubBehavior.initial(ID), hello(Array.from({ length: 1000 }, (_, i) => dev(`d${i}`))));
    expect(step.state.devices).toHaveLength(1000);
  });
});

/** A hub host whose store holds `journal` for hub:h1:hub1, as an older release wrote it. */
async function recoveredFrom(journal: readonly unknown[]): Promise<ActorHost> {
  const store = new MemoryStore();
  const events = journal.map((msg, i) => ({ seq: i + 1, at: 1_000 + i, msg }));
  await store.commit(0, [{ actorId: ID, batch: { events } }]);
  const host = new ActorHost({ behaviors: [hubBehavior], store, logger: silentLogger, registry: new Registry(), onEffects: () => {} });
  hosts.push(host);
  return host;
}
const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

describe('hubBehavior: replaying a journal written by an older release', () => {
  it('keeps the durable cursor of entries without nodeId, and of one from a node that had lost the session', async () => {
    const host = await recoveredFrom([
      // Before session ids and before hub.durable named its node.
      { type: 'hub.hello', devices: [dev('lamp')], nodeId: 'node-a' },
      { type: 'hub.durable', upToSeq: 10 },
      { type: 'hub.hello', devices: [dev('lamp')], nodeId: 'node-b' },
      // A late cursor from node-a, which no longer held the session: accepted then.
      { type: 'hub.durable', upToSeq: 25, nodeId: 'node-a' },
      { type: 'hub.disconnect', nodeId: 'node-b' },
      { type: 'hub.durable', upToSeq: 31 },
    ]);
    const r = await host.ask(ID, { type: 'hub.get' });
    expect(r).toMatchObject({ ok: true, value: { ok: true, value: { lastDurableSeq: 31, connected: false, devices: ['lamp'] } } });
    expect(r).not.toMatchObject({ value: { value: { sessionNode: expect.anything() } } });
    // A live one is still checked.
    const live = await host.ask(ID, { type: 'hub.durable', upToSeq: 99 });
    expect(live).toMatchObject({ ok: true, value: { ok: false, error: { code: 'invalid_argument', field: 'nodeId' } } });
  });

  it('replays a rotation of the older shape (keep, othersValidUntil) as it was decided, until one naming what it retires', async () => {
    const host = await recoveredFrom([
      { type: 'hub.hello', devices: [dev('lamp')], nodeId: 'node-a', sessionId: 's1', credentialId: 'hc_old' },
      { type: 'hub.secretRotated', keep: ['hc_new'], othersValidUntil: 1_005 },
    ]);
    const get = async () => ((await host.ask(ID, { type: 'hub.get' })) as { value: { value: HubState } }).value.value;
    expect(await get()).toMatchObject({
      connected: true,
      sessionCredential: 'hc_old',
      sessionValidUntil: 1_005,
      secrets: { keep: ['hc_new'], othersValidUntil: 1_005 },
    });
    const helloOn = (credentialId: string, sessionId: string) => ({ ...hello([dev('lamp')], 'node-b'), sessionId, credentialId });
    // Live, the older rule holds: every secret but hc_new stopped at 1005.
    expect(await host.ask(ID, helloOn('hc_other', 's2'))).toMatchObject({
      ok: true,
      value: { ok: false, error: { code: 'failed_precondition', field: 'credentialId' } },
    });
    expect(await host.ask(ID, { type: 'hub.secretRotated', retire: ['hc_new'], until: 1_006 })).toMatchObject({
      ok: true,
      value: { ok: true },
    });
    expect(await get()).not.toHaveProperty('secrets');
    expect(await host.ask(ID, helloOn('hc_other', 's3'))).toMatchObject({ ok: true, value: { ok: true } });
  });
});
