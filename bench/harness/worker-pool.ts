/** The runner's side of load processes: fork them, call their operations by number, split work among them, stop them. */
import { forkWorker, type ChildHandle, type WorkerMessage } from './worker-process.ts';

/** A worker's operations: each with its arguments and its result (plain JSON both). */
export type WorkerOps<Ops> = { readonly [K in keyof Ops]: { readonly args: unknown; readonly result: unknown } };

const START_TIMEOUT_MS = 30_000;

/** One forked worker process (a file running `runAsWorker`), answering numbered calls. */
export class WorkerClient<Ops extends WorkerOps<Ops>> {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;

  private constructor(
    private readonly handle: ChildHandle,
    private readonly label: string,
  ) {
    void handle.exited.then((code) => {
      this.exited = `${label} (pid ${handle.child.pid}) exited (${String(code)}):\n${handle.output().slice(-2_000)}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  /** Forks `file` and waits until it says it is ready. `label` names it in errors ("load worker"). */
  static async start<Ops extends WorkerOps<Ops>>(file: string, label: string): Promise<WorkerClient<Ops>> {
    let worker: WorkerClient<Ops> | undefined;
    let ready: (() => void) | undefined;
    const onMessage = (m: WorkerMessage): void => {
      if (m.type === 'ready') ready?.();
      else if (m.type === 'reply') worker?.settle(m);
    };
    const handle = forkWorker(file, {}, { onMessage });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${label} did not start within ${START_TIMEOUT_MS} ms:\n${handle.output()}`)),
          START_TIMEOUT_MS,
        );
        ready = () => {
          clearTimeout(timer);
          resolve();
        };
        void handle.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${label} exited (${String(code)}) before it was ready:\n${handle.output()}`));
        });
      });
    } catch (err) {
      await handle.stop(1_000);
      throw err;
    }
    worker = new WorkerClient<Ops>(handle, label);
    return worker;
  }

  call<K extends keyof Ops & string>(op: K, args: Ops[K]['args']): Promise<Ops[K]['result']> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve, reject });
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
    else p.reject(new Error(`${this.label} (pid ${this.handle.child.pid}): ${m.error}`));
  }
}

/** Several worker processes of one file, started together (if one fails to start, the others are stopped). */
export class WorkerPool<Ops extends WorkerOps<Ops>> {
  private constructor(readonly workers: readonly WorkerClient<Ops>[]) {}

  static async start<Ops extends WorkerOps<Ops>>(file: string, label: string, count: number): Promise<WorkerPool<Ops>> {
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, count) }, () => WorkerClient.start<Ops>(file, label)));
    const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(workers.map((w) => w.stop()));
      throw failed.reason;
    }
    return new WorkerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Worker i's share of `items` (round robin). */
  share<T>(items: readonly T[], i: number): T[] {
    return items.filter((_, k) => k % this.workers.length === i);
  }

  /** Calls `op` on every worker with the arguments `argsFor(i)` returns; resolves every result. */
  all<K extends keyof Ops & string>(op: K, argsFor: (i: number) => Ops[K]['args']): Promise<Ops[K]['result'][]> {
    return Promise.all(this.workers.map((w, i) => w.call(op, argsFor(i))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}
