/** Bounds every network call doctor makes: a dead Redis or node must give a line, never a hang. */

/** A call that did not answer in time. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
  readonly code = 'DEADLINE_EXCEEDED';
}

/** `promise`, or a DeadlineError `${what} did not answer within ${ms} ms` when it takes longer. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds doctor waits for one network call (a Redis command, an HTTP request, a TCP connect). */
export const CALL_TIMEOUT_MS = 2_000;

/** Milliseconds doctor waits for Redis to connect before it reports it unreachable. */
export const CONNECT_TIMEOUT_MS = 3_000;
