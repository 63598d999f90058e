/** Owner leases with fence tokens per shard: taken at start, renewed, and given up or lost. */
import type { Logger } from '../runtime/logger.ts';
import type { KeyLayout } from '../runtime/redis/key-layout.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';

/**
 * Lua: mints the next fence token of KEYS[2]: max(current + 1, Redis TIME in microseconds), written
 * as a decimal integer. Tokens still only grow; and after a Sentinel failover lost an acknowledged
 * but unreplicated mint, the new master's clock (synced) is past it, so a token is never minted
 * twice. Microseconds since 1970 (~1.8e15) are exact in a Lua double (below 2^53).
 */
const MINT = `
local function mint(key)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local current = tonumber(redis.call('GET', key) or '0') or 0
  local token = string.format('%.0f', math.max(current + 1, now))
  redis.call('SET', key, token)
  return token
end
`;

/**
 * KEYS [lease, fence], ARGV [owner, ttlMs]: takes the lease when it is free or already ours
 * (a restarted node with the same id), and returns a new fence token — the old incarnation's
 * token is stale from now on. Returns {0, holder} when another node holds it.
 */
const ACQUIRE = `${MINT}
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, mint(KEYS[2])}
`;

/**
 * KEYS [lease, fence], ARGV [owner, ttlMs]: takes the lease whoever holds it, with a new fence
 * token. Only for a holder known to be dead (its heartbeat expired): the fence then refuses
 * anything the old holder might still write.
 */
const TAKEOVER = `${MINT}
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, mint(KEYS[2])}
`;

/**
 * KEYS [lease, fence], ARGV [owner, ttlMs, token]: extends our lease if it is still ours with this
 * token. A lease that lapsed while Redis was unreachable longer than its TTL is taken again when
 * nobody took the shard since (the fence is still our token: any acquire would have raised it).
 */
const RENEW = `
local holder = redis.call('GET', KEYS[1])
if redis.call('GET', KEYS[2]) ~= ARGV[3] or (holder and holder ~= ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS [lease, fence], ARGV [owner, token]: frees the lease if it is ours with this token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

type LeaseClient = RedisClient & {
  leaseAcquire(numKeys: number, ...args: string[]): Promise<[number, string]>;
  leaseRenew(numKeys: number, ...args: string[]): Promise<number>;
  leaseRelease(numKeys: number, ...args: string[]): Promise<number>;
  leaseTakeover(numKeys: number, ...args: string[]): Promise<[number, string]>;
};

export interface ShardLeasesConfig {
  /** Milliseconds a lease lives without renewal. */
  readonly ttlMs: number;
  /** Milliseconds between renewals (well under ttlMs). */
  readonly renewEveryMs: number;
}

export const defaultShardLeasesConfig: ShardLeasesConfig = { ttlMs: 15_000, renewEveryMs: 5_000 };

/**
 * The shards this node owns and its fence token for each. A shard whose lease is lost (renewal
 * refused, or a write fenced) is dropped and reported through `onLost`; its actors must stop.
 */
export class ShardLeases {
  private readonly tokens = new Map<number, string>();
  private readonly client: LeaseClient;
  private readonly config: ShardLeasesConfig;
  private readonly log: Logger;
  private renewTimer: NodeJS.Timeout | undefined;

  constructor(
    client: RedisClient,
    private readonly keys: KeyLayout,
    private readonly owner: string,
    private readonly onLost: (shard: number, reason: string) => void,
    logger: Logger,
    config: Partial<ShardLeasesConfig> = {},
  ) {
    if (!('leaseAcquire' in client)) {
      client.defineCommand('leaseAcquire', { lua: ACQUIRE });
      client.defineCommand('leaseRenew', { lua: RENEW });
      client.defineCommand('leaseRelease', { lua: RELEASE });
      client.defineCommand('leaseTakeover', { lua: TAKEOVER });
    }
    this.client = client as LeaseClient;
    this.config = { ...defaultShardLeasesConfig, ...config };
    this.log = logger.child({ component: 'shard-leases' });
  }

  /** This node's fence token for `shard`, or undefined when it does not own it. */
  token(shard: number): string | undefined {
    return this.tokens.get(shard);
  }

  get owned(): number {
    return this.tokens.size;
  }

  /**
   * Takes the given shards (all in one pipelined round trip). Returns the shards another node
   * holds (and who). With `force`, takes them whoever holds them: only for dead holders.
   */
  async acquire(shards: readonly number[], options: { force?: boolean } = {}): Promise<Map<number, string>> {
    const ttl = String(this.config.ttlMs);
    const results = await Promise.all(
      shards.map((s) =>
        options.force
          ? this.client.leaseTakeover(2, this.keys.lease(s), this.keys.fence(s), this.owner, ttl)
          : this.client.leaseAcquire(2, this.keys.lease(s), this.keys.fence(s), this.owner, ttl),
      ),
    );
    const heldElsewhere = new Map<number, string>();
    results.forEach(([got, value], i) => {
      const shard = shards[i]!;
      if (got === 1) this.tokens.set(shard, value);
      else heldElsewhere.set(shard, value);
    });
    this.log.debug(
      { acquired: shards.length - heldElsewhere.size, heldElsewhere: heldElsewhere.size, force: options.force === true },
      'shard leases taken',
    );
    this.renewTimer ??= setInterval(() => void this.renew(), this.config.renewEveryMs).unref();
    return heldElsewhere;
  }

  /**
   * Drops a shard after a fenced write or a refused renewal: someone else owns it now. With
   * `token`, only if that is still the token held (a late rejection of an older token must not
   * drop a lease taken since).
   */
  lost(shard: number, reason: string, token?: string): void {
    if (token !== undefined && this.tokens.get(shard) !== token) return;
    if (!this.tokens.delete(shard)) return;
    this.log.error({ shard, reason }, 'shard lease lost');
    this.onLost(shard, reason);
  }

  /**
   * Forgets every token at once, without a word to Redis and without `onLost` (the self-fence:
   * the caller stops the shards itself). The leases lapse by themselves, or are taken over once
   * this node's heartbeat expired; a write with a forgotten token can no longer be made here.
   * Returns the tokens forgotten, by shard (`releaseForgotten` gives them back once Redis is reachable).
   */
  forgetAll(): Map<number, string> {
    const forgotten = new Map(this.tokens);
    this.tokens.clear();
    return forgotten;
  }

  /**
   * Gives back leases whose tokens `forgetAll` forgot (after a self-fence this node recovered
   * from), so their new owners need not wait for the lease TTL while this node is alive again.
   * Safe whatever happened since: the script frees a lease only if this node still holds it with
   * that very token (a takeover raised the fence). Returns how many were freed.
   */
  async releaseForgotten(forgotten: Iterable<readonly [number, string]>): Promise<number> {
    const freed = await Promise.all(
      [...forgotten].map(([s, token]) => this.client.leaseRelease(2, this.keys.lease(s), this.keys.fence(s), this.owner, token)),
    );
    return freed.filter((n) => n === 1).length;
  }

  /** Renews every owned lease; a refused renewal means the shard was taken over. */
  async renew(): Promise<void> {
    const owned = [...this.tokens];
    try {
      const results = await Promise.all(
        owned.map(([s, token]) =>
          this.client.leaseRenew(2, this.keys.lease(s), this.keys.fence(s), this.owner, String(this.config.ttlMs), token),
        ),
      );
      results.forEach((ok, i) => {
        const [shard, token] = owned[i]!;
        if (ok !== 1 && this.tokens.get(shard) === token) this.lost(shard, 'renewal refused: the lease or fence moved on');
      });
    } catch (err) {
      // Redis unreachable: keep the tokens; the fence script protects the data if we lose the leases meanwhile.
      this.log.warn({ err }, 'lease renewal failed');
    }
  }

  /** Gives these leases up (after their actors were flushed and stopped), so the new owner takes them at once. */
  async release(shards: readonly number[]): Promise<void> {
    const held = shards.flatMap((s) => {
      const token = this.tokens.get(s);
      return token === undefined ? [] : [[s, token] as const];
    });
    for (const [s] of held) this.tokens.delete(s);
    await Promise.all(held.map(([s, token]) => this.client.leaseRelease(2, this.keys.lease(s), this.keys.fence(s), this.owner, token)));
  }

  /** Gives every lease up (graceful shutdown), so a successor need not wait for the TTL. */
  async releaseAll(): Promise<void> {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined; // so that a later `acquire` starts renewing again
    const owned = [...this.tokens];
    this.tokens.clear();
    await Promise.all(
      owned.map(([s, token]) => this.client.leaseRelease(2, this.keys.lease(s), this.keys.fence(s), this.owner, token)),
    ).catch((err: unknown) => this.log.warn({ err }, 'lease release failed'));
  }
}
