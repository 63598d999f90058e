/** A minimal behaviour for runtime tests: a counter with messages that crash on purpose. */
import type { Behavior } from '../../runtime/behavior.ts';

export interface CounterState {
  readonly count: number;
  readonly log: readonly number[];
  /** Epoch ms of a pending alarm (the wake-up under test). */
  readonly alarmAt?: number;
  readonly rings?: number;
}

export type CounterMsg =
  | { readonly type: 'add'; readonly n: number }
  | { readonly type: 'get' }
  /** Answers the count and asks to leave memory (`Step.passivate`), as a read of a missing entity does. */
  | { readonly type: 'peek' }
  | { readonly type: 'echo'; readonly tag: number }
  | { readonly type: 'poison' }
  /** Throws while `failures.left > 0` (shared with the test), then adds 1. */
  | { readonly type: 'flaky'; readonly key: string }
  | { readonly type: 'alarm'; readonly at: number }
  | { readonly type: 'ring' }
  | { readonly type: 'rings' }
  /** Adds `n` and tells `to` to add `n` too (an effect `{tell: {to, msg}}`). */
  | { readonly type: 'relay'; readonly to: string; readonly n: number };

/** The actor a counter's effect tells, for the host's `tellOf`. */
export const counterTellOf = (effect: unknown): { to: string; msg: unknown } | undefined =>
  (effect as { tell?: { to: string; msg: unknown } }).tell;

/** Remaining failures per `flaky` key; tests set them. */
export const flakyFailures = new Map<string, number>();

export const counterBehavior: Behavior<CounterState, CounterMsg, unknown> = {
  kind: 'counter',
  initial: () => ({ count: 0, log: [] }),
  nextWakeAt: (state) => state.alarmAt,
  wakeMessage: { type: 'ring' },
  receive(state, msg) {
    switch (msg.type) {
      case 'add': {
        const count = state.count + msg.n;
        return { state: { count, log: [...state.log, msg.n].slice(-20) }, reply: count, journal: true, effects: [{ added: msg.n }] };
      }
      case 'get':
        return { state, reply: state.count };
      case 'peek':
        return { state, reply: state.count, passivate: true };
      case 'echo':
        return { state, reply: msg.tag };
      case 'alarm':
        return { state: { ...state, alarmAt: msg.at }, journal: true };
      case 'ring': {
        if (state.alarmAt === undefined) return { state };
        const { alarmAt: _done, ...rest } = state;
        return { state: { ...rest, rings: (state.rings ?? 0) + 1 }, reply: state.rings, journal: true };
      }
      case 'rings':
        return { state, reply: state.rings ?? 0 };
      case 'relay': {
        const count = state.count + msg.n;
        const tell = { to: msg.to, msg: { type: 'add', n: msg.n } };
        return { state: { ...state, count }, reply: count, journal: true, effects: [{ tell }] };
      }
      case 'poison':
        throw new Error('poison message');
      case 'flaky': {
        const left = flakyFailures.get(msg.key) ?? 0;
        if (left > 0) {
          flakyFailures.set(msg.key, left - 1);
          throw new Error(`flaky failure, ${left - 1} left`);
        }
        return { state: { ...state, count: state.count + 1 }, reply: state.count + 1, journal: true };
      }
    }
  },
};
