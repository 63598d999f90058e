/**
 * A home recovered from its journal decides as the first run did, even where a check added since
 * (issue 11: scene references of rules) would refuse a step an older release accepted.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { homeBehavior } from '../../actors/home.ts';
import type { DecisionEntry } from '../../actors/rules/decision-log.ts';
import type { DeviceChanged } from '../../actors/types.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';

const HOME = 'home:h1';
const AT = Date.parse('2024-01-15T22:30:00Z');

// As an app sends them (what rules.put and scenes.put journal), not as validated.
const movie = { id: 'movie', name: 'Movie', actions: [{ device: 'curtain1', name: 'close', params: {} }] };
const button = (scene: string) => ({
  id: 'movie-btn',
  name: 'Movie button',
  when: [{ type: 'event', device: 'button1', event: 'double' }],
  then: [
    { type: 'command', device: 'light1', name: 'off', params: {} },
    { type: 'scene', scene },
  ],
});
const press: DeviceChanged = {
  type: 'device.changed',
  deviceId: 'button1',
  deviceType: 'button',
  changed: {},
  attributes: {},
  event: 'double',
  depth: 0,
  tsMs: AT,
  filtered: true,
};

const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** A host whose store holds `journal` for the home, as an older release wrote it. */
async function recoveredFrom(journal: readonly unknown[]): Promise<ActorHost> {
  const store = new MemoryStore();
  const events = journal.map((msg, i) => ({ seq: i + 1, at: AT + i, msg }));
  await store.commit(0, [{ actorId: HOME, batch: { events } }]);
  const host = new ActorHost({ behaviors: [homeBehavior], store, logger: silentLogger, registry: new Registry(), onEffects: () => {} });
  hosts.push(host);
  return host;
}

async function value(host: ActorHost, msg: unknown): Promise<unknown> {
  const r = await host.ask(HOME, msg);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true, value: { ok: true } });
  return (r as { value: { value: unknown } }).value.value;
}

describe('home: replaying a journal written before scene references were checked', () => {
  it('keeps a rule journaled naming a scene that did not exist yet, and the scene put after it', async () => {
    const host = await recoveredFrom([
      { type: 'home.upsert', name: 'Flat', timezone: 'UTC' },
      { type: 'rules.put', rule: button('gone') },
      { type: 'scenes.put', scene: { ...movie, id: 'gone' } },
    ]);
    expect(await value(host, { type: 'rules.list' })).toMatchObject([button('gone')]);
    expect(await value(host, { type: 'scenes.list' })).toMatchObject([{ ...movie, id: 'gone' }]);
    expect(await value(host, press)).toEqual({ decisions: 1 });
    const [decision] = (await value(host, { type: 'decisions.list' })) as DecisionEntry[];
    expect(decision?.actions.map((a) => (a.type === 'command' ? a.commandId : a.type))).toEqual([
      'light1~r-movie-btn-1',
      'curtain1~r-movie-btn-2',
    ]);
    // A live put is still checked.
    const live = await host.ask(HOME, { type: 'rules.put', rule: { ...button('nowhere'), id: 'other' } });
    expect(live).toMatchObject({ ok: true, value: { ok: false, error: { code: 'invalid_argument', field: 'then[1].scene' } } });
  });

  it('deletes a scene a rule used as the journal says, and later firings decide as the first run would have', async () => {
    const host = await recoveredFrom([
      { type: 'home.upsert', name: 'Flat', timezone: 'UTC' },
      { type: 'scenes.put', scene: movie },
      { type: 'rules.put', rule: button('movie') },
      { type: 'scenes.delete', sceneId: 'movie' },
    ]);
    expect(await value(host, { type: 'scenes.list' })).toEqual([]);
    expect(await value(host, press)).toEqual({ decisions: 1 });
    const [decision] = (await value(host, { type: 'decisions.list' })) as DecisionEntry[];
    // Without the deleted scene's command: the rule's own command takes seq 1, the scene is skipped.
    expect(decision?.actions).toEqual([
      { type: 'command', device: 'light1', name: 'off', params: {}, ttlMs: 30_000, commandId: 'light1~r-movie-btn-1' },
      { type: 'skipped', action: { type: 'scene', scene: 'movie' }, reason: 'scene movie not found' },
    ]);
    // A live delete of a scene in use is still refused.
    await value(host, { type: 'scenes.put', scene: movie });
    const live = await host.ask(HOME, { type: 'scenes.delete', sceneId: 'movie' });
    expect(live).toMatchObject({ ok: true, value: { ok: false, error: { code: 'failed_precondition' } } });
  });
});
