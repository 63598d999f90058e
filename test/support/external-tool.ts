/**
 * Tests that drive a tool from outside npm (kubectl, promtool): on a developer machine without the
 * tool they are skipped with the reason printed; in CI (`CI` set: `.ci/run` installs or expects
 * the tool) a missing tool fails them instead, so CI never passes by skipping.
 */
import { execFileSync } from 'node:child_process';

/** Why `tool` cannot run (not on PATH), or undefined when `tool <versionArgs>` succeeds. */
export function externalToolMissing(tool: string, versionArgs: readonly string[], hint: string): string | undefined {
  try {
    execFileSync(tool, versionArgs, { stdio: 'ignore', timeout: 30_000 });
    return undefined;
  } catch {
    return `${tool} is not on PATH: ${hint}`;
  }
}

/** True when tests needing the tool are to be skipped: it is missing and this is not CI (where missing fails). */
export function skipWithout(missing: string | undefined): boolean {
  if (missing === undefined || process.env['CI']) return false;
  process.stderr.write(`skipped: ${missing}\n`);
  return true;
}
