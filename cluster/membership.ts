/** Cluster membership in Redis: each node registers where it can be reached and keeps a heartbeat key alive. */
import type { Logger } from '../runtime/logger.ts';
import type { KeyLayout } from '../runtime/redis/key-layout.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';
import type { NodeInfo } from './cluster-types.ts';

export interface MembershipConfig {
  /** Milliseconds a heartbeat lives without refresh; it is refreshed every ttlMs / 3. A node whose heartbeat expired is down. */
  readonly ttlMs: number;
}

export const defaultMembershipConfig: MembershipConfig = { ttlMs: 6_000 };

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
  return { id: x.id, http: x.http, grpc: x.grpc, peer: x.peer, startedAt: x.startedAt };
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

  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
    private readonly self: NodeInfo,
    logger: Logger,
    config: Partial<MembershipConfig> = {},
  ) {
    this.config = { ...defaultMembershipConfig, ...config };
    if (!Number.isInteger(this.config.ttlMs) || this.config.ttlMs < 3) {
      throw new RangeError(`membership ttlMs must be an integer of at least 3 milliseconds, got ${this.config.ttlMs}`);
    }
    this.log = logger.child({ component: 'membership', node: self.id });
  }

  /** Registers this node and writes its first heartbeat (throws when Redis refuses), then refreshes it every ttlMs / 3. */
  async start(): Promise<void> {
    await this.register();
    this.log.info({ ttlMs: this.config.ttlMs }, 'node registered');
    this.timer ??= setInterval(() => this.beat(), Math.max(1, Math.floor(this.config.ttlMs / 3))).unref();
  }

  /**
   * A clean exit: stops refreshing and deletes the heartbeat, so other nodes see this one down
   * at once instead of after the TTL. The node record stays. Never throws: if Redis is
   * unreachable the heartbeat simply expires.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating; // a refresh landing after the DEL would bring the heartbeat back
    try {
      await this.client.del(this.keys.heartbeat(this.self.id));
      this.log.info('node left: heartbeat deleted');
    } catch (err) {
      this.log.warn({ err }, 'could not delete the heartbeat; it expires by itself');
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
    const results = await this.client
      .pipeline()
      .set(this.keys.node(this.self.id), JSON.stringify(this.self))
      .sadd(this.keys.nodes(), this.self.id)
      .set(this.keys.heartbeat(this.self.id), String(Date.now()), 'PX', this.config.ttlMs)
      .exec();
    for (const [err] of results ?? []) if (err) throw err;
  }

  private beat(): void {
    if (this.beating) return; // a slow refresh is still in flight (commandTimeout bounds it)
    this.beating = this.refresh().finally(() => (this.beating = undefined));
  }

  private async refresh(): Promise<void> {
    try {
      if (this.failing) await this.register();
      else await this.client.set(this.keys.heartbeat(this.self.id), String(Date.now()), 'PX', this.config.ttlMs);
      if (this.failing) this.log.info('heartbeat refreshed again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.error({ err }, 'heartbeat refresh failed; retrying (logged once per outage)');
      this.failing = true;
    }
  }
}
