/** Routes actor messages by shard: served here, buffered while this node takes a shard over, or forwarded to its owner. */
import type { CommandDelivery } from '../actors/types.ts';
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import { runtimeError, type Result } from '../runtime/result.ts';
import type { ActorRouter } from './actor-router.ts';
import type { ShardManager } from './shard-manager.ts';

/** What the router needs of the peer transport (cluster/peer-client.ts). */
export interface PeerPort {
  ask(nodeId: string, actorId: string, msg: unknown, timeoutMs: number, hops: number, epoch: number): Promise<Result<unknown>>;
  tell(nodeId: string, actorId: string, msg: unknown, durable: boolean, hops: number, epoch: number): void;
  sendToHub(nodeId: string, homeId: string, hubId: string, command: CommandDelivery): void;
}

interface Waiting {
  readonly run: () => void;
  readonly fail: (result: Result<never>) => void;
}

export interface ClusterRouterConfig {
  /** Messages held per shard while this node acquires it; past it callers get `overloaded`. */
  readonly bufferPerShard: number;
  /** Forwarding hops before a message is refused (a ring that disagrees with itself). */
  readonly maxHops: number;
  /** Default ask deadline, milliseconds. */
  readonly askTimeoutMs: number;
}

export const defaultClusterRouterConfig: ClusterRouterConfig = { bufferPerShard: 10_000, maxHops: 3, askTimeoutMs: 5_000 };

/**
 * The ActorRouter of a cluster node, and the handler of messages peers forward to it. A message
 * for a shard this node owns goes to the local host; for a shard it is acquiring, it waits
 * (bounded) until the lease is taken; otherwise it goes to the owner by this node's table — the
 * owner re-routes it if its newer table says otherwise.
 */
export class ClusterRouter implements ActorRouter {
  private readonly config: ClusterRouterConfig;
  private readonly buffers = new Map<number, Waiting[]>();

  constructor(
    private readonly nodeId: string,
    private readonly host: ActorHost,
    private readonly shards: ShardManager,
    private readonly shardOf: (actorId: string) => number,
    private readonly peers: PeerPort,
    private readonly logger: Logger,
    config: Partial<ClusterRouterConfig> = {},
  ) {
    this.config = { ...defaultClusterRouterConfig, ...config };
  }

  ask<R = unknown>(actorId: string, msg: unknown, timeoutMs = this.config.askTimeoutMs, hops = 0): Promise<Result<R>> {
    const shard = this.shardOf(actorId);
    switch (this.shards.state(shard)) {
      case 'owned':
        return this.host.ask<R>(actorId, msg, timeoutMs);
      case 'acquiring':
        return new Promise((resolve) => {
          // The deadline runs while it waits too; whichever settles first wins.
          const waitStarted = Date.now();
          const settle = (r: Result<R>): void => {
            clearTimeout(timer);
            resolve(r);
          };
          const waiting: Waiting = {
            run: () => void this.ask<R>(actorId, msg, Math.max(1, timeoutMs - (Date.now() - waitStarted)), hops).then(settle),
            fail: settle,
          };
          const timer = setTimeout(() => {
            this.unhold(shard, waiting); // a caller that gave up neither counts against the bound nor runs later
            resolve(runtimeError('timeout', `shard ${shard} was still being taken over after ${timeoutMs} ms`));
          }, timeoutMs);
          const held = this.hold(shard, waiting);
          if (!held.ok) settle(held);
        });
      default: {
        const owner = this.shards.ownerOf(shard);
        if (owner === undefined || owner === this.nodeId || hops >= this.config.maxHops) {
          return Promise.resolve(runtimeError('unavailable', `shard ${shard} of ${actorId} has no reachable owner yet`));
        }
        return this.peers.ask(owner, actorId, msg, timeoutMs, hops + 1, this.shards.epoch) as Promise<Result<R>>;
      }
    }
  }

  tell(actorId: string, msg: unknown, hops = 0): Result<void> {
    return this.send(actorId, msg, false, hops);
  }

  deliver(actorId: string, msg: unknown, hops = 0): Result<void> {
    return this.send(actorId, msg, true, hops);
  }

  /** Runs what waited for a shard this node now owns. */
  onOwned(shard: number): void {
    const waiting = this.buffers.get(shard);
    if (!waiting) return;
    this.buffers.delete(shard);
    for (const w of waiting) w.run();
  }

  /** Sends what waited for shards this node no longer acquires to their new owners. */
  reroute(): void {
    for (const [shard, waiting] of this.buffers) {
      if (this.shards.state(shard) === 'acquiring') continue;
      this.buffers.delete(shard);
      for (const w of waiting) w.run();
    }
  }

  /** Fails everything still waiting (shutdown). */
  close(): void {
    for (const waiting of this.buffers.values()) for (const w of waiting) w.fail(runtimeError('stopping', 'the node is shutting down'));
    this.buffers.clear();
  }

  /** A command for a hub whose stream another node holds. */
  sendToHubOn(nodeId: string, homeId: string, hubId: string, command: CommandDelivery): void {
    this.peers.sendToHub(nodeId, homeId, hubId, command);
  }

  private send(actorId: string, msg: unknown, durable: boolean, hops: number): Result<void> {
    const shard = this.shardOf(actorId);
    switch (this.shards.state(shard)) {
      case 'owned':
        return durable ? this.host.deliver(actorId, msg) : this.host.tell(actorId, msg);
      case 'acquiring':
        return this.hold(shard, { run: () => void this.send(actorId, msg, durable, hops), fail: () => {} });
      default: {
        const owner = this.shards.ownerOf(shard);
        if (owner === undefined || owner === this.nodeId || hops >= this.config.maxHops) {
          this.logger.warn({ actorId, shard, hops }, 'message without a reachable owner dropped');
          return runtimeError('unavailable', `shard ${shard} of ${actorId} has no reachable owner yet`);
        }
        this.peers.tell(owner, actorId, msg, durable, hops + 1, this.shards.epoch);
        return { ok: true, value: undefined };
      }
    }
  }

  private unhold(shard: number, w: Waiting): void {
    const waiting = this.buffers.get(shard);
    const i = waiting?.indexOf(w) ?? -1;
    if (i >= 0) waiting!.splice(i, 1);
  }

  private hold(shard: number, w: Waiting): Result<void> {
    let waiting = this.buffers.get(shard);
    if (!waiting) this.buffers.set(shard, (waiting = []));
    if (waiting.length >= this.config.bufferPerShard) {
      return runtimeError('overloaded', `shard ${shard} is being taken over and ${waiting.length} messages already wait for it`);
    }
    waiting.push(w);
    return { ok: true, value: undefined };
  }
}
