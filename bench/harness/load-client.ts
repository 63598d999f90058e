/** The runner's side of the load processes: start them, call their operations, split hubs among them, stop them. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { HubSpec, LoadArgs, LoadOp, LoadReply, LoadResult } from './load-protocol.ts';

const WORKER = join(import.meta.dirname, 'load-worker.ts');

export class LoadWorker {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly output: () => string,
  ) {
    child.on('message', (raw: unknown) => {
      const r = raw as LoadReply;
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.result);
      else p.reject(new Error(`load worker (pid ${child.pid}): ${r.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = `load worker (pid ${child.pid}) exited (${signal ?? code}):\n${this.output().slice(-2_000)}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  /** Forks a load process and waits until it is ready. */
  static start(): Promise<LoadWorker> {
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`load worker did not start within 30 s:\n${out}`));
      }, 30_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve(new LoadWorker(child, () => out));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`load worker exited (${code}) before it was ready:\n${out}`));
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  call<K extends LoadOp>(op: K, args: LoadArgs<K>): Promise<LoadResult<K>> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }

  /** Disconnects (the worker exits by itself) and kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const force = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    if (this.child.connected) this.child.disconnect();
    else this.child.kill('SIGTERM');
    await gone;
    clearTimeout(force);
  }
}

/** Several load processes sharing the hubs of a scenario. */
export class LoadPool {
  private constructor(readonly workers: readonly LoadWorker[]) {}

  static async start(count: number): Promise<LoadPool> {
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, count) }, () => LoadWorker.start()));
    const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(workers.map((w) => w.stop()));
      throw failed.reason;
    }
    return new LoadPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Worker i's share of `hubs` (round robin). */
  share(hubs: readonly HubSpec[], i: number): HubSpec[] {
    return hubs.filter((_, k) => k % this.workers.length === i);
  }

  /** Calls `op` on every worker with the arguments `argsFor(i)` returns; resolves every result. */
  all<K extends LoadOp>(op: K, argsFor: (i: number) => LoadArgs<K>): Promise<LoadResult<K>[]> {
    return Promise.all(this.workers.map((w, i) => w.call(op, argsFor(i))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}
