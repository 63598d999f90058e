/** Wires a Redis-backed node into the cluster: shard manager, cluster router, peer transport, node delivery, membership, ring, admin. */
import type { Registry } from 'prom-client';
import { ClusterAdmin } from '../cluster/cluster-admin.ts';
import { ClusterNode } from '../cluster/cluster-node.ts';
import { ClusterRouter } from '../cluster/cluster-router.ts';
import { Membership } from '../cluster/membership.ts';
import { NodeDelivery } from '../cluster/node-delivery.ts';
import type { PeerClient } from '../cluster/peer-client.ts';
import { PeerPool } from '../cluster/peer-pool.ts';
import { PeerServer } from '../cluster/peer-server.ts';
import { RingStore } from '../cluster/ring-store.ts';
import { ShardManager } from '../cluster/shard-manager.ts';
import type { ClusterAdminPort } from '../edge-api/http/admin-routes.ts';
import { HttpError } from '../edge-api/http/http-error.ts';
import type { ActorHost } from '../runtime/actor-host.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisBackend } from './redis-backend.ts';

export interface ClusterBackendDeps {
  readonly nodeId: string;
  readonly redis: RedisBackend;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly autoJoin: boolean;
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
  /** Node-to-node delivery over the peer streams (hub commands travel on it); usable from construction. */
  readonly delivery: NodeDelivery;
  /** The admin routes' view of the cluster: answers 503 `unavailable` until `start` has run. */
  readonly adminPort: ClusterAdminPort;
  private admin: ClusterAdmin | undefined;
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
    this.delivery = new NodeDelivery(
      deps.nodeId,
      (node, channel, payload) => this.withPeer(node, (p) => p.deliver(channel, payload)),
      deps.logger,
    );
    const started = (): ClusterAdmin => {
      if (!this.admin) throw new HttpError('unavailable', 'the cluster is still starting: retry shortly');
      return this.admin;
    };
    this.adminPort = {
      status: () => started().status(),
      plan: (change) => started().plan(change),
      apply: (change) => started().apply(change),
    };
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
    this.router = new ClusterRouter({
      nodeId,
      host,
      shards: this.shards,
      shardOf: redis.shardOf,
      peers: {
        ask: async (node, actorId, msg, timeoutMs, hops, epoch) => this.withPeer(node, (p) => p.ask(actorId, msg, timeoutMs, hops, epoch)),
        tell: (node, actorId, msg, durable, hops, epoch) =>
          void this.withPeer(node, (p) => void p.tell(actorId, msg, durable, hops, epoch)),
      },
      // Before the node follows the ring there is nothing to catch up with.
      catchUp: (epoch) => this.node?.catchUp(epoch) ?? Promise.resolve(),
      logger,
      registry,
    });
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
        ask: (actorId, msg, timeoutMs, hops, epoch) => router.askFromPeer(actorId, msg, timeoutMs, hops, epoch),
        tell: (actorId, msg, durable, hops, epoch) => router.tellFromPeer(actorId, msg, durable, hops, epoch),
        deliver: (channel, payload, from) => this.delivery.receive(channel, payload, from),
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
    const node = new ClusterNode({
      self: { id: nodeId, ...addresses, startedAt: Date.now() },
      shardCount: redis.shardCount,
      ringStore,
      membership: this.membership,
      shards: this.shards,
      reroute: () => {
        void this.refreshAddresses();
        this.router.reroute();
      },
      autoJoin: this.deps.autoJoin,
      logger,
    });
    const admin = new ClusterAdmin(redis.client, redis.keys, nodeId, ringStore, this.membership, node, this.shards, logger);
    await this.refreshAddresses();
    await node.start();
    // Only a started node catches its ring up for peers (it has registered and adopted the ring by now).
    this.node = node;
    admin.startReporting();
    this.admin = admin;
    this.refresher = setInterval(() => void this.refreshAddresses(), 2_000);
    this.refresher.unref();
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

  /**
   * The peer client of `node`. A node that just joined owns shards as soon as the ring says so,
   * which can be before the address book (refreshed every 2 s and, asynchronously, on each new
   * epoch) knows it: look its address up before sending instead of failing `unavailable` (a
   * one-way message would be lost).
   */
  private withPeer<T>(node: string, send: (peer: PeerClient) => T): T | Promise<T> {
    return this.addresses.has(node) ? send(this.pool.get(node)) : this.refreshAddresses().then(() => send(this.pool.get(node)));
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
