/**
 * Runs `npm run build` (tsc to dist/ and the .proto files beside it) for code that must run the
 * compiled tree, such as the compiled-bench test. Several test files may ask at once: a lock
 * directory makes them build one after another, and tsc's incremental build makes the second a
 * quick no-op.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PACKAGE_ROOT } from './script-entry.ts';

/** A lock older than this was left by a build that died: it is taken over. */
const STALE_LOCK_MS = 10 * 60_000;
const LOCK_POLL_MS = 200;

/** `npm run build` failed; `output` is what it printed. */
export class BuildError extends Error {
  readonly code = 'BUILD_FAILED';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}\n${output.slice(-8_000)}`);
    this.name = 'BuildError';
  }
}

const lockPath = (): string => join(tmpdir(), `iot-build-${createHash('sha256').update(PACKAGE_ROOT).digest('hex').slice(0, 16)}.lock`);

async function acquire(lock: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let age: number;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released between our mkdir and stat: try again at once
    }
    if (age > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new BuildError(`another build holds ${lock}`, '');
    else await delay(LOCK_POLL_MS);
  }
}

function npmRunBuild(timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'build'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new BuildError(`npm run build could not start: ${err.message}`, out));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new BuildError(`npm run build failed (${signal ?? `exit code ${code}`})`, out));
    });
  });
}

/** Builds dist/ with `npm run build`, one build at a time per checkout; rejects with {@link BuildError}. */
export async function buildCompiled(timeoutMs = 180_000): Promise<void> {
  const lock = lockPath();
  await acquire(lock, Date.now() + timeoutMs);
  try {
    await npmRunBuild(timeoutMs);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
