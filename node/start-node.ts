/** The composition root: config → store → actor stack → cluster → hub ingress, hub command delivery and HTTP edge. */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ActorHost } from '../runtime/actor-host.ts';
import { MemoryAuditLog } from '../edge-api/audit/memory-audit-log.ts';
import { RedisAuditLog } from '../edge-api/audit/redis-audit-log.ts';
import { MemoryCredentialStore, type CredentialStore } from '../edge-api/auth/credential-store.ts';
import { newSecret } from '../edge-api/auth/secrets.ts';
import { EventFeed } from '../edge-api/events/event-feed.ts';
import type { HomeEventFeed } from '../edge-api/events/home-event-feed.ts';
import { RedisEventFeed } from '../edge-api/events/redis-event-feed.ts';
import { shardOfHome } from '../cluster/shard-of.ts';
import { createHttpApp } from '../edge-api/http/create-http-app.ts';
import { openGrantConnection } from '../edge-api/http/bucket-grants.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';
import { createMetricsApp } from '../edge-api/http/metrics-endpoint.ts';
import { HubCommandDelivery } from '../edge-api/hub-ingress/hub-command-delivery.ts';
import { HubIngress } from '../edge-api/hub-ingress/hub-ingress.ts';
import { createRootLogger, type Logger } from '../runtime/logger.ts';
import { MemoryStore } from '../runtime/memory-store.ts';
import type { PersistencePort } from '../runtime/persistence-port.ts';
import { createActorStack, type ActorStack } from './actor-stack.ts';
import { hostPort } from '../cluster/grpc-server.ts';
import { advertisedHost, advertisedPeerHost, ClusterBackend, resolvePeerAuth, unreachablePeerHost } from './cluster-backend.ts';
import { checkRoles, type NodeConfig } from './config.ts';
import { drainWithin } from './drain-deadline.ts';
import { listenHttp, type HttpListener } from './http-listener.ts';
import { listenOn } from './port-taken-error.ts';
import { checkPeerCaIsOwn, readTlsMaterial, warnIfPlaintext } from './tls-material.ts';
import { openRedisBackend } from './redis-backend.ts';
import { registerNodeHealthMetrics } from './node-health-metrics.ts';

export interface StartOptions {
  readonly logger?: Logger;
  /** The actor store; default: the embedded memory store. */
  readonly store?: PersistencePort;
  readonly credentials?: CredentialStore;
  /** Milliseconds to let open HTTP streams (SSE) finish at shutdown before they are cut; default HTTP_SHUTDOWN_GRACE_MS. */
  readonly shutdownGraceMs?: number;
  /**
   * Aborts the start (a signal while it waits for Redis, say): the step in progress is abandoned
   * (what it still opens is closed when it settles), whatever started is stopped, and startNode
   * rejects with the signal's reason. The ring join is the exception: once begun it finishes, and
   * the node then shuts down as a running one does (drained out of the ring, then closed) before
   * startNode rejects: a join abandoned midway would leave the node in the ring, never drained.
   */
  readonly signal?: AbortSignal;
}

/** Default of StartOptions.shutdownGraceMs: open HTTP streams (SSE) get this long to finish at shutdown. */
export const HTTP_SHUTDOWN_GRACE_MS = 2_000;

/**
 * Whether `err`, a rejection of startNode, means the start was aborted by `signal` (it is the
 * signal's reason), rather than a failure of the start's own that a signal merely followed.
 */
export function abortedBy(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted && err === signal.reason;
}

/** A started node; `close` is the graceful shutdown that SIGTERM runs. */
export interface RunningNode {
  readonly nodeId: string;
  /** Actual ports (differ from the config when it asked for 0); undefined when the role is off. */
  readonly httpPort: number | undefined;
  readonly grpcPort: number | undefined;
  /** Node-to-node port (a cluster member: REDIS_URL set). */
  readonly peerPort: number | undefined;
  /** Port of the unauthenticated `/metrics` server (METRICS_PORT set), else undefined (`/metrics` is on the HTTP port, admin only). */
  readonly metricsPort: number | undefined;
  /**
   * `host:port` where others reach each server (as the cluster registers them): an IPv6 host
   * bracketed, a wildcard bind (0.0.0.0, ::) replaced by a reachable host; undefined when off.
   */
  readonly addresses: { readonly http: string | undefined; readonly grpc: string | undefined; readonly peer: string | undefined };
  readonly adminToken: string;
  /** True when the admin token was generated (ADMIN_TOKEN unset): print it. */
  readonly adminTokenGenerated: boolean;
  readonly durable: boolean;
  readonly stack: ActorStack;
  readonly registry: Registry;
  close(): Promise<void>;
}

/**
 * Starts a node. When a step fails (a port taken, Redis refusing, a bad file), whatever started
 * before it is stopped again, last first, and the error is rethrown: a failed start leaves no
 * port bound, no Redis connection, lease or timer behind (a supervisor may retry in-process).
 */
export async function startNode(config: NodeConfig, options: StartOptions = {}): Promise<RunningNode> {
  const undo: (() => unknown)[] = [];
  let node: RunningNode;
  try {
    node = await startSteps(config, options, (stop) => void undo.push(stop));
  } catch (err) {
    for (const stop of undo.reverse()) {
      try {
        await stop();
      } catch {
        // The start's own error is the one to report; the parts started before this one still stop.
      }
    }
    throw err;
  }
  // Aborted during the ring join (the last step, never abandoned midway): the node has joined, so
  // it leaves as a running node does (drained, bounded by DRAIN_TIMEOUT_MS, then closed) instead
  // of staying in the ring unwatched.
  if (options.signal?.aborted) {
    await node.close();
    throw options.signal.reason;
  }
  return node;
}

/**
 * `step` unless `signal` aborts first: then rejects with its reason at once, and whatever `step`
 * still yields is given to `undo` (the start no longer owns it).
 */
async function abortable<T>(signal: AbortSignal | undefined, step: Promise<T>, undo: (value: T) => unknown = () => {}): Promise<T> {
  if (!signal) return step;
  if (signal.aborted) {
    step.then(undo, () => {});
    throw signal.reason;
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(asError(signal.reason));
      step.then(undo, () => {});
    };
    signal.addEventListener('abort', onAbort, { once: true });
    step.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (!signal.aborted) resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!signal.aborted) reject(asError(err));
      },
    );
  });
}

/** Rejections carry Errors: an abort reason is one unless a caller chose otherwise (then wrapped). */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason), { cause: reason });
}

/** The steps of `startNode`; `started(stop)` registers how to undo a step once it has run. */
async function startSteps(config: NodeConfig, options: StartOptions, started: (stop: () => unknown) => void): Promise<RunningNode> {
  checkRoles(config.roles);
  const logger = options.logger ?? createRootLogger({ level: config.logLevel, base: { node: config.nodeId } });
  const log = logger.child({ component: 'node' });
  const { signal } = options;
  signal?.throwIfAborted();
  // Read before anything starts: a missing or unreadable file stops the node with the variable's name.
  const httpTls = config.roles.includes('edge') ? readTlsMaterial(config.httpTls, 'HTTP_TLS') : undefined;
  const hubTls = config.roles.includes('ingress') ? readTlsMaterial(config.hubTls, 'HUB_TLS') : undefined;
  const peerTls = config.redisUrl === undefined ? undefined : readTlsMaterial(config.peerTls, 'PEER_TLS');
  checkPeerCaIsOwn(peerTls, { HUB_TLS: hubTls, HTTP_TLS: httpTls });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Shards whose lease is lost stop their actors at once (late-bound: the host comes next).
  let evictShard: (shard: number) => void = () => {};
  const redis =
    config.redisUrl === undefined
      ? undefined
      : await abortable(
          signal,
          openRedisBackend(
            {
              url: config.redisUrl,
              cluster: config.cluster,
              nodeId: config.nodeId,
              shards: config.shards,
              eventLog: config.eventLog,
              onShardLost: (shard) => evictShard(shard),
              waitReplicas: config.redisWaitReplicas,
              waitTimeoutMs: config.redisWaitTimeoutMs,
              heartbeatTtlMs: config.heartbeatTtlMs,
            },
            registry,
            logger,
          ),
          (late) => late.close(),
        );
  if (redis) started(() => redis.close());
  const store = options.store ?? redis?.store ?? new MemoryStore();
  // The Redis backend closes its own store: close each store once (as `close` does).
  if (store !== redis?.store) started(() => store.close());
  if (!store.durable) log.warn('state is kept in process memory and is NOT durable: set REDIS_URL for a durable store');
  const credentials = options.credentials ?? redis?.credentials ?? new MemoryCredentialStore();
  // Apps' events: with the Redis store each home's event log is written with its steps and read
  // by every node (resumable anywhere); otherwise a process-local feed the effects publish to.
  const logEvents = redis !== undefined && store === redis.store;
  const memoryFeed = logEvents ? undefined : new EventFeed({ bufferPerHome: config.eventLog.length });
  const feed: HomeEventFeed =
    memoryFeed ??
    new RedisEventFeed({
      client: redis!.client,
      keys: redis!.keys,
      shardOfHome: (homeId) => shardOfHome(homeId, redis!.shardCount),
      logger,
      logLength: config.eventLog.length,
    });
  if (feed instanceof RedisEventFeed) started(() => feed.close());
  // Admin actions and app writes: the cluster's audit streams in Redis, else a bounded memory log.
  const audit = redis ? new RedisAuditLog({ client: redis.client, keys: redis.keys, registry, logger }) : new MemoryAuditLog();
  started(() => audit.settled());
  const adminToken = config.adminToken ?? newSecret('admin');
  let ready = false;
  // What /readyz answers, and iot_node_ready reports.
  const readiness = (): { ready: boolean; checks: { started: boolean; store: boolean } } => {
    const storeOk = redis?.store.healthy ?? true;
    return { ready: ready && storeOk, checks: { started: ready, store: storeOk } };
  };
  // With Redis the node is a cluster member (alone, or one of many): actors are routed by shard.
  // Its peer port is never open: PEER_SECRET, PEER_TLS, or the secret the cluster keeps in Redis.
  const cluster = redis
    ? new ClusterBackend({
        nodeId: config.nodeId,
        redis,
        peerAuth: await abortable(signal, resolvePeerAuth(config, redis, peerTls)),
        registry,
        logger,
        autoJoin: config.autoJoin,
        heartbeatTtlMs: config.heartbeatTtlMs,
      })
    : undefined;
  // Closes whatever of it has started: the peer pool now, later the peer server, ring and reporting.
  if (cluster) started(() => cluster.close());
  registerNodeHealthMetrics(registry, {
    ready: () => readiness().ready,
    // Without Redis this node is the whole cluster.
    inRing: () => (cluster ? cluster.node?.inRing === true : true),
    ringNodes: () => (cluster ? (cluster.node?.ringDoc?.nodes ?? []) : [{ state: 'active' }]),
  });

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
        endSession: (end) => {
          if (!hubCommands) throw new Error('a hub session end before the hub command delivery was built');
          hubCommands.endSession(end);
        },
        sendDesired: (homeId, hubId, desired) => {
          if (!hubCommands) throw new Error('a desired delta before the hub command delivery was built');
          hubCommands.sendDesired(homeId, hubId, desired);
        },
      },
      publish: (homeId, topic, data) => memoryFeed?.publish(homeId, topic, data),
      logEvents,
      ...(redis ? { shardOf: redis.shardOf } : { shards: config.shards }),
      ...(cluster ? { routerFor: (host: ActorHost) => cluster.routerFor(host) } : {}),
    },
    { passivateAfterMs: config.passivateAfterMs },
  );
  started(() => stack.host.close());
  if (redis) {
    evictShard = (shard) => {
      stack.host.dropShard(shard);
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
        helloTimeoutMs: config.hubHelloTimeoutMs,
        idleMs: config.hubIdleMs,
        maxConnections: config.hubMaxConnections,
        outboundQueue: config.hubOutboundQueue,
        ...(hubTls ? { tls: hubTls } : {}),
        logger,
        registry,
      })
    : undefined;
  if (ingress) started(() => ingress.close());
  hubCommands = new HubCommandDelivery({
    nodeId: config.nodeId,
    router: stack.router,
    ...(ingress ? { sessions: ingress } : {}),
    ...(cluster ? { nodes: cluster.delivery } : {}),
    logger,
    registry,
  });

  // A port held by another process fails the start with a PortTakenError naming its variable.
  const peerPort = cluster
    ? await listenOn('PEER_PORT', config.peerHost, config.peerPort, () => cluster.listenForPeers(config.peerHost, config.peerPort))
    : undefined;
  const unreachable = cluster ? unreachablePeerHost(config.peerHost, config.host, config.advertiseHost) : undefined;
  if (unreachable) log.error({ peerHost: config.peerHost, host: config.host, advertiseHost: config.advertiseHost }, unreachable);
  signal?.throwIfAborted();
  const grpcPort = ingress
    ? await listenOn('GRPC_PORT', config.host, config.grpcPort, () => ingress.listen(config.host, config.grpcPort))
    : undefined;
  if (ingress)
    warnIfPlaintext(log, {
      name: 'the hub ingress',
      protocol: 'gRPC',
      host: config.host,
      port: grpcPort,
      tls: hubTls !== undefined,
      hint: 'set HUB_TLS_CERT and HUB_TLS_KEY',
    });

  let http: HttpListener | undefined;
  let httpPort: number | undefined;
  // The rate-limit grants' own connection: the shard windows queued on the node's one do not delay them.
  let grantConnection: RedisClient | undefined;
  if (config.roles.includes('edge')) {
    if (redis) {
      const conn = await openGrantConnection(redis.client, logger);
      grantConnection = conn;
      started(() => conn.disconnect());
    }
    const app = createHttpApp({
      router: stack.router,
      credentials,
      feed,
      adminToken,
      registry,
      logger,
      maxBodyBytes: config.maxBodyBytes,
      accessLog: config.accessLog,
      rateLimit: config.rateLimit,
      // With Redis the limits hold cluster-wide: one bucket per token and per home, shared by every node.
      ...(redis && grantConnection
        ? { sharedRateLimit: { client: grantConnection, keys: redis.keys, grantTimeoutMs: config.rateLimit.redisTimeoutMs } }
        : {}),
      sseLimit: config.sseLimit,
      // With METRICS_PORT the metrics server serves /metrics; otherwise the app port does, to the admin token.
      serveMetrics: config.metricsPort === undefined,
      audit,
      nodeId: config.nodeId,
      // Answers 503 until the cluster has started (below): the server listens first, its port is registered.
      ...(cluster ? { cluster: cluster.adminPort } : {}),
      readiness,
    });
    http = await listenOn('HTTP_PORT', config.host, config.httpPort, () =>
      listenHttp(app.fetch, {
        name: 'HTTP edge',
        host: config.host,
        port: config.httpPort,
        tls: httpTls,
        plaintextHint: 'set HTTP_TLS_CERT and HTTP_TLS_KEY, or bind HOST to loopback behind a TLS proxy',
        log,
      }),
    );
    started(() => http?.close(0));
    httpPort = http.port;
  }
  signal?.throwIfAborted();
  // Unauthenticated plaintext by design: bound on METRICS_HOST (loopback by default), never on the
  // public HOST; listenHttp warns when METRICS_HOST is not loopback.
  const { metricsPort } = config;
  const metrics =
    metricsPort === undefined
      ? undefined
      : await listenOn('METRICS_PORT', config.metricsHost, metricsPort, () =>
          listenHttp(createMetricsApp(registry).fetch, {
            name: 'metrics',
            host: config.metricsHost,
            port: metricsPort,
            plaintextHint:
              'METRICS_PORT serves /metrics without authentication or TLS: set METRICS_HOST to loopback or to a network only the scraper reaches',
            log,
          }),
        );
  if (metrics) started(() => metrics.close(0));

  // Where others reach each server: registered with the cluster, printed by `npm start`.
  const addresses = {
    http: httpPort === undefined ? undefined : hostPort(advertisedHost(config.host, config.advertiseHost), httpPort),
    grpc: grpcPort === undefined ? undefined : hostPort(advertisedHost(config.host, config.advertiseHost), grpcPort),
    // Where the other nodes dial: ADVERTISE_HOST, else PEER_HOST, or a reachable name when it binds every interface.
    peer: peerPort === undefined ? undefined : hostPort(advertisedPeerHost(config.peerHost, config.host, config.advertiseHost), peerPort),
  };
  // The last moment a signal stops the start before this node is in the ring.
  signal?.throwIfAborted();
  // Not abortable: a join abandoned midway would finish on its own after the undo (adding this node
  // to the ring, heartbeat and ring watch running). Bounded by Redis's command timeout; a signal
  // meanwhile is handled by startNode once it is done (drain, then close).
  await cluster?.start({ http: addresses.http ?? '', grpc: addresses.grpc ?? '', peer: addresses.peer ?? '' });
  // A node aborted during the join is never reported ready: it only drains and closes.
  if (!signal?.aborted) {
    ready = true;
    ingress?.setServing(true);
  }
  let closing: Promise<void> | undefined;
  // What each step below may take is added up in node/shutdown-budget.ts (SHUTDOWN_AFTER_DRAIN_MS): keep the two in step.
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('shutting down');
      // Hand the shards to the other nodes first, while this node still forwards to them.
      // Bounded by DRAIN_TIMEOUT_MS: past it the drain is stopped and the node closes anyway.
      if (cluster && config.autoJoin)
        await drainWithin((stop) => cluster.drain(stop), { timeoutMs: config.drainTimeoutMs, nodeId: config.nodeId, log });
      ready = false;
      ingress?.setServing(false);
      const graceMs = options.shutdownGraceMs ?? HTTP_SHUTDOWN_GRACE_MS;
      await Promise.all([ingress?.close(), http?.close(graceMs), metrics?.close(graceMs)]);
      grantConnection?.disconnect();
      // The event streams are closed with the HTTP server: the feed's subscriber connection goes too.
      if (feed instanceof RedisEventFeed) await feed.close();
      await stack.host.close();
      await cluster?.close();
      // The Redis backend closes its own store: close each store once.
      if (store !== redis?.store) await store.close();
      // The audit entries of the last requests land before the connection closes.
      await audit.settled();
      // No "stopped" line here: main prints it once the tracing exporter has flushed too.
      await redis?.close();
    })();
    return closing;
  };

  return {
    nodeId: config.nodeId,
    httpPort,
    grpcPort,
    peerPort,
    metricsPort: metrics?.port,
    addresses,
    adminToken,
    adminTokenGenerated: config.adminToken === undefined,
    durable: store.durable,
    stack,
    registry,
    close,
  };
}
