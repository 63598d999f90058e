/** Runs the bench as `npm run bench` does after its build: `node dist/bench/run.js` (never tsx), collecting what it wrote. */
import { spawn } from 'node:child_process';
import { PACKAGE_ROOT, scriptEntry } from '../../../tools/process/script-entry.ts';

export interface BenchRunOutput {
  readonly code: number | null;
  /** stdout and stderr as they came, interleaved. */
  readonly text: string;
}

/** Needs dist/ (`buildCompiled()` first); killed after `timeoutMs`. */
export function runCompiledBench(args: readonly string[], timeoutMs: number): Promise<BenchRunOutput> {
  const entry = scriptEntry('bench/run.ts', 'compiled');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry.execArgv, entry.file, ...args], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    });
  });
}
