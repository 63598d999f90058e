/**
 * Replaces nact, for this process only, with a bare scheduler: `dispatch` runs the actor's
 * function in a `setImmediate`, `spawn`/`start`/`stop` only keep a reference. The ActorHost then
 * runs unchanged — same shard scheduling, cells, windows, metrics and replies — without nact's
 * mailbox, context objects and supervision, which is how the actor-layer scenario tells nact's
 * share of the host's cost from the runtime's own.
 *
 * It works through a module resolution hook (`module.register`), so it must be installed before
 * anything imports the runtime's actor host; the benchmark then imports the host dynamically.
 * The shim covers exactly what runtime/ uses of nact (start, spawn, dispatch, stop).
 */
import { register } from 'node:module';

/** An ES module in a data: URL, usable from the compiled bench and under tsx alike. */
const dataUrl = (source: string): string => `data:text/javascript,${encodeURIComponent(source)}`;

// One setImmediate per dispatch, as nact schedules one per message; the function is called with
// nact's argument order (state, msg, context) but no state or context: the shard actor uses neither.
// Each dispatch is counted (a global keyed by a registered symbol) so the benchmark can prove the
// swap took effect rather than report nact's figures under the bare label.
const COUNTER = 'bench.bareDispatches';
const SHIM = `
const counter = Symbol.for(${JSON.stringify(COUNTER)});
globalThis[counter] = 0;
export const start = () => ({ bare: 'system' });
export const spawn = (_parent, f) => ({ f, stopped: false });
export const dispatch = (ref, msg) => {
  globalThis[counter]++;
  setImmediate(() => { if (!ref.stopped) ref.f(undefined, msg, undefined); });
};
export const stop = (ref) => { if (ref && 'f' in ref) ref.stopped = true; };
`;

const HOOKS = `
const shim = ${JSON.stringify(dataUrl(SHIM))};
export async function resolve(specifier, context, next) {
  if (specifier === 'nact') return { url: shim, shortCircuit: true };
  return next(specifier, context);
}
`;

let installed = false;

/** Routes every later `import … from 'nact'` of this process to the bare scheduler. Idempotent. */
export function installBareDispatch(): void {
  if (installed) return;
  installed = true;
  register(dataUrl(HOOKS));
}

/** Dispatches the bare scheduler has made in this process (0 when nact was not replaced). */
export function bareDispatches(): number {
  return (globalThis as Record<symbol, number | undefined>)[Symbol.for(COUNTER)] ?? 0;
}
