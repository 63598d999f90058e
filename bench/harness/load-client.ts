/** The runner's side of the load processes: start them, call their operations, split hubs among them, stop them. */
import type { HubSpec, LoadArgs, LoadOp, LoadResult } from './load-protocol.ts';
import { forkWorker, type ChildHandle, type WorkerMessage } from './worker-process.ts';

const WORKER = 'bench/harness/load-worker.ts';
const START_TIMEOUT_MS = 30_000;

export class LoadWorker {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;

  private constructor(private readonly handle: ChildHandle) {
    void handle.exited.then((code) => {
      this.exited = `load worker (pid ${handle.child.pid}) exited (${String(code)}):\n${handle.output().slice(-2_000)}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  /** Forks a load process and waits until it is ready. */
  static async start(): Promise<LoadWorker> {
    let worker: LoadWorker | undefined;
    let ready: (() => void) | undefined;
    const onMessage = (m: WorkerMessage): void => {
      if (m.type === 'ready') ready?.();
      else if (m.type === 'reply') worker?.settle(m);
    };
    const handle = forkWorker(WORKER, {}, { onMessage });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`load worker did not start within ${START_TIMEOUT_MS} ms:\n${handle.output()}`)),
          START_TIMEOUT_MS,
        );
        ready = () => {
          clearTimeout(timer);
          resolve();
        };
        void handle.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`load worker exited (${String(code)}) before it was ready:\n${handle.output()}`));
        });
      });
    } catch (err) {
      await handle.stop(1_000);
      throw err;
    }
    worker = new LoadWorker(handle);
    return worker;
  }

  call<K extends LoadOp>(op: K, args: LoadArgs<K>): Promise<LoadResult<K>> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.handle.child.send({ id, op, args });
    });
  }

  /** SIGTERM, SIGKILL after 5 s. */
  stop(): Promise<void> {
    return this.handle.stop(5_000);
  }

  private settle(m: Extract<WorkerMessage, { type: 'reply' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`load worker (pid ${this.handle.child.pid}): ${m.error}`));
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
