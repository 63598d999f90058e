/** Scene references of rules: a rule names only scenes its home has, and a scene a rule uses is not deleted. */
import type { Outcome } from '../types.ts';
import type { Rule, Scene } from './rule-types.ts';
import { invalidField } from './rule-validation.ts';

/**
 * Checks that every scene the rule's actions name exists in the home. The first missing one fails
 * with `invalid_argument` naming its action's field (`then[1].scene`).
 */
export function checkSceneReferences(rule: Rule, scenes: Readonly<Record<string, Scene>>): Outcome<Rule> {
  for (const [i, action] of rule.then.entries()) {
    if (action.type === 'scene' && !Object.hasOwn(scenes, action.scene)) {
      return invalidField(`then[${i}].scene`, `names scene ${action.scene}, which this home does not have`);
    }
  }
  return { ok: true, value: rule };
}

/** Ids of the rules whose actions name `sceneId`, sorted. */
export function rulesUsingScene(rules: Readonly<Record<string, Rule>>, sceneId: string): string[] {
  const users: string[] = [];
  for (const rule of Object.values(rules)) {
    if (rule.then.some((a) => a.type === 'scene' && a.scene === sceneId)) users.push(rule.id);
  }
  return users.sort();
}
