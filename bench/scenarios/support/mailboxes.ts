/**
 * The actor layers the actor-layer scenario compares, behind one small interface:
 *  - `host`: the runtime's ActorHost over 1,024 shards (one nact actor per shard scheduling the
 *    shard's entity cells, see runtime/shard-actor.ts);
 *  - `host-bare-dispatch`: the same ActorHost, unchanged, with nact replaced in its process by a
 *    bare setImmediate scheduler (bare-dispatch.ts) — the runtime without nact;
 *  - `mailbox-immediate` / `mailbox-microtask`: a minimal hand-written mailbox (a Map of queues,
 *    each drained in one setImmediate / queueMicrotask turn) calling the same reducer directly.
 * Every layer runs the same counter reducer; `progress.handled` counts its calls across layers.
 * One layer per process: the host layers are imported only when asked for, so that the
 * bare-dispatch hook is in place before the runtime loads nact.
 */
import type { Behavior } from '../../../runtime/behavior.ts';
import { installBareDispatch } from './bare-dispatch.ts';

/** Shards of the host layers, as a production cluster is created with (DESIGN.md: e.g. 1024). */
export const HOST_SHARDS = 1024;

export type LayerKind = 'host' | 'host-bare-dispatch' | 'mailbox-immediate' | 'mailbox-microtask';

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

export async function createLayer(kind: LayerKind): Promise<ActorLayer> {
  switch (kind) {
    case 'host':
      return new (await import('./host-layer.ts')).HostLayer();
    case 'host-bare-dispatch':
      installBareDispatch();
      return new (await import('./host-layer.ts')).HostLayer();
    case 'mailbox-immediate':
      return new MiniMailboxLayer((fn) => setImmediate(fn));
    case 'mailbox-microtask':
      return new MiniMailboxLayer((fn) => queueMicrotask(fn));
  }
}
