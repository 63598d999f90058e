import { describe, expect, it } from 'vitest';
import { createHomeBehavior, homeBehavior } from '../../actors/home.ts';
import type { HomeMsg, HomeReplies, HomeState } from '../../actors/home-messages.ts';
import type { DeviceChanged, DomainEffect, IssueCommand, Value } from '../../actors/types.ts';
import { mulberry32, pick, randomInt } from '../support/prng.ts';

const NIGHT = Date.parse('2024-01-15T22:30:00Z'); // 23:30 in Berlin, 17:30 in New York
const DAY = Date.parse('2024-01-15T11:00:00Z'); // 12:00 in Berlin

type Behavior = typeof homeBehavior;

function deepFreeze<T>(x: T): T {
  if (typeof x === 'object' && x !== null && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}

/** One reducer call on a frozen state: any mutation of the input throws. */
function send(s: HomeState, msg: HomeMsg, now = NIGHT, b: Behavior = homeBehavior) {
  return b.receive(deepFreeze(s), msg, { id: 'home:h1', now, replaying: false });
}

function okValue<K extends keyof HomeReplies>(_type: K, step: { reply?: unknown }): HomeReplies[K] {
  const reply = step.reply as { ok: boolean; value?: unknown; error?: unknown };
  expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true });
  return reply.value as HomeReplies[K];
}

function errorOf(step: { reply?: unknown }) {
  const reply = step.reply as { ok: boolean; error?: { code: string; field?: string; message: string } };
  expect(reply.ok).toBe(false);
  return reply.error!;
}

function setup(timezone = 'Europe/Berlin', b: Behavior = homeBehavior): HomeState {
  return send(b.initial('home:h1'), { type: 'home.upsert', name: 'Flat', timezone }, NIGHT, b).state;
}

function put(s: HomeState, rule: unknown, b: Behavior = homeBehavior): HomeState {
  const step = send(s, { type: 'rules.put', rule }, NIGHT, b);
  okValue('rules.put', step);
  return step.state;
}

/** A change from a device that applies its home's watch (the usual case); `filtered: undefined` for one that does not. */
function change(deviceId: string, changed: Record<string, Value>, over: Partial<DeviceChanged> = {}): DeviceChanged {
  return {
    type: 'device.changed',
    deviceId,
    deviceType: 'sensor',
    changed,
    attributes: changed,
    depth: 0,
    tsMs: NIGHT,
    filtered: true,
    ...over,
  };
}

const tells = (effects: readonly DomainEffect[] = []) =>
  effects.flatMap((e) => (e.type === 'tell' ? [{ to: e.to, msg: e.msg as IssueCommand }] : []));
const ofType = <T extends DomainEffect['type']>(effects: readonly DomainEffect[] = [], type: T) =>
  effects.filter((e): e is Extract<DomainEffect, { type: T }> => e.type === type);

const motionRule = {
  id: 'motion-light',
  name: 'Hall light on motion at night',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [
    { device: 'motion1', attribute: 'illuminance', op: '<', value: 50 },
    { type: 'time', after: '18:00', before: '06:00' },
  ],
  then: [
    { type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } },
    { type: 'notify', message: 'Hall light on' },
  ],
};

const motion = (depth = 0) => change('motion1', { motion: true }, { attributes: { motion: true, illuminance: 12 }, depth });

describe('home: settings and hubs', () => {
  it('parses its homeId from its id and refuses an id of another kind', () => {
    expect(homeBehavior.initial('home:h.1-x').homeId).toBe('h.1-x');
    expect(() => homeBehavior.initial('device:h1:d1')).toThrow(/not a home actor id/);
    expect(() => homeBehavior.initial('h1')).toThrow(/not a home actor id/);
  });

  it('is not found until created, then summarises itself', () => {
    const s0 = homeBehavior.initial('home:h1');
    expect(errorOf(send(s0, { type: 'home.get' })).code).toBe('not_found');
    const created = send(s0, { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' });
    expect(created.journal).toBe(true);
    expect(okValue('home.upsert', created).created).toBe(true);
    const again = send(created.state, { type: 'home.upsert', name: 'Flat', timezone: 'Europe/Berlin' });
    expect(again.journal).toBe(false);
    expect(okValue('home.upsert', again).created).toBe(false);
    expect(okValue('home.get', send(created.state, { type: 'home.get' }))).toEqual({
      homeId: 'h1',
      name: 'Flat',
      timezone: 'Europe/Berlin',
      devices: [],
      hubs: [],
      ruleCount: 0,
      sceneCount: 0,
    });
  });

  it('lets a home that was never written leave memory after answering not_found, and keeps every other', () => {
    const s0 = homeBehavior.initial('home:h1');
    const unknown = send(s0, { type: 'home.get' });
    expect(errorOf(unknown).code).toBe('not_found');
    expect(unknown.passivate).toBe(true);
    expect(send(s0, { type: 'rules.list' }).passivate).toBe(true);
    // Not created, but a device told it of itself: that is state to keep.
    const told = send(s0, { type: 'device.attached', deviceId: 'd1', deviceType: 'light', hubId: 'hub1' }).state;
    expect(send(told, { type: 'home.get' }).passivate).toBeFalsy();
    expect(send(setup(), { type: 'home.get' }).passivate).toBeFalsy();
  });

  it('validates name and time zone, naming the field', () => {
    const s0 = homeBehavior.initial('home:h1');
    expect(errorOf(send(s0, { type: 'home.upsert', name: '', timezone: 'UTC' })).field).toBe('name');
    expect(errorOf(send(s0, { type: 'home.upsert', name: 'x'.repeat(129), timezone: 'UTC' })).field).toBe('name');
    expect(errorOf(send(s0, { type: 'home.upsert', name: 'Flat', timezone: 'Berlin/Mitte' })).field).toBe('timezone');
    expect(okValue('home.upsert', send(s0, { type: 'home.upsert', name: 'Flat' })).home.timezone).toBe('UTC');
  });

  it('registers hubs once and lists them', () => {
    const s = setup();
    const reg = send(s, { type: 'home.registerHub', hubId: 'hub-1', secretHash: 'sha256:abc' }, 5);
    expect(okValue('home.registerHub', reg)).toEqual({ hubId: 'hub-1', secretHash: 'sha256:abc', createdAt: 5 });
    expect(errorOf(send(reg.state, { type: 'home.registerHub', hubId: 'hub-1', secretHash: 'x' })).code).toBe('already_exists');
    expect(errorOf(send(reg.state, { type: 'home.registerHub', hubId: 'hub/1', secretHash: 'x' })).field).toBe('hubId');
    expect(okValue('home.hubs', send(reg.state, { type: 'home.hubs' }))).toEqual([
      { hubId: 'hub-1', secretHash: 'sha256:abc', createdAt: 5 },
    ]);
    const s0 = homeBehavior.initial('home:h1');
    expect(errorOf(send(s0, { type: 'home.registerHub', hubId: 'hub-1', secretHash: 'x' })).code).toBe('not_found');
  });

  it('knows devices by type and hub from attach and changes, keeping only values that conditions read', () => {
    let s = put(
      send(setup(), { type: 'device.attached', deviceId: 'motion1', deviceType: 'motion_sensor', hubId: 'hub-1' }).state,
      motionRule,
    );
    s = send(s, motion()).state;
    expect(okValue('home.get', send(s, { type: 'home.get' })).devices).toEqual([{ deviceId: 'motion1', type: 'sensor', hubId: 'hub-1' }]);
    // motion is read by the trigger, illuminance by a condition of a rule motion1 triggers: both
    // travel with motion1's changes, so the home keeps neither.
    expect(s.values).toEqual({});
  });
});

describe('home: rules firing', () => {
  it("takes a batch of one device's changes as one step, evaluating rules for each in order", () => {
    const s = put(setup(), motionRule);
    const still = { ...motion(), changed: { motion: false }, attributes: { motion: false, illuminance: 12 } };
    const step = send(s, { type: 'device.changes', changes: [still, motion(), still] });
    expect(step.journal).toBe(true);
    expect(okValue('device.changes', step)).toEqual({ decisions: 1 });
    expect(tells(step.effects)).toHaveLength(1);
    expect(step.state.values).toEqual({});
  });

  it('fires a rule whose trigger matches and conditions hold: a command, a notify and a decision', () => {
    const s = put(setup(), motionRule);
    const step = send(s, motion());
    expect(step.journal).toBe(true);
    expect(tells(step.effects)).toEqual([
      {
        to: 'device:h1:light1',
        msg: {
          type: 'command.issue',
          commandId: 'light1~r-motion-light-1',
          name: 'set',
          params: { on: true, brightness: 60 },
          ttlMs: 30_000,
          depth: 1,
          source: { kind: 'rule', ruleId: 'motion-light' },
        },
      },
    ]);
    expect(ofType(step.effects, 'notify')).toEqual([{ type: 'notify', homeId: 'h1', message: 'Hall light on', ruleId: 'motion-light' }]);
    const [published] = ofType(step.effects, 'publish');
    expect(published).toMatchObject({ homeId: 'h1', topic: 'decision', data: { seq: 1, outcome: 'fired' } });
    expect(step.state.nextCommandSeq).toBe(2);

    const [entry] = okValue('decisions.list', send(step.state, { type: 'decisions.list', limit: 10 }));
    expect(entry).toEqual({
      seq: 1,
      at: NIGHT,
      ruleId: 'motion-light',
      ruleName: 'Hall light on motion at night',
      trigger: { type: 'attribute', device: 'motion1', attribute: 'motion', value: true },
      depth: 0,
      conditions: [
        { condition: { type: 'attribute', device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }, saw: 12, passed: true },
        { condition: { type: 'time', after: '18:00', before: '06:00' }, saw: '23:30', passed: true },
      ],
      outcome: 'fired',
      actions: [
        {
          type: 'command',
          device: 'light1',
          name: 'set',
          params: { on: true, brightness: 60 },
          ttlMs: 30_000,
          commandId: 'light1~r-motion-light-1',
        },
        { type: 'notify', message: 'Hall light on' },
      ],
    });
    expect(published?.data).toEqual(entry);
  });

  it('takes no action when a condition fails, logging condition_false with what each condition saw', () => {
    const s = put(setup(), motionRule);
    const day = send(s, motion(), DAY);
    expect(tells(day.effects)).toEqual([]);
    expect(ofType(day.effects, 'notify')).toEqual([]);
    expect(day.journal).toBe(true);
    expect(okValue('device.changed', day)).toEqual({ decisions: 1 });
    const [entry] = day.state.decisions.entries;
    expect(entry).toMatchObject({
      ruleId: 'motion-light',
      outcome: 'condition_false',
      actions: [],
      conditions: [
        { saw: 12, passed: true },
        { saw: '12:00', passed: false },
      ],
    });
    expect(ofType(day.effects, 'publish')).toEqual([{ type: 'publish', homeId: 'h1', topic: 'decision', data: entry }]);
    // A change that triggers nothing writes nothing.
    const same = send(day.state, change('motion1', {}, { attributes: { motion: true, illuminance: 12 } }), DAY);
    expect(same.journal).toBe(false);
    expect(same.state).toBe(day.state);
  });

  it("evaluates time conditions in the home's time zone", () => {
    expect(tells(send(put(setup('Europe/Berlin'), motionRule), motion()).effects)).toHaveLength(1);
    expect(tells(send(put(setup('America/New_York'), motionRule), motion()).effects)).toHaveLength(0); // 17:30 there
  });

  it('a disabled rule neither fires nor logs on a change that matches its trigger', () => {
    const s = put(put(setup(), { ...motionRule, enabled: false }), { ...motionRule, id: 'enabled-twin' });
    const step = send(s, motion());
    expect(tells(step.effects)).toHaveLength(1);
    expect(step.state.decisions.entries.map((d) => d.ruleId)).toEqual(['enabled-twin']);
  });

  it('expands a scene action into one command per scene action and logs a missing scene of a rule stored before references were checked as skipped', () => {
    let s = send(setup(), {
      type: 'scenes.put',
      scene: {
        id: 'movie',
        name: 'Movie',
        actions: [
          { device: 'curtain1', name: 'close' },
          { device: 'light1', name: 'set', params: { brightness: 10 }, ttlMs: 5_000 },
        ],
      },
    }).state;
    s = put(s, {
      id: 'movie-btn',
      name: 'Movie button',
      when: [{ type: 'event', device: 'button1', event: 'double' }],
      then: [{ type: 'scene', scene: 'movie' }],
    });
    // Written today, a rule naming a missing scene is refused; one stored before that check runs.
    const rule = s.rules['movie-btn']!;
    s = { ...s, rules: { ...s.rules, [rule.id]: { ...rule, then: [...rule.then, { type: 'scene', scene: 'gone' }] } } };
    const step = send(s, change('button1', {}, { event: 'double' }));
    expect(tells(step.effects).map((t) => [t.to, t.msg.commandId, t.msg.name, t.msg.ttlMs])).toEqual([
      ['device:h1:curtain1', 'curtain1~r-movie-btn-1', 'close', 30_000],
      ['device:h1:light1', 'light1~r-movie-btn-2', 'set', 5_000],
    ]);
    expect(step.state.budget.tokens).toBe(28);
    expect(step.state.decisions.entries[0]?.actions).toEqual([
      {
        type: 'command',
        device: 'curtain1',
        name: 'close',
        params: {},
        ttlMs: 30_000,
        scene: 'movie',
        commandId: 'curtain1~r-movie-btn-1',
      },
      {
        type: 'command',
        device: 'light1',
        name: 'set',
        params: { brightness: 10 },
        ttlMs: 5_000,
        scene: 'movie',
        commandId: 'light1~r-movie-btn-2',
      },
      { type: 'skipped', action: { type: 'scene', scene: 'gone' }, reason: 'scene gone not found' },
    ]);
  });
});

describe('home: storm control', () => {
  const loopRule = {
    id: 'loop',
    name: 'Echo',
    when: [{ type: 'attribute', device: 'light1', attribute: 'on' }],
    then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
  };

  it('suspends a rule that re-triggers itself through its own commands, and tells the app why', () => {
    let s = put(setup(), loopRule);
    let depth = 0;
    const fired: number[] = [];
    for (;;) {
      // The device applies the command and reports a change carrying the command's depth.
      const step = send(s, change('light1', { on: depth % 2 === 0 }, { depth }));
      s = step.state;
      const [cmd] = tells(step.effects);
      if (!cmd) {
        expect(ofType(step.effects, 'notify')).toEqual([
          {
            type: 'notify',
            homeId: 'h1',
            ruleId: 'loop',
            message: expect.stringContaining('Rule "Echo" was suspended (causal_depth_exceeded: a change at depth 4'),
          },
        ]);
        break;
      }
      fired.push(depth);
      depth = cmd.msg.depth;
    }
    expect(fired).toEqual([0, 1, 2, 3]);
    const [view] = okValue('rules.list', send(s, { type: 'rules.list' }));
    expect(view?.suspended).toEqual({ reason: expect.stringMatching(/^causal_depth_exceeded: /), at: NIGHT });
    const [last] = okValue('decisions.list', send(s, { type: 'decisions.list' }));
    expect(last).toMatchObject({ outcome: 'suspended', depth: 4, actions: [], reason: view?.suspended?.reason });

    // Suspended: a fresh change does nothing and logs nothing.
    const quiet = send(s, change('light1', { on: false }));
    expect(tells(quiet.effects)).toEqual([]);
    expect(quiet.state.decisions.entries).toHaveLength(s.decisions.entries.length);

    // Resume clears it; the rule fires again.
    const resumed = send(quiet.state, { type: 'rules.resume', ruleId: 'loop' });
    expect(resumed.journal).toBe(true);
    expect(okValue('rules.resume', resumed)).not.toHaveProperty('suspended');
    expect(tells(send(resumed.state, change('light1', { on: true })).effects)).toHaveLength(1);
    expect(errorOf(send(s, { type: 'rules.resume', ruleId: 'nope' })).code).toBe('not_found');
  });

  it('suspends a rule that fires more than 10 times in 10 s; writing the rule again clears it', () => {
    const rule = {
      id: 'press',
      name: 'Press',
      when: [{ type: 'event', device: 'button1', event: 'single' }],
      then: [{ type: 'notify', message: 'pressed' }],
    };
    let s = put(setup(), rule);
    const outcomes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const step = send(s, change('button1', {}, { event: 'single' }), NIGHT + i * 500);
      s = step.state;
      outcomes.push(...ofType(step.effects, 'publish').map((p) => (p.data as { outcome: string }).outcome));
    }
    expect(outcomes).toEqual([...Array<string>(10).fill('fired'), 'suspended']);
    expect(s.ruleStatus.press?.suspended).toEqual({ reason: 'storm: fired 11 times in 10s', at: NIGHT + 5_000 });
    const [newest] = okValue('decisions.list', send(s, { type: 'decisions.list', limit: 1 }));
    expect(newest).toMatchObject({ seq: 11, outcome: 'suspended', reason: 'storm: fired 11 times in 10s' });

    s = put(s, rule);
    expect(okValue('rules.get', send(s, { type: 'rules.get', ruleId: 'press' }))).not.toHaveProperty('suspended');
    expect(ofType(send(s, change('button1', {}, { event: 'single' }), NIGHT + 6_000).effects, 'notify')).toHaveLength(1);
  });

  it('logs budget_exhausted and takes no action when the home command budget cannot pay', () => {
    const sixteen = Array.from({ length: 16 }, (_, i) => ({ device: `light${i}`, name: 'set', params: { on: true } }));
    let s = send(setup(), { type: 'scenes.put', scene: { id: 'all', name: 'All lights', actions: sixteen } }).state;
    s = put(s, {
      id: 'all-on',
      name: 'All on',
      when: [{ type: 'event', device: 'button1', event: 'long_press' }],
      then: [{ type: 'scene', scene: 'all' }],
    });
    const press = (now: number) => send(s, change('button1', {}, { event: 'long_press' }), now);

    let step = press(NIGHT);
    expect(tells(step.effects)).toHaveLength(16);
    s = step.state;
    step = press(NIGHT + 1_000); // 14.5 tokens left
    expect(tells(step.effects)).toEqual([]);
    expect(step.state.nextCommandSeq).toBe(s.nextCommandSeq);
    expect(step.state.decisions.entries.at(-1)).toMatchObject({
      outcome: 'budget_exhausted',
      actions: [],
      reason: 'budget_exhausted: needs 16 command(s), 14 left (home limit 30 per 60s)',
    });
    expect(ofType(step.effects, 'publish')).toHaveLength(1);
    s = step.state;
    expect(tells(press(NIGHT + 4_000).effects)).toHaveLength(16); // refilled to 16
  });

  it('makes the limits configurable', () => {
    const b = createHomeBehavior({
      storm: { maxDepth: 1, budgetCommands: 1, budgetWindowMs: 1_000, retriggerMax: 100, retriggerWindowMs: 1_000 },
    });
    const s = put(setup('UTC', b), motionRule, b);
    const evening = Date.parse('2024-01-15T20:00:00Z');
    expect(tells(send(s, motion(0), evening, b).effects)).toHaveLength(1);
    expect(send(s, motion(1), evening, b).state.ruleStatus['motion-light']?.suspended?.reason).toMatch(/^causal_depth_exceeded/);
  });
});

describe('home: rules and scenes API', () => {
  it('validates rules with the path of the bad field and allows unknown devices', () => {
    const s = setup();
    const bad = errorOf(send(s, { type: 'rules.put', rule: { ...motionRule, if: [{ device: 'm', attribute: 'a', op: '~', value: 1 }] } }));
    expect(bad).toMatchObject({ code: 'invalid_argument', field: 'if[0].op', message: 'if[0].op must be one of ==, !=, <, <=, >, >=' });
    const created = send(s, { type: 'rules.put', rule: motionRule });
    expect(okValue('rules.put', created)).toMatchObject({ created: true, rule: { id: 'motion-light', enabled: true, mode: 'single' } });
    expect(okValue('rules.put', send(created.state, { type: 'rules.put', rule: motionRule })).created).toBe(false);
    expect(errorOf(send(s, { type: 'rules.get', ruleId: 'motion-light' })).code).toBe('not_found');
    expect(errorOf(send(s, { type: 'rules.get', ruleId: 'constructor' })).code).toBe('not_found');
    const deleted = send(created.state, { type: 'rules.delete', ruleId: 'motion-light' });
    expect(okValue('rules.list', send(deleted.state, { type: 'rules.list' }))).toEqual([]);
    expect(errorOf(send(deleted.state, { type: 'rules.delete', ruleId: 'motion-light' })).code).toBe('not_found');
  });

  it('rejects a 201st rule but still replaces existing ones', () => {
    let s = setup();
    for (let i = 0; i < 200; i++) s = put(s, { ...motionRule, id: `r${i}` });
    expect(errorOf(send(s, { type: 'rules.put', rule: { ...motionRule, id: 'r200' } })).code).toBe('failed_precondition');
    expect(okValue('rules.put', send(s, { type: 'rules.put', rule: { ...motionRule, id: 'r7', name: 'renamed' } })).created).toBe(false);
  });

  it('activates a scene for the app at depth 0, spending the command budget', () => {
    let s = send(setup(), {
      type: 'scenes.put',
      scene: {
        id: 'movie',
        name: 'Movie',
        actions: [
          { device: 'curtain1', name: 'close' },
          { device: 'light1', name: 'set', params: { brightness: 10 } },
        ],
      },
    }).state;
    expect(okValue('scenes.list', send(s, { type: 'scenes.list' })).map((x) => x.id)).toEqual(['movie']);
    const step = send(s, { type: 'scenes.activate', sceneId: 'movie' });
    expect(okValue('scenes.activate', step)).toEqual({
      sceneId: 'movie',
      commands: [
        { commandId: 'curtain1~s-movie-1', device: 'curtain1' },
        { commandId: 'light1~s-movie-2', device: 'light1' },
      ],
    });
    expect(tells(step.effects).map((t) => [t.msg.source, t.msg.depth])).toEqual([
      [{ kind: 'app' }, 0],
      [{ kind: 'app' }, 0],
    ]);
    s = step.state;
    for (let i = 0; i < 14; i++) s = send(s, { type: 'scenes.activate', sceneId: 'movie' }).state; // 30 commands spent
    const broke = send(s, { type: 'scenes.activate', sceneId: 'movie' });
    expect(errorOf(broke)).toMatchObject({ code: 'resource_exhausted', message: expect.stringContaining('budget_exhausted') });
    expect(broke.journal).toBe(false);
    expect(errorOf(send(s, { type: 'scenes.activate', sceneId: 'nope' })).code).toBe('not_found');
  });

  const movie = { id: 'movie', name: 'Movie', actions: [{ device: 'light1', name: 'set', params: { on: false } }] };
  const movieButton = {
    id: 'movie-btn',
    name: 'Movie button',
    when: [{ type: 'event', device: 'button1', event: 'double' }],
    then: [
      { type: 'notify', message: 'movie time' },
      { type: 'scene', scene: 'movie' },
    ],
  };

  it('refuses a rule naming a scene the home does not have, naming the action field', () => {
    const s = setup();
    const missing = send(s, { type: 'rules.put', rule: movieButton });
    expect(errorOf(missing)).toMatchObject({ code: 'invalid_argument', field: 'then[1].scene', message: expect.stringContaining('movie') });
    expect(missing.journal).toBe(false);
    // Inherited names are not scenes.
    const inherited = send(s, { type: 'rules.put', rule: { ...movieButton, then: [{ type: 'scene', scene: 'toString' }] } });
    expect(errorOf(inherited).field).toBe('then[0].scene');
    const withScene = send(s, { type: 'scenes.put', scene: movie }).state;
    expect(okValue('rules.put', send(withScene, { type: 'rules.put', rule: movieButton })).created).toBe(true);
  });

  it('refuses to delete a scene that rules use, naming them, and deletes it once none does', () => {
    let s = send(setup(), { type: 'scenes.put', scene: movie }).state;
    s = put(s, movieButton);
    s = put(s, { ...movieButton, id: 'a-movie-btn' });
    const refused = send(s, { type: 'scenes.delete', sceneId: 'movie' });
    expect(errorOf(refused)).toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('a-movie-btn, movie-btn') });
    expect(refused.journal).toBe(false);
    expect(Object.keys(refused.state.scenes)).toEqual(['movie']);
    s = send(s, { type: 'rules.delete', ruleId: 'movie-btn' }).state;
    s = put(s, { ...movieButton, id: 'a-movie-btn', then: [{ type: 'notify', message: 'no scene' }] });
    const deleted = send(s, { type: 'scenes.delete', sceneId: 'movie' });
    expect(okValue('scenes.delete', deleted)).toEqual({ sceneId: 'movie' });
    expect(deleted.state.scenes).toEqual({});
  });
});

describe('home: decision log', () => {
  const rule = {
    id: 'press',
    name: 'Press',
    when: [{ type: 'event', device: 'button1', event: 'single' }],
    if: [{ device: 'climate1', attribute: 'temperature', op: '>', value: 0 }],
    then: [{ type: 'notify', message: 'pressed' }],
  };

  it('keeps the newest 200 entries with the values conditions saw, served newest first', () => {
    let s = put(setup(), rule);
    for (let i = 0; i < 205; i++) {
      s = send(s, change('climate1', { temperature: i + 1 }), NIGHT + i * 1_100).state;
      s = send(s, change('button1', {}, { event: 'single' }), NIGHT + i * 1_100 + 1).state;
    }
    expect(s.decisions.entries).toHaveLength(200);
    const all = okValue('decisions.list', send(s, { type: 'decisions.list', limit: 200 }));
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => 205 - i));
    expect(all[0]?.conditions[0]?.saw).toBe(205);
    expect(all[199]?.conditions[0]?.saw).toBe(6);
    expect(okValue('decisions.list', send(s, { type: 'decisions.list' }))).toHaveLength(50);
    for (const limit of [0, 201, 2.5, '10']) expect(errorOf(send(s, { type: 'decisions.list', limit })).field).toBe('limit');
  });
});

describe('home: purity', () => {
  it('is deterministic and JSON-serializable: replaying random traffic from a JSON snapshot gives the same steps', () => {
    const rand = mulberry32(2024);
    const msgs: [HomeMsg, number][] = [];
    let now = NIGHT;
    const scene = { id: 'movie', name: 'Movie', actions: [{ device: 'light1', name: 'set', params: { on: false } }] };
    const rules = [
      motionRule,
      { id: 'b', name: 'B', when: [{ type: 'event', device: 'button1', event: 'double' }], then: [{ type: 'scene', scene: 'movie' }] },
    ];
    for (let i = 0; i < 400; i++) {
      now += randomInt(rand, 2_000);
      const kind = randomInt(rand, 10);
      const m: HomeMsg =
        kind === 0
          ? { type: 'rules.put', rule: pick(rand, rules) }
          : kind === 1
            ? { type: 'scenes.put', scene }
            : kind === 2
              ? { type: 'rules.resume', ruleId: 'b' }
              : kind < 6
                ? change('button1', {}, { event: pick(rand, ['single', 'double']), depth: randomInt(rand, 6) })
                : motion(randomInt(rand, 6));
      msgs.push([m, now]);
    }
    const runFrom = (start: HomeState, from: number) => {
      let s = start;
      const out: unknown[] = [];
      for (const [m, t] of msgs.slice(from)) {
        const step = send(s, m, t);
        out.push([step.reply, step.effects, step.journal]);
        s = step.state;
      }
      return { s, out };
    };
    const base = setup();
    const full = runFrom(base, 0);
    expect(runFrom(base, 0)).toEqual(full);
    const half = (() => {
      let s = base;
      for (const [m, t] of msgs.slice(0, 200)) s = send(s, m, t).state;
      return s;
    })();
    const restored = JSON.parse(JSON.stringify(half)) as HomeState;
    expect(restored).toEqual(half);
    const tail = runFrom(restored, 200);
    expect(tail.s).toEqual(full.s);
    expect(tail.out).toEqual(full.out.slice(200));
    expect(JSON.parse(JSON.stringify(full.s))).toEqual(full.s);
    expect(full.s.decisions.entries.length).toBeGreaterThan(0);
  });
});

describe('home: device pages', () => {
  const attach = (s: HomeState, deviceId: string, hubId = 'hub-1'): HomeState =>
    send(s, { type: 'device.attached', deviceId, deviceType: 'light', hubId }).state;

  it('pages devices sorted by id with an opaque cursor until the last page', () => {
    let s = setup();
    for (const id of ['d3', 'd1', 'd5', 'd2', 'd4']) s = attach(s, id);
    const first = okValue('home.devices', send(s, { type: 'home.devices', limit: 2 }));
    expect(first.items).toEqual([
      { deviceId: 'd1', type: 'light', hubId: 'hub-1' },
      { deviceId: 'd2', type: 'light', hubId: 'hub-1' },
    ]);
    expect(first.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const second = okValue('home.devices', send(s, { type: 'home.devices', limit: 2, cursor: first.nextCursor }));
    expect(second.items.map((d) => d.deviceId)).toEqual(['d3', 'd4']);
    const last = okValue('home.devices', send(s, { type: 'home.devices', limit: 2, cursor: second.nextCursor }));
    expect(last).toEqual({ items: [{ deviceId: 'd5', type: 'light', hubId: 'hub-1' }] });
  });

  it('serves 50 by default and an exact fit without a next cursor', () => {
    let s = setup();
    for (let i = 0; i < 60; i++) s = attach(s, `dev-${String(i).padStart(2, '0')}`);
    const page = okValue('home.devices', send(s, { type: 'home.devices' }));
    expect(page.items).toHaveLength(50);
    const rest = okValue('home.devices', send(s, { type: 'home.devices', cursor: page.nextCursor, limit: 10 }));
    expect(rest.items.map((d) => d.deviceId)[9]).toBe('dev-59');
    expect(rest.nextCursor).toBeUndefined();
    expect(okValue('home.devices', send(setup(), { type: 'home.devices' }))).toEqual({ items: [] });
  });

  it('resumes after the cursor id even in a home that does not have that device', () => {
    const a = ['d1', 'd2', 'd3'].reduce((s, id) => attach(s, id), setup());
    const b = ['d1', 'd3', 'd4'].reduce((s, id) => attach(s, id), setup());
    const { nextCursor } = okValue('home.devices', send(a, { type: 'home.devices', limit: 2 }));
    expect(okValue('home.devices', send(b, { type: 'home.devices', cursor: nextCursor })).items.map((d) => d.deviceId)).toEqual([
      'd3',
      'd4',
    ]);
  });

  it('visits every device exactly once in id order under random page sizes', () => {
    const rand = mulberry32(7);
    let s = setup();
    const ids = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const id = `d${randomInt(rand, 10_000)}`;
      ids.add(id);
      s = attach(s, id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = okValue(
        'home.devices',
        send(s, { type: 'home.devices', limit: 1 + randomInt(rand, 30), ...(cursor ? { cursor } : {}) }),
      );
      seen.push(...page.items.map((d) => d.deviceId));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(seen).toEqual([...ids].sort());
  });

  it('rejects a bad limit or cursor naming the field, and a missing home', () => {
    const s = attach(setup(), 'd1');
    for (const limit of [0, 201, 1.5, '10']) {
      expect(errorOf(send(s, { type: 'home.devices', limit })).field).toBe('limit');
    }
    for (const cursor of ['', '***', 'not a cursor', 42]) {
      expect(errorOf(send(s, { type: 'home.devices', cursor })).field).toBe('cursor');
    }
    expect(errorOf(send(homeBehavior.initial('home:h1'), { type: 'home.devices' })).code).toBe('not_found');
  });
});

describe('home: hub secrets, hub removal and deletion', () => {
  const withHubs = (): HomeState => {
    let s = setup();
    s = send(s, { type: 'home.registerHub', hubId: 'hub-1', secretHash: 'old-1' }, 5).state;
    s = send(s, { type: 'home.registerHub', hubId: 'hub-2', secretHash: 'old-2' }, 6).state;
    s = send(s, { type: 'device.attached', deviceId: 'd1', deviceType: 'light', hubId: 'hub-1' }).state;
    s = send(s, { type: 'device.attached', deviceId: 'd2', deviceType: 'plug', hubId: 'hub-2' }).state;
    return put(s, {
      id: 'r1',
      name: 'Night light',
      when: [{ type: 'attribute', device: 'd1', attribute: 'on', to: true }],
      then: [{ type: 'notify', message: 'on' }],
    });
  };

  it('records a rotated secret and answers the one it replaces', () => {
    const step = send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: 'new-1' }, 9);
    expect(okValue('home.rotateHubSecret', step)).toEqual({ hubId: 'hub-1', previousSecretHash: 'old-1' });
    expect(step.journal).toBe(true);
    expect(okValue('home.hubs', send(step.state, { type: 'home.hubs' }))[0]).toEqual({
      hubId: 'hub-1',
      secretHash: 'new-1',
      createdAt: 5,
      rotatedAt: 9,
    });
    expect(errorOf(send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-9', secretHash: 'x' })).code).toBe('not_found');
    expect(errorOf(send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub/1', secretHash: 'x' })).field).toBe('hubId');
    expect(errorOf(send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: '' })).field).toBe('secretHash');
  });

  it('tells the hub actor of a registered hub to start afresh (hub.registered)', () => {
    const step = send(setup(), { type: 'home.registerHub', hubId: 'hub-1', secretHash: 'old-1' }, 5);
    expect(step.effects).toEqual([{ type: 'tell', to: 'hub:h1:hub-1', msg: { type: 'hub.registered' } }]);
  });

  it('tells the hub actor which secret stays and until when the others work, for a caller that names no retired secrets', () => {
    const digest = 'ab'.repeat(32);
    const step = send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: digest, previousValidUntil: 70_000 }, 9);
    expect(step.effects).toEqual([
      {
        type: 'tell',
        to: 'hub:h1:hub-1',
        msg: { type: 'hub.secretRotated', keep: [`hc_${'ab'.repeat(12)}`], othersValidUntil: 70_000 },
      },
    ]);
    // Without previousValidUntil (a caller that does not say) the hub actor is not told.
    expect(send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: digest }, 9).effects ?? []).toEqual([]);
    for (const bad of [-1, 1.5, '70000', Number.MAX_SAFE_INTEGER + 1]) {
      const refused = send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: digest, previousValidUntil: bad });
      expect(errorOf(refused).field).toBe('previousValidUntil');
    }
  });

  it('tells the hub actor the secrets the rotation retires (retire), and refuses an invalid list', () => {
    const retire = ['hc_a', 'hc_b'];
    const step = send(
      withHubs(),
      { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: 'new-1', previousValidUntil: 70_000, retire },
      9,
    );
    expect(okValue('home.rotateHubSecret', step)).toEqual({ hubId: 'hub-1', previousSecretHash: 'old-1' });
    expect(step.effects).toEqual([{ type: 'tell', to: 'hub:h1:hub-1', msg: { type: 'hub.secretRotated', retire, until: 70_000 } }]);
    // A rotation of a hub that had no secret left retires none: the hub actor is told all the same.
    const none = send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: 'new-1', previousValidUntil: 1, retire: [] });
    expect(none.effects).toEqual([{ type: 'tell', to: 'hub:h1:hub-1', msg: { type: 'hub.secretRotated', retire: [], until: 1 } }]);
    for (const [bad, field] of [
      ['hc_a', 'retire'],
      [[''], 'retire[0]'],
      [[7], 'retire[0]'],
      [Array.from({ length: 1001 }, (_, i) => `hc_${i}`), 'retire'],
    ] as const) {
      const refused = send(withHubs(), {
        type: 'home.rotateHubSecret',
        hubId: 'hub-1',
        secretHash: 'new-1',
        previousValidUntil: 1,
        retire: bad,
      });
      expect(errorOf(refused).field).toBe(field);
      expect(refused.journal).toBe(false);
    }
    const noEnd = send(withHubs(), { type: 'home.rotateHubSecret', hubId: 'hub-1', secretHash: 'new-1', retire });
    expect(errorOf(noEnd).field).toBe('previousValidUntil');
  });

  it('removes a hub and tells its actor, keeping the devices it served', () => {
    const step = send(withHubs(), { type: 'home.removeHub', hubId: 'hub-1' });
    expect(okValue('home.removeHub', step)).toEqual({ hubId: 'hub-1', secretHash: 'old-1' });
    expect(step.effects).toEqual([{ type: 'tell', to: 'hub:h1:hub-1', msg: { type: 'hub.remove' } }]);
    const home = okValue('home.get', send(step.state, { type: 'home.get' }));
    expect(home.hubs).toEqual(['hub-2']);
    expect(home.devices.map((d) => d.deviceId)).toEqual(['d1', 'd2']);
    expect(errorOf(send(step.state, { type: 'home.removeHub', hubId: 'hub-1' })).code).toBe('not_found');
  });

  it('deletes a home: tells every device and hub to remove itself, erases its state, answers its hubs', () => {
    const step = send(withHubs(), { type: 'home.delete' });
    expect(okValue('home.delete', step)).toEqual({
      homeId: 'h1',
      hubs: [
        { hubId: 'hub-1', secretHash: 'old-1', createdAt: 5 },
        { hubId: 'hub-2', secretHash: 'old-2', createdAt: 6 },
      ],
    });
    expect(step.journal).toBe(true);
    expect(step.effects).toEqual([
      { type: 'tell', to: 'device:h1:d1', msg: { type: 'device.remove' } },
      { type: 'tell', to: 'device:h1:d2', msg: { type: 'device.remove' } },
      { type: 'tell', to: 'hub:h1:hub-1', msg: { type: 'hub.remove' } },
      { type: 'tell', to: 'hub:h1:hub-2', msg: { type: 'hub.remove' } },
    ]);
    expect(step.state).toEqual({ ...homeBehavior.initial('home:h1'), deleted: true });
    for (const msg of [{ type: 'home.get' }, { type: 'rules.list' }, { type: 'home.delete' }] as HomeMsg[]) {
      expect(errorOf(send(step.state, msg)).code).toBe('not_found');
    }
    expect(errorOf(send(homeBehavior.initial('home:h1'), { type: 'home.delete' })).code).toBe('not_found');
  });

  it('refuses what devices still tell a deleted home, so nothing comes back', () => {
    const deleted = send(withHubs(), { type: 'home.delete' }).state;
    const late: HomeMsg[] = [
      { type: 'device.attached', deviceId: 'd1', deviceType: 'light', hubId: 'hub-1' },
      change('d1', { on: true }),
      { type: 'device.changes', changes: [change('d1', { on: true })] },
      { type: 'device.values', deviceId: 'd1', attributes: { on: true } },
    ];
    for (const msg of late) {
      const step = send(deleted, msg);
      expect(errorOf(step).code, msg.type).toBe('not_found');
      expect(step.state).toBe(deleted);
      expect(step.journal).toBeFalsy();
      expect(step.effects ?? []).toEqual([]);
    }
    // A home never created still learns of devices (a hub may say hello before the home is written).
    expect(okValue('device.attached', send(homeBehavior.initial('home:h1'), late[0]!))).toEqual({ deviceId: 'd1' });
  });

  it('never repeats a command id across deletion: the re-created home goes on from the command seq of the deleted one', () => {
    const rule = {
      id: 'r2',
      name: 'Lamp on press',
      when: [{ type: 'event', device: 'button1', event: 'press' }],
      then: [{ type: 'command', device: 'lamp9', name: 'set', params: { on: true } }],
    };
    const commandIds = (s: HomeState) =>
      tells(send(s, change('button1', {}, { event: 'press' })).effects)
        .filter((t) => t.msg.type === 'command.issue')
        .map((t) => t.msg.commandId);
    const before = put(withHubs(), rule);
    expect(commandIds(before)).toEqual(['lamp9~r-r2-1']);
    const fired = send(before, change('button1', {}, { event: 'press' })).state;
    // lamp9 was never attached: the delete does not tell it to remove itself, so it keeps lamp9~r-r2-1.
    const deleted = send(fired, { type: 'home.delete' });
    expect(tells(deleted.effects).map((t) => t.to)).not.toContain('device:h1:lamp9');
    expect(deleted.state.nextCommandSeq).toBe(2);
    const again = put(send(deleted.state, { type: 'home.upsert', name: 'Flat again' }).state, rule);
    expect(commandIds(again)).toEqual(['lamp9~r-r2-2']);
  });

  it('creates a deleted home anew from nothing on upsert', () => {
    const deleted = send(withHubs(), { type: 'home.delete' }).state;
    const step = send(deleted, { type: 'home.upsert', name: 'New flat', timezone: 'UTC' });
    expect(okValue('home.upsert', step)).toMatchObject({ created: true, home: { name: 'New flat', devices: [], hubs: [], ruleCount: 0 } });
    expect(step.state.deleted).toBeUndefined();
    // Devices of the new home are learned again.
    expect(
      okValue('device.attached', send(step.state, { type: 'device.attached', deviceId: 'd1', deviceType: 'light', hubId: 'hub-3' })),
    ).toEqual({
      deviceId: 'd1',
    });
  });
});
