/**
 * Starts a node as a real child process (what `npm start` runs: `dist/node/main.js`, or
 * `node/main.ts` under tsx) and reads its start line: the JSON log line `msg: "listening"`.
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
  /** `host:port` others reach each server at, as the start line prints them (undefined when off: `peer` without REDIS_URL). */
  readonly addresses: { readonly http: string; readonly grpc: string; readonly peer: string | undefined };
  /** The start line's store: `redis` or `memory (not durable)`. */
  readonly store: string;
  /** The generated admin token the node printed (undefined when ADMIN_TOKEN was set). */
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

/** The fields of the node's start line and its generated-token line that the tools read. */
interface StartLine {
  readonly msg?: unknown;
  readonly component?: unknown;
  readonly node?: unknown;
  readonly http?: unknown;
  readonly grpc?: unknown;
  readonly peer?: unknown;
  readonly store?: unknown;
  readonly adminToken?: unknown;
}

/** The JSON object of one output line, or undefined for a line that is not one (a partial line, a stack from a crash). */
export function parseLogLine(line: string): StartLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The port of a `host:port` address; a host may be a bracketed IPv6 address (`[::1]:8080`): the port follows the last colon. */
const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

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
  // Decoded as a stream: a character split across two chunks stays whole.
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  let out = '';
  child.stdout.on('data', (d: string) => (out += d));
  child.stderr.on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    let adminToken: string | undefined;
    let stdout = '';
    const check = (chunk: string): void => {
      stdout += chunk;
      const lines = stdout.split('\n');
      stdout = lines.pop()!; // the line still being written
      for (const line of lines) {
        const parsed = parseLogLine(line);
        // main's lines only: a component's own "listening" would not carry the addresses.
        if (parsed?.component !== 'main') continue;
        if (typeof parsed.adminToken === 'string') adminToken = parsed.adminToken;
        if (parsed.msg !== 'listening') continue;
        const { node, http, grpc, peer, store } = parsed;
        clearTimeout(timer);
        child.stdout.off('data', check);
        if (typeof node !== 'string' || typeof http !== 'string' || typeof grpc !== 'string' || typeof store !== 'string') {
          child.kill('SIGKILL');
          reject(new Error(`the start line lacks node, http, grpc or store: ${line}`));
          return;
        }
        resolve({
          child,
          entry: flavour,
          nodeId: node,
          httpPort: portOf(http),
          grpcPort: portOf(grpc),
          addresses: { http, grpc, peer: typeof peer === 'string' ? peer : undefined },
          store,
          adminToken,
          output: () => out,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
        return;
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with code ${code} before it started:\n${out}`));
    });
  });
}
