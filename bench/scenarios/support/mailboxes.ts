/**
 * The actor layers the actor-layer scenario compares, behind one small interface:
 *  - `host`: the runtime's ActorHost (nact dispatch + ActorCell);
 *  - `cell-mailbox`: the same ActorCell (recovery, journal writer, metrics, replies) driven by a
 *    minimal mailbox instead of nact — the runtime without nact;
 *  - `mailbox-immediate` / `mailbox-microtask`: a minimal hand-written mailbox (a Map of queues,
 *    each drained in one setImmediate / queueMicrotask turn) calling the same reducer directly.
 * Every layer runs the same counter reducer; `handled` counts its calls across layers.
 */
import { Registry } from 'prom-client';
import { ActorCell, type Envelope } from '../../../runtime/actor-cell.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import type { Behavior } from '../../../runtime/behavior.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import { RuntimeMetrics } from '../../../runtime/metrics.ts';
import type { Result } from '../../../runtime/result.ts';

export type LayerKind = 'host' | 'cell-mailbox' | 'mailbox-immediate' | 'mailbox-microtask';

export interface CounterState {
  readonly n: number;
}
export interface CounterMsg {
  readonly type: 'add';
  readonly by: number;
}

/** Reducer calls so far, and a callback when they reach `waitFor` (the benchmark's round barrier). */
export const progress = { handled: 0, waitFor: -1, wake: (): void => {} };

/** A tiny counter actor: the same reducer work for every layer. Not journaled: dispatch is what is measured. */
export const counterBehavior: Behavior<CounterState, CounterMsg, number> = {
  kind: 'counter',
  initial: () => ({ n: 0 }),
  receive(state, msg) {
    const n = state.n + msg.by;
    if (++progress.handled === progress.waitFor) progress.wake();
    return { state: { n }, reply: n, journal: false };
  },
};

export interface ActorLayer {
  /** Fire and forget. */
  tell(id: string, msg: CounterMsg): void;
  /** Request/response: resolves with the reducer's reply. */
  ask(id: string, msg: CounterMsg): Promise<number>;
  readonly resident: number;
  close(): Promise<void>;
}

const unwrap = (r: Result<unknown>): number => {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as number;
};

class HostLayer implements ActorLayer {
  private readonly host = new ActorHost({
    behaviors: [counterBehavior],
    store: new MemoryStore(),
    logger: silentLogger,
    registry: new Registry(),
  });
  tell(id: string, msg: CounterMsg): void {
    const r = this.host.tell(id, msg);
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  }
  async ask(id: string, msg: CounterMsg): Promise<number> {
    return unwrap(await this.host.ask(id, msg));
  }
  get resident(): number {
    return this.host.residentCount;
  }
  async close(): Promise<void> {
    this.host.evict(() => true);
    await this.host.close();
  }
}

interface CellEntry {
  readonly cell: ActorCell;
  queue: Envelope[];
  scheduled: boolean;
}

/** ActorCell behind a minimal mailbox: one setImmediate turn drains a queue, awaiting each message as nact does. */
class CellMailboxLayer implements ActorLayer {
  private readonly cells = new Map<string, CellEntry>();
  private readonly store = new MemoryStore();
  private readonly metrics = new RuntimeMetrics(new Registry(), () => ({ resident: new Map(), queued: 0, deepest: 0 }));
  private readonly options = {
    snapshotEvery: 100,
    maxAttempts: 3,
    clock: Date.now,
    runEffects: () => {},
    wake: () => {},
  };

  tell(id: string, msg: CounterMsg): void {
    this.send(id, { msg, deadline: 0 });
  }
  ask(id: string, msg: CounterMsg): Promise<number> {
    return new Promise((resolve, reject) => {
      this.send(id, {
        msg,
        deadline: 0,
        reply: (r) => {
          try {
            resolve(unwrap(r));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      });
    });
  }
  get resident(): number {
    return this.cells.size;
  }
  async close(): Promise<void> {
    this.cells.clear();
  }

  private send(id: string, env: Envelope): void {
    let entry = this.cells.get(id);
    if (!entry) {
      entry = {
        cell: new ActorCell(id, counterBehavior, this.store, this.options, this.metrics, silentLogger),
        queue: [],
        scheduled: false,
      };
      this.cells.set(id, entry);
    }
    entry.cell.inflight++;
    entry.queue.push(env);
    if (!entry.scheduled) {
      entry.scheduled = true;
      const e = entry;
      setImmediate(() => void this.drain(e));
    }
  }

  private async drain(entry: CellEntry): Promise<void> {
    while (entry.queue.length > 0) {
      const batch = entry.queue;
      entry.queue = [];
      for (const env of batch) await entry.cell.handle(env);
    }
    entry.scheduled = false;
  }
}

interface MiniEntry {
  state: CounterState;
  queue: { msg: CounterMsg; reply: ((n: number) => void) | undefined }[];
  scheduled: boolean;
}

/** The minimal hand-written mailbox: a Map of queues, each drained synchronously in one scheduled turn. */
class MiniMailboxLayer implements ActorLayer {
  private readonly actors = new Map<string, MiniEntry>();
  constructor(private readonly schedule: (fn: () => void) => void) {}

  tell(id: string, msg: CounterMsg): void {
    this.send(id, msg, undefined);
  }
  ask(id: string, msg: CounterMsg): Promise<number> {
    return new Promise((resolve) => this.send(id, msg, resolve));
  }
  get resident(): number {
    return this.actors.size;
  }
  async close(): Promise<void> {
    this.actors.clear();
  }

  private send(id: string, msg: CounterMsg, reply: ((n: number) => void) | undefined): void {
    let entry = this.actors.get(id);
    if (!entry) {
      entry = { state: counterBehavior.initial(id), queue: [], scheduled: false };
      this.actors.set(id, entry);
    }
    entry.queue.push({ msg, reply });
    if (!entry.scheduled) {
      entry.scheduled = true;
      const e = entry;
      this.schedule(() => this.drain(e, id));
    }
  }

  private drain(entry: MiniEntry, id: string): void {
    const queue = entry.queue;
    entry.queue = [];
    entry.scheduled = false;
    const ctx = { id, now: Date.now(), replaying: false };
    for (const { msg, reply } of queue) {
      const step = counterBehavior.receive(entry.state, msg, ctx);
      entry.state = step.state;
      reply?.(step.reply!);
    }
  }
}

export function createLayer(kind: LayerKind): ActorLayer {
  switch (kind) {
    case 'host':
      return new HostLayer();
    case 'cell-mailbox':
      return new CellMailboxLayer();
    case 'mailbox-immediate':
      return new MiniMailboxLayer((fn) => setImmediate(fn));
    case 'mailbox-microtask':
      return new MiniMailboxLayer((fn) => queueMicrotask(fn));
  }
}
