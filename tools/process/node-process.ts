/** Starts `node/main.ts` as a real child process (what `npm start` runs) and reads its start line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly nodeId: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly adminToken: string | undefined;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns a node with ports 0 and resolves once it printed its start line (or rejects with its output). */
export function startNodeProcess(env: Record<string, string> = {}, timeoutMs = 20_000, nodeArgs: string[] = []): Promise<NodeProcess> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, 'node', 'main.ts')], {
    cwd: root,
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
      const m = /node (\S+) listening http=[^:]+:(\d+) grpc=[^:]+:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', check);
      resolve({
        child,
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
