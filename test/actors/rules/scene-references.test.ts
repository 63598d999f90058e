import { describe, expect, it } from 'vitest';
import type { Rule, Scene } from '../../../actors/rules/rule-types.ts';
import { checkSceneReferences, rulesUsingScene } from '../../../actors/rules/scene-references.ts';

const scene = (id: string): Scene => ({ id, name: id, actions: [{ type: 'command', device: 'lamp', name: 'on' }] });
const scenes: Record<string, Scene> = { movie: scene('movie'), night: scene('night') };
const rule = (id: string, then: Rule['then']): Rule => ({
  id,
  name: id,
  enabled: true,
  mode: 'single',
  when: [{ type: 'event', device: 'button', event: 'double' }],
  if: [],
  then,
});

describe('checkSceneReferences', () => {
  it('accepts a rule whose scenes all exist, and one that names none', () => {
    const r = rule('r1', [
      { type: 'scene', scene: 'movie' },
      { type: 'notify', message: 'hi' },
      { type: 'scene', scene: 'night' },
    ]);
    expect(checkSceneReferences(r, scenes)).toEqual({ ok: true, value: r });
    expect(checkSceneReferences(rule('r2', [{ type: 'notify', message: 'hi' }]), {}).ok).toBe(true);
  });

  it('names the field of the first action whose scene is missing, inherited names included', () => {
    const r = rule('r1', [
      { type: 'scene', scene: 'movie' },
      { type: 'scene', scene: 'party' },
      { type: 'scene', scene: 'gone' },
    ]);
    expect(checkSceneReferences(r, scenes)).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'then[1].scene' } });
    const inherited = rule('r2', [{ type: 'scene', scene: 'constructor' }]);
    expect(checkSceneReferences(inherited, scenes)).toMatchObject({ ok: false, error: { field: 'then[0].scene' } });
  });
});

describe('rulesUsingScene', () => {
  it('lists the ids of the rules that name the scene, sorted', () => {
    const rules = {
      zeta: rule('zeta', [{ type: 'scene', scene: 'movie' }]),
      alpha: rule('alpha', [
        { type: 'notify', message: 'x' },
        { type: 'scene', scene: 'movie' },
      ]),
      other: rule('other', [{ type: 'scene', scene: 'night' }]),
    };
    expect(rulesUsingScene(rules, 'movie')).toEqual(['alpha', 'zeta']);
    expect(rulesUsingScene(rules, 'night')).toEqual(['other']);
    expect(rulesUsingScene(rules, 'party')).toEqual([]);
  });
});
