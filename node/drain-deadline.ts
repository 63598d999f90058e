/** The shutdown's bound on the cluster drain: a drain that hangs (Redis gone, a peer stuck) must not hold the node past its grace period. */
import type { Logger } from '../runtime/logger.ts';

export interface DrainDeadline {
  /** Milliseconds the drain may take (DRAIN_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** This node's id, named in the remedy the error line gives. */
  readonly nodeId: string;
  readonly log: Logger;
}

/**
 * Runs `drain` for at most `timeoutMs` milliseconds. Past it, `drain`'s signal is aborted (the
 * drain stops waiting for its handoffs and leaves the ring alone) and an error is logged; a failed
 * drain is logged too. Either way it resolves and the shutdown goes on: the node releases the
 * leases it still holds as it closes (the other nodes take those shards at once), and the ring may
 * still list it, draining, until a live node's liveness check takes it out (an operator can too:
 * `npm run ring -- remove <id>`). Resolves true when the drain finished in time.
 */
export async function drainWithin(drain: (signal: AbortSignal) => Promise<void>, deadline: DrainDeadline): Promise<boolean> {
  const { timeoutMs, nodeId, log } = deadline;
  const stop = new AbortController();
  const remedy =
    'the node closes anyway, releasing the shard leases it still holds, and the other nodes take it out of the ring once its heartbeat is gone; ' +
    `if the ring still lists ${nodeId} afterwards (no other node alive), take it out: npm run ring -- remove ${nodeId} ` +
    `(or POST /v1/admin/ring {"remove":["${nodeId}"]})`;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
  try {
    const draining = drain(stop.signal);
    const outcome = await Promise.race([draining.then(() => 'done' as const), late]);
    if (outcome === 'late') {
      stop.abort(new Error(`the drain did not finish within DRAIN_TIMEOUT_MS (${timeoutMs} ms)`));
      // The drain settles once it sees the abort: its failure is no longer news.
      draining.catch(() => {});
      log.error({ drainTimeoutMs: timeoutMs }, `drain did not finish in ${timeoutMs} ms (DRAIN_TIMEOUT_MS): ${remedy}`);
      return false;
    }
    return true;
  } catch (err) {
    log.error({ err }, `drain failed: ${remedy}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
