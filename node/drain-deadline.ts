/** The shutdown's bound on the cluster drain: a drain that hangs (Redis gone, a peer stuck) must not hold the node past its grace period. */
import type { Logger } from '../runtime/logger.ts';

/**
 * Waits for `drain` at most `timeoutMs` milliseconds. Past it, or when the drain fails, logs an
 * error and resolves all the same: the shutdown goes on and this node's shard leases lapse (the
 * other nodes take the shards after the lease time instead of at once). Resolves true when the
 * drain finished in time.
 */
export async function drainWithin(drain: Promise<void>, timeoutMs: number, log: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
  try {
    const outcome = await Promise.race([drain.then(() => 'done' as const), deadline]);
    if (outcome === 'late') {
      log.error({ drainTimeoutMs: timeoutMs }, `drain did not finish in ${timeoutMs} ms (DRAIN_TIMEOUT_MS); leases will lapse`);
      // The drain may still settle while the node closes: its failure is no longer news.
      drain.catch(() => {});
      return false;
    }
    return true;
  } catch (err) {
    log.error({ err }, 'drain failed; leases will lapse');
    return false;
  } finally {
    clearTimeout(timer);
  }
}
