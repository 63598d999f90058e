/** One interval for every hub of a process (a load process runs hundreds): pacing, stall watchdogs and waits. */

/** Something the shared ticker calls; `now` is performance.now() milliseconds. */
export interface Tickable {
  tick(now: number): void;
}

/** How often the shared ticker runs, milliseconds. */
export const TICK_MS = 5;

const ticking = new Set<Tickable>();
let ticker: NodeJS.Timeout | undefined;

function tickAll(): void {
  const now = performance.now();
  for (const t of ticking) t.tick(now);
  if (ticking.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

/** Ticks `t` from now on (again, if it had stopped). */
export function startTicking(t: Tickable): void {
  ticking.add(t);
  // Unref'd: a hub's open stream keeps the process alive, not the ticker.
  ticker ??= setInterval(tickAll, TICK_MS).unref();
}

/** Ticks `t` no more; the interval stops with the last one. */
export function stopTicking(t: Tickable): void {
  ticking.delete(t);
}
