/** Keeps the cluster's peer secret in Redis: restores it when it disappeared, and says so when another one took its place. */
import type { Gauge } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';

/** Milliseconds between two checks of the peer secret in Redis. */
export const PEER_SECRET_CHECK_MS = 10_000;

/** What a check found: the key holds this node's secret, had lost it (restored now), or holds another one. */
export type PeerSecretCheck = 'kept' | 'restored' | 'mismatch';

/**
 * The secret kept in Redis (when neither PEER_SECRET nor PEER_TLS is set) is read once, at start;
 * if the key is lost (evicted, deleted, a Redis restarted without persistence) the next node to
 * start would generate a new one and be refused by every other node. So every node writes back
 * the secret it holds (`SET NX`: only when the key is missing) every PEER_SECRET_CHECK_MS, and
 * compares: a different value means the cluster is split in two groups that refuse each other,
 * which an operator must fix (restore the key and restart the nodes holding the other secret):
 * logged at error and shown by `iot_peer_secret_mismatch` = 1.
 */
export class PeerSecretKeeper {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<PeerSecretCheck | undefined> | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private readonly secret: string,
    private readonly mismatch: Gauge,
    private readonly log: Logger,
    private readonly intervalMs: number = PEER_SECRET_CHECK_MS,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check; undefined when Redis could not be asked (the next check tries again). Concurrent callers share one. */
  check(): Promise<PeerSecretCheck | undefined> {
    this.checking ??= this.run().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async run(): Promise<PeerSecretCheck | undefined> {
    try {
      const restored = (await this.client.set(this.key, this.secret, 'NX')) === 'OK';
      const stored = restored ? this.secret : await this.client.get(this.key);
      if (stored === this.secret) {
        this.mismatch.set(0);
        if (restored)
          this.log.warn(
            { key: this.key },
            "the cluster's peer secret was missing from Redis (evicted or deleted): restored it. Redis must not evict it (maxmemory-policy noeviction or volatile-*)",
          );
        return restored ? 'restored' : 'kept';
      }
      this.mismatch.set(1);
      this.log.error(
        { key: this.key },
        "the cluster's peer secret in Redis is not the one this node holds: nodes started before and after the change refuse each other. Restore the old value or restart the nodes holding it",
      );
      return 'mismatch';
    } catch (err) {
      this.log.debug({ err }, 'could not check the peer secret in Redis');
      return undefined;
    }
  }
}
