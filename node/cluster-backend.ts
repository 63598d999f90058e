/** Wires a Redis-backed node into the cluster: shard manager, cluster router, peer transport, membership, ring, admin. */
import type { Registry } from 'prom-client';
import type { CommandDelivery } from '../actors/types.ts';
import { ClusterAdmin } from '../cluster/cluster-admin.ts';
import { ClusterNode } from '../cluster/cluster-node.ts';
import { ClusterRouter, type PeerPort } from '../cluster/cluster-router.ts';
import { Membership } from '../cluster/membership.ts';
import { PeerPool, type PeerClient } from '../cluster/peer-client.ts';
import { PeerServer } from '../cluster/peer-server.ts';
import { RingStore } from '../cluster/ring-store.ts';
import { ShardManager } from '../cluster/shard-manager.ts';
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisBackend } from './redis-backend.ts';

export interface ClusterBackendDeps {
  readonly nodeId: string;
  readonly redis: RedisBackend;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly autoJoin: boolean;
  /** Writes a command to a hub stream held by this node; false when it holds none. */
  readonly localHub: (homeId: string, hubId: string, command: CommandDelivery) => boolean;
}

/**
 * Built in two steps because of the cycle host ⇄ router: `routerFor(host)` (handed to the actor
 * stack) makes the shard manager and router; `start(addresses)` runs once the servers listen and
 * their ports are known.
 */
export class ClusterBackend {
  shards!: ShardManager;
  router!: ClusterRouter;
  node: ClusterNode | undefined;
  admin: ClusterAdmin | undefined;
  private membership: Membership | undefined;
  private peerServer: PeerServer | undefined;
  private readonly addresses = new Map<string, string>();
  private readonly pool: PeerPool;
  private refresher: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly deps: ClusterBackendDeps) {
    this.log = deps.logger.child({ component: 'cluster-backend' });
    this.pool = new PeerPool((id) => this.addresses.get(id), { nodeId: deps.nodeId, logger: deps.logger, registry: deps.registry });
  }

  routerFor(host: ActorHost): ClusterRouter {
    const { redis, nodeId, logger, registry } = this.deps;
    this.shards = new ShardManager({
      nodeId,
      shardCount: redis.shardCount,
      leases: redis.leases,
      host,
      shardOf: redis.shardOf,
      isAlive: async (id) => (this.membership ? (await this.membership.alive([id])).has(id) : true),
      onOwned: (shard) => this.router.onOwned(shard),
      logger,
      registry,
    });
    // A node that just joined owns shards as soon as the ring says so, which can be before the
    // address book (refreshed every 2 s and, asynchronously, on each new epoch) knows it: look its
    // address up before sending instead of failing `unavailable` (a one-way message would be lost).
    const withPeer = <T>(node: string, send: (peer: PeerClient) => T): T | Promise<T> =>
      this.addresses.has(node) ? send(this.pool.get(node)) : this.refreshAddresses().then(() => send(this.pool.get(node)));
    const peers: PeerPort = {
      ask: async (node, actorId, msg, timeoutMs, hops, epoch) => withPeer(node, (p) => p.ask(actorId, msg, timeoutMs, hops, epoch)),
      tell: (node, actorId, msg, durable, hops, epoch) => void withPeer(node, (p) => void p.tell(actorId, msg, durable, hops, epoch)),
      sendToHub: (node, homeId, hubId, command) => void withPeer(node, (p) => void p.sendToHub(homeId, hubId, command)),
    };
    this.router = new ClusterRouter(nodeId, host, this.shards, redis.shardOf, peers, logger);
    return this.router;
  }

  /** A shard's lease was lost (fenced, or renewal refused): its actors were evicted already. */
  shardLost(shard: number): void {
    this.shards?.lost(shard);
  }

  /** Listens for peers (port 0 = a free one); returns the port. */
  async listenForPeers(host: string, port: number): Promise<number> {
    const router = this.router;
    this.peerServer = new PeerServer({
      nodeId: this.deps.nodeId,
      handler: {
        ask: (actorId, msg, timeoutMs, hops) => router.ask(actorId, msg, timeoutMs, hops),
        tell: (actorId, msg, durable, hops) => void (durable ? router.deliver(actorId, msg, hops) : router.tell(actorId, msg, hops)),
        sendToHub: (homeId, hubId, command) => this.deps.localHub(homeId, hubId, command),
      },
      logger: this.deps.logger,
      registry: this.deps.registry,
    });
    return this.peerServer.listen(host, port);
  }

  /** Registers this node with its addresses, joins the ring (AUTO_JOIN) and starts following it. */
  async start(addresses: { http: string; grpc: string; peer: string }): Promise<void> {
    const { redis, nodeId, logger } = this.deps;
    this.membership = new Membership(redis.client, redis.keys, { id: nodeId, ...addresses, startedAt: Date.now() }, logger);
    const ringStore = new RingStore(redis.client, redis.keys, logger);
    this.node = new ClusterNode({
      self: { id: nodeId, ...addresses, startedAt: Date.now() },
      shardCount: redis.shardCount,
      ringStore,
      membership: this.membership,
      shards: this.shards,
      router: this.router,
      reroute: () => {
        void this.refreshAddresses();
        this.router.reroute();
      },
      localHub: this.deps.localHub,
      remoteHub: (node, homeId, hubId, command) => this.router.sendToHubOn(node, homeId, hubId, command),
      autoJoin: this.deps.autoJoin,
      logger,
    });
    this.admin = new ClusterAdmin(redis.client, redis.keys, nodeId, ringStore, this.membership, this.node, this.shards, logger);
    await this.refreshAddresses();
    await this.node.start();
    this.admin.startReporting();
    this.refresher = setInterval(() => void this.refreshAddresses(), 2_000);
    this.refresher.unref();
  }

  /** A command for a hub: its stream on this node, or on the node its hub actor names. */
  sendToHub(homeId: string, hubId: string, command: CommandDelivery): boolean {
    if (!this.node) return this.deps.localHub(homeId, hubId, command);
    void this.node.sendToHub(homeId, hubId, command).catch((err: unknown) => this.log.warn({ err, homeId, hubId }, 'command routing failed'));
    return true;
  }

  /** Hands every shard off and leaves the ring (SIGTERM with AUTO_JOIN). */
  async drain(): Promise<void> {
    await this.node?.drain();
  }

  async close(): Promise<void> {
    clearInterval(this.refresher);
    await this.admin?.stopReporting();
    this.router?.close();
    await this.node?.stop();
    await this.peerServer?.close();
    await this.pool.close();
  }

  /** Re-reads the address book; concurrent callers share one read (a burst of messages to a new node makes one). */
  private refreshAddresses(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        if (this.membership) for (const info of await this.membership.all()) if (info.peer) this.addresses.set(info.id, info.peer);
      } catch (err) {
        this.log.debug({ err }, 'could not refresh peer addresses');
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
