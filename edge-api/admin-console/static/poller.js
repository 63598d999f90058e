// A polling loop: one run at a time, each started at most `periodMs` after the previous one started.

/**
 * Milliseconds to wait before the next run, given when the previous one started and finished
 * (epoch ms): what is left of the period, 0 when the run took the whole period or longer.
 */
export const nextDelay = (startedAt, finishedAt, periodMs) => Math.max(0, periodMs - (finishedAt - startedAt));

/**
 * A loop running `task(isCurrent)` every `periodMs` from `start()` to `stop()`. Runs never
 * overlap: the next is scheduled once the previous has settled (so a slow node is read back to
 * back, never twice at once), even across stop() and start(). `isCurrent()` turns false once the
 * loop was stopped after the run began: its answer is stale and must be dropped. A run is skipped
 * (the loop goes on) while `skip()` is true, e.g. while the tab is hidden. A task's rejection is
 * its own to report; it does not end the loop.
 */
export function createPoller(task, { periodMs = 1_000, skip = () => false, now = () => Date.now() } = {}) {
  let generation = 0;
  let running = false;
  let timer;
  /** The run in progress (or a settled promise): the next loop starts only after it. */
  let inFlight = Promise.resolve();

  function run(mine) {
    inFlight = (async () => {
      const started = now();
      if (!skip()) await Promise.resolve(task(() => mine === generation)).catch(() => undefined);
      if (mine === generation) timer = setTimeout(() => run(mine), nextDelay(started, now(), periodMs));
    })();
  }

  return {
    /** Starts the loop (a run now, or once the run of a stopped loop has settled); no-op while running. */
    start() {
      if (running) return;
      running = true;
      const mine = ++generation;
      void inFlight.then(() => {
        if (mine === generation) run(mine);
      });
    },
    /** Stops the loop: no further run; the answer of a run in progress is stale. */
    stop() {
      running = false;
      generation++;
      clearTimeout(timer);
    },
    get running() {
      return running;
    },
  };
}
