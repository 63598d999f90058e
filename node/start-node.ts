/** The composition root: config → store → actor stack → cluster → hub ingress, hub command delivery and HTTP edge. */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ActorHost } from '../runtime/actor-host.ts';
import { MemoryCredentialStore, type CredentialStore } from '../edge-api/auth/credential-store.ts';
import { newSecret } from '../edge-api/auth/secrets.ts';
import { EventFeed } from '../edge-api/events/event-feed.ts';
import { createHttpApp } from '../edge-api/http/create-http-app.ts';
import { HubCommandDelivery } from '../edge-api/hub-ingress/hub-command-delivery.ts';
import { HubIngress } from '../edge-api/hub-ingress/hub-ingress.ts';
import { createRootLogger, type Logger } from '../runtime/logger.ts';
import { MemoryStore } from '../runtime/memory-store.ts';
import type { PersistencePort } from '../runtime/persistence-port.ts';
import { createActorStack, type ActorStack } from './actor-stack.ts';
import { ClusterBackend } from './cluster-backend.ts';
import { ConfigError, type NodeConfig } from './config.ts';
import { openRedisBackend } from './redis-backend.ts';

export interface StartOptions {
  readonly logger?: Logger;
  /** The actor store; default: the embedded memory store. */
  readonly store?: PersistencePort;
  readonly credentials?: CredentialStore;
  /** Milliseconds to let open HTTP streams (SSE) finish at shutdown before they are cut. */
  readonly shutdownGraceMs?: number;
}

/** A started node; `close` is the graceful shutdown that SIGTERM runs. */
export interface RunningNode {
  readonly nodeId: string;
  /** Actual ports (differ from the config when it asked for 0); undefined when the role is off. */
  readonly httpPort: number | undefined;
  readonly grpcPort: number | undefined;
  /** Node-to-node port (a cluster member: REDIS_URL set). */
  readonly peerPort: number | undefined;
  readonly adminToken: string;
  /** True when the admin token was generated (ADMIN_TOKEN unset): print it. */
  readonly adminTokenGenerated: boolean;
  readonly durable: boolean;
  readonly stack: ActorStack;
  readonly registry: Registry;
  close(): Promise<void>;
}

export async function startNode(config: NodeConfig, options: StartOptions = {}): Promise<RunningNode> {
  if (!config.roles.includes('actors')) {
    throw new ConfigError('ROLES must include actors: every node hosts its share of the shards');
  }
  const logger = options.logger ?? createRootLogger({ level: config.logLevel, base: { node: config.nodeId } });
  const log = logger.child({ component: 'node' });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Shards whose lease is lost stop their actors at once (late-bound: the host comes next).
  let evictShard: (shard: number) => void = () => {};
  const redis =
    config.redisUrl === undefined
      ? undefined
      : await openRedisBackend(
          {
            url: config.redisUrl,
            cluster: config.cluster,
            nodeId: config.nodeId,
            shards: config.shards,
            onShardLost: (shard) => evictShard(shard),
          },
          registry,
          logger,
        );
  const store = options.store ?? redis?.store ?? new MemoryStore();
  if (!store.durable) log.warn('state is kept in process memory and is NOT durable: set REDIS_URL for a durable store');
  const credentials = options.credentials ?? redis?.credentials ?? new MemoryCredentialStore();
  const feed = new EventFeed();
  const adminToken = config.adminToken ?? newSecret('admin');
  let ready = false;
  // With Redis the node is a cluster member (alone, or one of many): actors are routed by shard.
  const cluster = redis ? new ClusterBackend({ nodeId: config.nodeId, redis, registry, logger, autoJoin: config.autoJoin }) : undefined;

  // Built below, once the router it asks hub actors through exists (no effect runs before).
  let hubCommands: HubCommandDelivery | undefined;
  const stack = createActorStack(
    {
      store,
      logger,
      registry,
      hubCommands: {
        send: (homeId, hubId, command) => {
          if (!hubCommands) throw new Error('a hub command before the hub command delivery was built'); // a wiring bug: the dispatcher logs it
          hubCommands.send(homeId, hubId, command);
        },
      },
      publish: (homeId, topic, data) => feed.publish(homeId, topic, data),
      ...(redis ? { shardOf: redis.shardOf } : { shards: config.shards }),
      ...(cluster ? { routerFor: (host: ActorHost) => cluster.routerFor(host) } : {}),
    },
    { passivateAfterMs: config.passivateAfterMs },
  );
  if (redis) {
    evictShard = (shard) => {
      stack.host.evict((actorId) => redis.shardOf(actorId) === shard);
      cluster?.shardLost(shard);
    };
  }
  // The hub side: streams held here (the ingress role) and delivery of commands to them, here or
  // on the node holding the stream. Both exist before anything listens, so no effect finds them missing.
  const ingress = config.roles.includes('ingress')
    ? new HubIngress({
        router: stack.router,
        credentials,
        nodeId: config.nodeId,
        window: config.hubWindow,
        maxMessageBytes: config.maxHubMessageBytes,
        logger,
        registry,
      })
    : undefined;
  hubCommands = new HubCommandDelivery({
    nodeId: config.nodeId,
    router: stack.router,
    ...(ingress ? { sessions: ingress } : {}),
    ...(cluster ? { nodes: cluster.delivery } : {}),
    logger,
    registry,
  });

  const peerPort = cluster ? await cluster.listenForPeers(config.host, config.peerPort) : undefined;
  const grpcPort = ingress ? await ingress.listen(config.host, config.grpcPort) : undefined;

  let http: ServerType | undefined;
  let httpPort: number | undefined;
  if (config.roles.includes('edge')) {
    const app = createHttpApp({
      router: stack.router,
      credentials,
      feed,
      adminToken,
      registry,
      logger,
      maxBodyBytes: config.maxBodyBytes,
      rateLimit: config.rateLimit,
      // Answers 503 until the cluster has started (below): the server listens first, its port is registered.
      ...(cluster ? { cluster: cluster.adminPort } : {}),
      readiness: () => {
        const storeOk = redis?.store.healthy ?? true;
        return { ready: ready && storeOk, checks: { started: ready, store: storeOk } };
      },
    });
    const server = serve({ fetch: app.fetch, port: config.httpPort, hostname: config.host });
    http = server;
    httpPort = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => resolve((server.address() as AddressInfo).port));
    });
  }

  await cluster?.start({
    http: httpPort === undefined ? '' : `${config.host}:${httpPort}`,
    grpc: grpcPort === undefined ? '' : `${config.host}:${grpcPort}`,
    peer: `${config.host}:${peerPort}`,
  });
  ready = true;
  ingress?.setServing(true);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('shutting down');
      // Hand the shards to the other nodes first, while this node still forwards to them.
      if (cluster && config.autoJoin)
        await cluster.drain().catch((err: unknown) => log.error({ err }, 'drain failed; the leases will lapse'));
      ready = false;
      ingress?.setServing(false);
      await Promise.all([
        ingress?.close(),
        http &&
          new Promise<void>((resolve) => {
            const server = http as ServerType & { closeAllConnections?: () => void; closeIdleConnections?: () => void };
            const cut = setTimeout(() => server.closeAllConnections?.(), options.shutdownGraceMs ?? 2_000);
            server.close(() => {
              clearTimeout(cut);
              resolve();
            });
            server.closeIdleConnections?.();
          }),
      ]);
      await stack.host.close();
      await cluster?.close();
      // The Redis backend closes its own store: close each store once.
      if (store !== redis?.store) await store.close();
      await redis?.close();
      log.info('stopped');
    })();
    return closing;
  };

  return {
    nodeId: config.nodeId,
    httpPort,
    grpcPort,
    peerPort,
    adminToken,
    adminTokenGenerated: config.adminToken === undefined,
    durable: store.durable,
    stack,
    registry,
    close,
  };
}
