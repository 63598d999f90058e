/** Where a run happened: the machine, the software versions and the git commit, for the report's header. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, cpus, freemem, hostname, loadavg, platform, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';

export interface Machine {
  readonly cpus: number;
  readonly model: string;
  readonly mhz: number;
  readonly memoryBytes: number;
  readonly freeMemoryBytes: number;
  readonly os: string;
  readonly arch: string;
  readonly hostname: string;
  readonly node: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadavg: readonly number[];
}

export interface Versions {
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
  /** `redis-server --version`, when installed. */
  readonly redis?: string;
}

export interface GitInfo {
  readonly commit?: string;
  /** Uncommitted changes in the working tree. */
  readonly dirty?: boolean;
  readonly error?: string;
}

// The repository root, whether this runs from bench/harness/ or dist/bench/harness/.
const root = PACKAGE_ROOT;

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpus: list.length,
    model: list[0]?.model.trim() ?? 'unknown',
    mhz: list[0]?.speed ?? 0,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    os: `${osType()} ${release()} (${platform()})`,
    arch: arch(),
    hostname: hostname(),
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
}

export function describeVersions(): Versions {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  let redis: string | undefined;
  try {
    redis = /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1];
  } catch {
    redis = undefined;
  }
  return { dependencies: pkg.dependencies ?? {}, devDependencies: pkg.devDependencies ?? {}, ...(redis ? { redis } : {}) };
}

/** The commit of the working tree (`git rev-parse HEAD`); a missing git or repository is noted, not fatal. */
export function describeGit(): GitInfo {
  try {
    const commit = run('git', ['rev-parse', 'HEAD']);
    let dirty: boolean | undefined;
    try {
      dirty = run('git', ['status', '--porcelain']).length > 0;
    } catch {
      dirty = undefined;
    }
    return { commit, ...(dirty === undefined ? {} : { dirty }) };
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

/** One line: "2 × AMD EPYC 7B13, 23.5 GiB, Linux 6.8 (linux), Node v20.20.2". */
export function machineLine(m: Machine): string {
  return `${m.cpus} × ${m.model}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}, Node ${m.node}`;
}
