/** The runner's side of the timers scenario's hub processes (timer-hub-worker.ts): start them, split the homes, call an operation on all. */
import { forkWorker, type ChildHandle, type WorkerMessage } from '../../harness/worker-process.ts';
import type { TimerHubOps, TimerHubSpec } from './timer-hub-worker.ts';

const WORKER = 'bench/scenarios/support/timer-hub-worker.ts';
const START_TIMEOUT_MS = 30_000;

type Op = keyof TimerHubOps;

class TimerHubProcess {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;
  private readonly ready: Promise<void>;
  private readonly handle: ChildHandle;

  constructor() {
    let onReady: () => void = () => {};
    const readyOrExit = new Promise<void>((resolve) => (onReady = resolve));
    this.handle = forkWorker(WORKER, {}, { onMessage: (m) => (m.type === 'ready' ? onReady() : this.settle(m)) });
    void this.handle.exited.then((code) => {
      this.exited = `timer hub process (pid ${this.handle.child.pid}) exited (${String(code)}):\n${this.handle.output().slice(-2_000)}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
      onReady();
    });
    this.ready = Promise.race([
      readyOrExit.then(() => {
        if (this.exited) throw new Error(this.exited);
      }),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`timer hub process did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS).unref(),
      ),
    ]);
  }

  async started(): Promise<this> {
    await this.ready;
    return this;
  }

  call<K extends Op>(op: K, args: TimerHubOps[K]['args']): Promise<TimerHubOps[K]['result']> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.handle.child.send({ id, op, args });
    });
  }

  stop(): Promise<void> {
    return this.handle.stop(5_000);
  }

  private settle(m: WorkerMessage): void {
    if (m.type !== 'reply') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`timer hub process (pid ${this.handle.child.pid}): ${m.error}`));
  }
}

/** Several hub processes, each with a round-robin share of the homes. */
export class TimerHubPool {
  private constructor(private readonly procs: readonly TimerHubProcess[]) {}

  static async start(count: number): Promise<TimerHubPool> {
    const procs = Array.from({ length: Math.max(1, count) }, () => new TimerHubProcess());
    const started = await Promise.allSettled(procs.map((p) => p.started()));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(procs.map((p) => p.stop()));
      throw failed.reason;
    }
    return new TimerHubPool(procs);
  }

  get size(): number {
    return this.procs.length;
  }

  share(hubs: readonly TimerHubSpec[], i: number): TimerHubSpec[] {
    return hubs.filter((_, k) => k % this.procs.length === i);
  }

  all<K extends Op>(op: K, argsFor: (i: number) => TimerHubOps[K]['args']): Promise<TimerHubOps[K]['result'][]> {
    return Promise.all(this.procs.map((p, i) => p.call(op, argsFor(i))));
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}
