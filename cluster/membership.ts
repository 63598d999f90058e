/** Cluster membership in Redis: each node registers where it can be reached and keeps a heartbeat key alive. */
import type { Logger } from '../runtime/logger.ts';
import type { KeyLayout } from '../runtime/redis/key-layout.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';
import type { NodeInfo } from './cluster-types.ts';

export interface MembershipConfig {
  /**
   * Milliseconds a heartbeat lives without refresh (HEARTBEAT_TTL_MS); it is refreshed every
   * ttlMs / 5. A node whose heartbeat expired in Redis is down: Redis measures the TTL, so it
   * alone judges. A node that could not refresh its own for ttlMs − selfFenceMarginMs(ttlMs)
   * stops serving (`mayServe`).
   */
  readonly ttlMs: number;
  /** Monotonic milliseconds (default `performance.now`): the self-fence deadline is measured on it. */
  readonly clock?: () => number;
  /**
   * Heartbeats and registrations on a connection of their own (`client.duplicate()`, opened by
   * `start`, closed by `stop`), so a slow window script or a WAIT on the data connection never
   * delays them (default false: on the client given; the node sets it).
   */
  readonly ownConnection?: boolean;
}

/** The same default as HEARTBEAT_TTL_MS (node/config.ts). */
export const defaultMembershipConfig: MembershipConfig = { ttlMs: 2_000 };

/** Refreshes per TTL: a heartbeat survives four refreshes lost in a row. */
export const HEARTBEAT_REFRESHES_PER_TTL = 5;

/**
 * Milliseconds before its heartbeat could expire at which a node that has not refreshed it stops
 * serving: max(200 ms, ttl / 10), at most a quarter of the TTL. It covers the time between the
 * check and the last use of a shard, and the two clocks' rates (the node's and Redis').
 */
export function selfFenceMarginMs(ttlMs: number): number {
  return Math.min(Math.max(200, ttlMs / 10), ttlMs / 4);
}

/** Parses a stored node record; throws naming the key when it is not one. */
function decodeNode(json: string, key: string): NodeInfo {
  const x = JSON.parse(json) as Partial<Record<keyof NodeInfo, unknown>>;
  if (
    typeof x.id !== 'string' ||
    typeof x.http !== 'string' ||
    typeof x.grpc !== 'string' ||
    typeof x.peer !== 'string' ||
    typeof x.startedAt !== 'number'
  ) {
    throw new Error(`${key} does not hold a node record`);
  }
  const node = { id: x.id, http: x.http, grpc: x.grpc, peer: x.peer, startedAt: x.startedAt };
  // Older nodes did not record their TTL: readers assume the default then.
  const ttl = x.heartbeatTtlMs;
  return typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 ? { ...node, heartbeatTtlMs: ttl } : node;
}

/**
 * This node's registration (`keys.node(id)`, listed in `keys.nodes()`) and heartbeat
 * (`keys.heartbeat(id)`, TTL `ttlMs`), and the view of the other nodes. Every membership key
 * shares one hash tag, so the multi-key reads here work on Redis Cluster too.
 */
export class Membership {
  private readonly config: MembershipConfig;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  /** True from the first failed heartbeat until one succeeds: the outage is logged once. */
  private failing = false;
  private readonly clock: () => number;
  /** Clock ms at which the last heartbeat write that succeeded was sent; -Infinity before the first and after `stop`. */
  private lastSentAt = Number.NEGATIVE_INFINITY;
  /** Clock ms until which this node may serve its shards: lastSentAt + ttlMs − margin. */
  private deadline = Number.NEGATIVE_INFINITY;
  private readonly marginMs: number;
  /**
   * Latched once the deadline passed (seen by `mayServe`, or by a refresh reply landing late):
   * `mayServe` stays false until `resume`, so every lapse goes through the fence (evict, new
   * tokens) even when a refresh sent before the deadline lands after it.
   */
  private lapsed = false;
  /** Where heartbeats and registrations go: `client`, or its duplicate between `start` and `stop` (`ownConnection`). */
  private beatClient: RedisClient;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
    private readonly self: NodeInfo,
    logger: Logger,
    config: Partial<MembershipConfig> = {},
  ) {
    this.config = { ...defaultMembershipConfig, ...config };
    if (!Number.isInteger(this.config.ttlMs) || this.config.ttlMs < HEARTBEAT_REFRESHES_PER_TTL) {
      throw new RangeError(
        `membership ttlMs must be an integer of at least ${HEARTBEAT_REFRESHES_PER_TTL} milliseconds, got ${this.config.ttlMs}`,
      );
    }
    this.clock = this.config.clock ?? (() => performance.now());
    this.marginMs = selfFenceMarginMs(this.config.ttlMs);
    this.log = logger.child({ component: 'membership', node: self.id });
    this.beatClient = client;
  }

  get ttlMs(): number {
    return this.config.ttlMs;
  }

  /** Milliseconds between heartbeat refreshes: ttlMs / 5. */
  get refreshEveryMs(): number {
    return Math.max(1, Math.floor(this.config.ttlMs / HEARTBEAT_REFRESHES_PER_TTL));
  }

  /**
   * Whether this node may serve its shards right now: its last successful heartbeat was sent less
   * than ttlMs − margin ago (by the monotonic clock). Redis expires the heartbeat no earlier than
   * ttlMs after that send, and only then may another node take this one's shards: a node that
   * answers false has stopped before anyone else may start. A clock comparison: cheap enough for
   * every message. False before `start` and after `stop`. Once false after the deadline passed,
   * it stays false (latched) until `resume`, even when a refresh lands meanwhile.
   */
  mayServe(): boolean {
    if (this.lapsed) return false;
    if (this.clock() <= this.deadline) return true;
    if (Number.isFinite(this.deadline)) this.lapsed = true;
    return false;
  }

  /** Whether the last successful heartbeat is recent enough to serve (the deadline, ignoring the latch): a fenced node may recover. */
  get fresh(): boolean {
    return this.clock() <= this.deadline;
  }

  /** Whether a lapse is latched (`mayServe` false until `resume`). */
  get hasLapsed(): boolean {
    return this.lapsed;
  }

  /**
   * Clears a latched lapse once the heartbeat is fresh again (the self-fence ran: actors evicted,
   * tokens forgotten). Returns whether this node may serve now; false (and still latched) when stale.
   */
  resume(): boolean {
    if (!this.fresh) return false;
    this.lapsed = false;
    return true;
  }

  /** Clock ms until which `mayServe` holds (-Infinity before the first heartbeat). */
  get servingDeadline(): number {
    return this.deadline;
  }

  /** Registers this node and writes its first heartbeat (throws when Redis refuses), then refreshes it every ttlMs / 5. */
  async start(): Promise<void> {
    if (this.config.ownConnection && this.beatClient === this.client) {
      const own = this.client.duplicate();
      own.on('error', () => {}); // failures are logged by the refresh (once per outage)
      try {
        await own.connect();
      } catch (err) {
        own.disconnect();
        throw err;
      }
      this.beatClient = own;
    }
    const sentAt = this.clock();
    await this.register();
    this.sent(sentAt);
    this.log.info({ ttlMs: this.config.ttlMs, refreshEveryMs: this.refreshEveryMs }, 'node registered');
    this.timer ??= setInterval(() => this.beat(), this.refreshEveryMs).unref();
  }

  /**
   * A clean exit: stops refreshing and deletes the heartbeat, so other nodes see this one down
   * at once instead of after the TTL. The node record stays. Never throws: if Redis is
   * unreachable the heartbeat simply expires.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // Other nodes see this one down as soon as the heartbeat is gone: it serves nothing from now on.
    this.lastSentAt = this.deadline = Number.NEGATIVE_INFINITY;
    await this.beating; // a refresh landing after the DEL would bring the heartbeat back
    try {
      await this.beatClient.del(this.keys.heartbeat(this.self.id));
      this.log.info('node left: heartbeat deleted');
    } catch (err) {
      this.log.warn({ err }, 'could not delete the heartbeat; it expires by itself');
    }
    if (this.beatClient !== this.client) {
      this.beatClient.disconnect();
      this.beatClient = this.client;
    }
  }

  /** Which of `ids` have a live heartbeat (one pipelined round trip). */
  async alive(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const pipeline = this.client.pipeline();
    for (const id of ids) pipeline.exists(this.keys.heartbeat(id));
    const results = (await pipeline.exec()) ?? [];
    const live = new Set<string>();
    results.forEach(([err, n], i) => {
      if (err) throw err;
      if (n === 1) live.add(ids[i]!);
    });
    return live;
  }

  /**
   * Milliseconds node `id`'s heartbeat has left to live in Redis (PTTL), or undefined when it has
   * expired (or was deleted). A heartbeat without a TTL (PTTL -1, written by hand) lives: Infinity.
   */
  async heartbeatLeftMs(id: string): Promise<number | undefined> {
    const ms = await this.client.pttl(this.keys.heartbeat(id));
    if (ms === -1) return Number.POSITIVE_INFINITY;
    return ms < 0 ? undefined : ms;
  }

  /** The registered record of node `id`, alive or not. */
  async info(id: string): Promise<NodeInfo | undefined> {
    const key = this.keys.node(id);
    const raw = await this.client.get(key);
    return raw === null ? undefined : decodeNode(raw, key);
  }

  /** Every registered node (alive or not), by id. */
  async all(): Promise<NodeInfo[]> {
    const ids = (await this.client.smembers(this.keys.nodes())).sort();
    if (ids.length === 0) return [];
    const keys = ids.map((id) => this.keys.node(id));
    const raws = await this.client.mget(...keys);
    const nodes: NodeInfo[] = [];
    raws.forEach((raw, i) => {
      if (raw !== null) nodes.push(decodeNode(raw, keys[i]!)); // listed but never fully written: skipped
    });
    return nodes;
  }

  /** Record, listing and heartbeat in one round trip (at start, and after an outage in case Redis lost them). */
  private async register(): Promise<void> {
    const results = await this.beatClient
      .pipeline()
      .set(this.keys.node(this.self.id), JSON.stringify({ ...this.self, heartbeatTtlMs: this.config.ttlMs }))
      .sadd(this.keys.nodes(), this.self.id)
      .set(this.keys.heartbeat(this.self.id), String(Date.now()), 'PX', this.config.ttlMs)
      .exec();
    for (const [err] of results ?? []) if (err) throw err;
  }

  private beat(): void {
    if (this.beating) return; // a slow refresh is still in flight (commandTimeout bounds it)
    this.beating = this.refresh().finally(() => (this.beating = undefined));
  }

  /**
   * A heartbeat write sent at clock ms `sentAt` succeeded: the serving deadline moves on (never
   * back). A reply landing after the deadline passed latches the lapse first: the node paused (or
   * Redis was slow) past it, and whatever it served before must go through the fence.
   */
  private sent(sentAt: number): void {
    if (Number.isFinite(this.deadline) && this.clock() > this.deadline) this.lapsed = true;
    if (sentAt <= this.lastSentAt) return;
    this.lastSentAt = sentAt;
    this.deadline = sentAt + this.config.ttlMs - this.marginMs;
  }

  private async refresh(): Promise<void> {
    // Taken before the write: Redis starts the TTL when the write arrives, never earlier.
    const sentAt = this.clock();
    try {
      if (this.failing) await this.register();
      else await this.beatClient.set(this.keys.heartbeat(this.self.id), String(Date.now()), 'PX', this.config.ttlMs);
      if (this.timer === undefined) return; // stopped while the write was in flight: serve nothing more
      this.sent(sentAt);
      if (this.failing) this.log.info('heartbeat refreshed again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.error({ err }, 'heartbeat refresh failed; retrying (logged once per outage)');
      this.failing = true;
    }
  }
}
