// Pacing of bulk reads: at most N requests a second from this tab, in order, cancellable while waiting.

/** The browser's clock (wrapped: a browser refuses setTimeout called as another object's method). */
const systemClock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms) };

/**
 * A queue handing out turns at most `ratePerSec` a second (one every 1000/ratePerSec ms, the first
 * at once). `turn(signal)` resolves when the caller may send one request; it rejects with the
 * signal's reason when `signal` aborts first, and the aborted turn frees its place (a new lookup
 * does not wait behind an abandoned one). `clock` is for tests.
 */
export function createPacer(ratePerSec, clock = systemClock) {
  const interval = 1_000 / ratePerSec;
  const queue = [];
  let last = -Infinity;
  let timer;

  function pump() {
    timer = undefined;
    while (queue.length > 0) {
      const wait = last + interval - clock.now();
      if (wait > 0) {
        timer = clock.setTimeout(pump, wait);
        return;
      }
      const waiter = queue.shift();
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      last = clock.now();
      waiter.resolve();
    }
  }

  return {
    turn(signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const waiter = { resolve, signal };
        waiter.onAbort = () => {
          const i = queue.indexOf(waiter);
          if (i >= 0) queue.splice(i, 1);
          reject(signal.reason);
        };
        signal?.addEventListener('abort', waiter.onAbort, { once: true });
        queue.push(waiter);
        if (timer === undefined) pump();
      });
    },
    /** Turns waiting (for tests and diagnostics). */
    get waiting() {
      return queue.length;
    },
  };
}

/**
 * Milliseconds to wait before retrying a request the node refused as too many (429): its
 * `retryAfterSeconds` (from `details` or the Retry-After header), else 1 s; at most 30 s.
 */
export function retryDelayMs(err) {
  const seconds = Number(err?.retryAfterSeconds);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(30, seconds) * 1_000 : 1_000;
}

/** Resolves after `ms`, or rejects with the signal's reason once `signal` aborts. */
export function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
