/**
 * Starts a node as a real child process (what `npm start` runs: `dist/node/main.js`, or
 * `node/main.ts` under tsx) and reads its start line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { OWN_FLAVOUR, PACKAGE_ROOT, scriptEntry, type EntryFlavour } from './script-entry.ts';

export interface NodeProcess {
  readonly child: ChildProcess;
  /** Which entry runs: `dist/node/main.js` (compiled) or `node/main.ts` under tsx (source). */
  readonly entry: EntryFlavour;
  readonly nodeId: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly adminToken: string | undefined;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface NodeProcessOptions {
  /** Extra node flags, e.g. `--expose-gc`. */
  readonly nodeArgs?: readonly string[];
  /**
   * `compiled` runs `dist/node/main.js` (needs `npm run build`; what production and the benchmarks
   * run), `source` runs `node/main.ts` under tsx. Default: the caller's own flavour, so the compiled
   * bench starts compiled nodes and the tests start source ones without a build.
   */
  readonly entry?: EntryFlavour;
}

/** Spawns a node with ports 0 and resolves once it printed its start line (or rejects with its output). */
export async function startNodeProcess(
  env: Record<string, string> = {},
  timeoutMs = 20_000,
  options: NodeProcessOptions = {},
): Promise<NodeProcess> {
  const flavour = options.entry ?? OWN_FLAVOUR;
  const entry = scriptEntry('node/main.ts', flavour);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry.execArgv, entry.file], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, HTTP_PORT: '0', GRPC_PORT: '0', PEER_PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = (): void => {
      // A host may be a bracketed IPv6 address (`http=[::1]:8080`): the port follows the last colon.
      const m = /node (\S+) listening http=\S*:(\d+) grpc=\S*:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', check);
      resolve({
        child,
        entry: flavour,
        nodeId: m[1]!,
        httpPort: Number(m[2]),
        grpcPort: Number(m[3]),
        adminToken: /admin token \(generated[^)]*\): (\S+)/.exec(out)?.[1],
        output: () => out,
        stop: (signal = 'SIGTERM') => {
          child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with code ${code} before it started:\n${out}`));
    });
  });
}
