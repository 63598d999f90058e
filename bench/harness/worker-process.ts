/**
 * The benchmarks' child processes, one protocol for all: a worker script started as the parent
 * runs (compiled `dist/…/*.js` under `npm run bench`, the TypeScript source under tsx when a test
 * imports the harness), its input as JSON in the environment, and over the IPC channel its
 * progress, log lines and result (a run-to-completion worker), its port (a server), or replies to
 * requests (a long-lived worker such as the load process). Every child started here is tracked
 * and killed when the parent exits, and `stop` is safe to call more than once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { OWN_FLAVOUR, PACKAGE_ROOT, scriptEntry, type EntryFlavour } from '../../tools/process/script-entry.ts';

const INPUT_ENV = 'BENCH_WORKER_INPUT';

/** Node flags of a worker that measures memory: forced GCs, and room for 100,000s of actors. */
export const MEMORY_NODE_ARGS: readonly string[] = ['--expose-gc', '--max-old-space-size=4096'];

/** What a worker sends to its parent. */
export type WorkerMessage =
  | { readonly type: 'progress'; readonly done: number; readonly total: number; readonly label?: string }
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'result'; readonly value: unknown }
  | { readonly type: 'error'; readonly message: string }
  /** A long-lived worker is ready for requests. */
  | { readonly type: 'ready' }
  /** The answer to request `id`. */
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string };

/** What the parent sends a long-lived worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Best effort: a parent that dies (or is interrupted) takes its workers with it.
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export interface ChildHandle {
  readonly child: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far (the last 64 KB). */
  output(): string;
  /** Resolves with the exit code (or signal) once the child has exited. */
  readonly exited: Promise<number | string | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ForkOptions {
  /** Extra node flags, e.g. `--expose-gc`, `--max-old-space-size=4096`. */
  readonly nodeArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly onMessage?: (msg: WorkerMessage) => void;
  /** Compiled (`dist/`) or source (tsx) worker; default: the parent's own flavour. */
  readonly entry?: EntryFlavour;
}

/**
 * Forks `script` (the repository-relative source path, e.g. `bench/harness/load-worker.ts`) with
 * `input` in its environment: its compiled `.js` under dist/ or the source under tsx (see `entry`).
 */
export function forkWorker(script: string, input: unknown, options: ForkOptions = {}): ChildHandle {
  const entry = scriptEntry(script, options.entry ?? OWN_FLAVOUR);
  installExitHook();
  const child = fork(entry.file, [], {
    cwd: PACKAGE_ROOT,
    execArgv: [...(options.nodeArgs ?? []), ...entry.execArgv],
    env: { ...process.env, ...options.env, [INPUT_ENV]: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  live.add(child);
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 65_536) out = out.slice(-65_536);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('message', (m) => options.onMessage?.(m as WorkerMessage));
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal);
    });
    child.on('error', (err) => {
      // A child that could not be spawned never emits 'exit'.
      if (child.pid !== undefined) return;
      live.delete(child);
      resolve(`spawn failed: ${err.message}`);
    });
  });
  return {
    child,
    output: () => out,
    exited,
    stop: async (graceMs = 5_000) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface RunOptions extends ForkOptions {
  /** Milliseconds after which the worker is killed and the run fails. */
  readonly timeoutMs: number;
  readonly onProgress?: (done: number, total: number, label?: string) => void;
  readonly onLog?: (line: string) => void;
}

/** Runs a worker to completion and resolves with the value it sent as its result. */
export async function runWorker<T>(script: string, input: unknown, options: RunOptions): Promise<T> {
  let result: { value: unknown } | undefined;
  let failure: string | undefined;
  const handle = forkWorker(script, input, {
    ...options,
    onMessage: (m) => {
      if (m.type === 'result') result = { value: m.value };
      else if (m.type === 'error') failure = m.message;
      else if (m.type === 'progress') options.onProgress?.(m.done, m.total, m.label);
      else if (m.type === 'log') options.onLog?.(m.line);
      options.onMessage?.(m);
    },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void handle.stop(1_000);
  }, options.timeoutMs);
  try {
    const code = await handle.exited;
    const tail = handle.output().slice(-4_000);
    if (timedOut) throw new Error(`${script} did not finish within ${options.timeoutMs} ms\n${tail}`);
    if (failure !== undefined) throw new Error(`${script} failed: ${failure}\n${tail}`);
    if (code !== 0 || !result) throw new Error(`${script} exited with ${String(code)} without a result\n${tail}`);
    return result.value as T;
  } finally {
    clearTimeout(timer);
    await handle.stop(1_000);
  }
}

/** Starts a worker that serves (it sends `listening`) and resolves with its port once it does. */
export async function startServerWorker(
  script: string,
  input: unknown,
  timeoutMs = 20_000,
  options: ForkOptions = {},
): Promise<ChildHandle & { readonly port: number }> {
  let onListening: ((port: number) => void) | undefined;
  const handle = forkWorker(script, input, {
    ...options,
    onMessage: (m) => {
      if (m.type === 'listening') onListening?.(m.port);
      options.onMessage?.(m);
    },
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} did not listen within ${timeoutMs} ms\n${handle.output()}`)), timeoutMs);
      onListening = (p) => {
        clearTimeout(timer);
        resolve(p);
      };
      void handle.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited with ${String(code)} before it listened\n${handle.output()}`));
      });
    });
    return { ...handle, port };
  } catch (err) {
    await handle.stop(1_000);
    throw err;
  }
}

// ---- the worker side ----

/** The input the parent passed (worker side). */
export function workerInput<T>(): T {
  const raw = process.env[INPUT_ENV];
  if (raw === undefined) throw new Error(`no ${INPUT_ENV}: start this script through forkWorker/runWorker`);
  return JSON.parse(raw) as T;
}

/** Sends a message to the parent (worker side); a no-op without an IPC channel. */
export function toParent(msg: WorkerMessage): void {
  process.send?.(msg);
}

/**
 * Serves requests (worker side of a long-lived worker): each `{id, op, args}` is answered with a
 * `reply` from `handle`; says `ready` first, and exits when the parent goes away.
 */
export function serveRequests(handle: (op: string, args: unknown) => Promise<unknown>, onExit: () => void = () => {}): void {
  process.on('message', (raw: unknown) => {
    const req = raw as WorkerRequest;
    const reply = (msg: WorkerMessage): void => void process.send?.(msg);
    handle(req.op, req.args).then(
      (result) => reply({ type: 'reply', id: req.id, ok: true, result }),
      (err: unknown) =>
        reply({ type: 'reply', id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  process.on('disconnect', () => {
    onExit();
    process.exit(0);
  });
  toParent({ type: 'ready' });
}

/**
 * Runs a worker's main function: sends its value as the result and exits 0, or sends the error
 * and exits 1. Exits explicitly: handles left open by the code under test must not keep it alive.
 */
export function runAsWorker(main: () => Promise<unknown>): void {
  main().then(
    (value) => {
      if (process.send) process.send({ type: 'result', value } satisfies WorkerMessage, () => process.exit(0));
      else {
        process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
        process.exit(0);
      }
    },
    (err: unknown) => {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`${message}\n`);
      if (process.send) process.send({ type: 'error', message } satisfies WorkerMessage, () => process.exit(1));
      else process.exit(1);
    },
  );
}
