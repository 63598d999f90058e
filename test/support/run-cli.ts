/** Runs one of our command-line tools (`tools/ring-cli.ts`, `bench/run.ts`, …) as npm runs it (tsx) in a child process and collects what it wrote. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr as they came, interleaved. */
  readonly out: string;
}

/**
 * Spawns `script` (relative to the repository root) with `args`; `env` is laid over this process's
 * environment (undefined removes a variable). Asynchronous: a server answering the tool may live in
 * the test's own process. Killed after `timeoutMs`.
 */
export function runCli(
  script: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 120_000,
): Promise<CliRun> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, script), ...args], {
      cwd: root,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      out += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, out });
    });
  });
}
