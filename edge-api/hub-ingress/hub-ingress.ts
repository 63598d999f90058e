/** The hub gRPC ingress: the HubIngress server with health and reflection, hub authentication and the session registry. */
import { Server, ServerCredentials, type ServerInterceptingCall, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import { hubActorId } from '../../actors/actor-id.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { shutdownServer } from '../../cluster/grpc-server.ts';
import type { HubSessionEndReason } from '../../actors/types.ts';
import type { TlsMaterial } from '../../node/tls-material.ts';
import { loadProtoDefinition, PROTO_LOADER_OPTIONS } from '../../protos/load-proto.ts';
import type { Logger } from '../../runtime/logger.ts';
import { requirePositiveInt as positive } from '../../runtime/require-positive-int.ts';
import type { CredentialStore } from '../auth/credential-store.ts';
import { bearerToken, hashSecret } from '../auth/secrets.ts';
import { grpcStatusNameOf, type ErrorCode } from '../error-codes.ts';
import { ConnectionGate } from './connection-gate.ts';
import { defaultRetryPolicy, type RetryPolicy } from './device-lanes.ts';
import { decodeHubMessage, encodeCloudMessage } from './hub-codec.ts';
import { HubMetrics } from './hub-metrics.ts';
import { HubSession, type SessionHost } from './hub-session.ts';
import { endCall, type HubCall } from './hub-wire.ts';

/** The fully qualified name of the hub service (health status name, reflection). */
export const HUB_SERVICE = 'iot.hub.v1.HubIngress';

export interface HubIngressDeps {
  readonly router: ActorRouter;
  readonly credentials: CredentialStore;
  /** This node's id: sent in the welcome and recorded by hub actors as the session's node. */
  readonly nodeId: string;
  /** Credit window: max unacked reports per hub. */
  readonly window: number;
  /** gRPC max receive message length, bytes; a larger message ends the stream with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Epoch ms; injectable for tests. */
  readonly clock?: () => number;
  /** Backoff for device asks that fail with overloaded / timeout / unavailable; defaults 10, 1000, 30000 ms. */
  readonly retry?: RetryPolicy;
  /** Milliseconds `close()` waits for streams to finish before it forces the server down; default HUB_INGRESS_SHUTDOWN_GRACE_MS. */
  readonly shutdownGraceMs?: number;
  /**
   * Milliseconds between two writes of a hub's durable cursor (`hub.durable`, where a reconnecting
   * hub resumes); default 1000. Longer: fewer hub steps, more re-sent (deduplicated) reports after a
   * broken stream.
   */
  readonly durableIntervalMs?: number;
  /**
   * Milliseconds a stream may stay open without its hello (it then ends with DEADLINE_EXCEEDED),
   * and a connection without its first gRPC call (it is then closed); default 10000.
   */
  readonly helloTimeoutMs?: number;
  /** Milliseconds a connection may stay without a call before grpc-js closes it (`grpc.max_connection_idle_ms`); default 300000. */
  readonly idleMs?: number;
  /** Hub connections (TCP) held at most; past it new ones are closed at once; default 20000. */
  readonly maxConnections?: number;
  /**
   * Acks and errors that may wait for a hub before its stream is reset with RESOURCE_EXHAUSTED (it
   * sends without reading); commands and desired deltas may wait up to this plus one delta and
   * `COMMAND_LIMITS.history` commands per device of its hello; default 1000. See hub-outbound.ts.
   */
  readonly outboundQueue?: number;
  /**
   * Milliseconds messages may wait for a hub whose stream drains none of them before it is reset
   * with RESOURCE_EXHAUSTED (it does not read); default 10000.
   */
  readonly outboundStallMs?: number;
  /** Milliseconds a status may wait behind messages the hub does not read before the stream is reset instead; default 2000. */
  readonly statusGraceMs?: number;
  /** Serve TLS with this certificate and key; with `ca`, hubs must present a client certificate that chains to it. */
  readonly tls?: TlsMaterial;
}

/**
 * Server-side keepalive: a connection whose peer does not answer a PING within the timeout is
 * dropped (a hub gone without a FIN). grpc-js enforces no client ping policy (no ping strikes);
 * Node's HTTP/2 bounds unanswered pings and closes sessions that flood PING or SETTINGS frames.
 */
/**
 * Streams one connection may carry at once (`grpc.max_concurrent_streams`, advertised in the
 * HTTP/2 SETTINGS; grpc-js's default is unbounded). A hub needs one, but an L7 proxy in front of
 * the nodes, the hub simulator and the load generator multiplex many hubs' streams on one
 * connection, so the bound is generous; what bounds one credential is
 * MAX_STREAMS_AWAITING_HELLO_PER_HUB (after its hello, a hub's newer stream supersedes the older).
 */
export const MAX_STREAMS_PER_CONNECTION = 16_384;
/**
 * Streams of one hub (one credential) that may wait for their hello at once, across connections.
 * A hub reconnecting opens one at a time; past this the stream ends RESOURCE_EXHAUSTED, so one
 * stolen secret cannot hold thousands of streams open until their hello deadline.
 */
export const MAX_STREAMS_AWAITING_HELLO_PER_HUB = 4;
/** Milliseconds `close()` lets hub streams end before it forces the server down (the default of `shutdownGraceMs`). */
export const HUB_INGRESS_SHUTDOWN_GRACE_MS = 5_000;
const KEEPALIVE_TIME_MS = 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * Accepts hub streams. A hub has at most one session per node: a second stream for the same hub
 * supersedes the first. Commands reach a hub through `HubCommandDelivery` (hub-command-delivery.ts).
 */
export class HubIngress {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  /** Every open stream by its session id (`endSession` finds one without a scan). */
  private readonly sessions = new Map<string, HubSession>();
  /** The current session of each hub, by hub actor id. */
  private readonly current = new Map<string, HubSession>();
  /** Sessions that have not said hello yet, by hub actor id (MAX_STREAMS_AWAITING_HELLO_PER_HUB). */
  private readonly awaitingHello = new Map<string, Set<HubSession>>();
  private readonly host: SessionHost;
  private readonly log: Logger;
  private readonly gate: ConnectionGate;
  private readonly credentials: ServerCredentials;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: HubIngressDeps) {
    positive('window', deps.window);
    positive('maxMessageBytes', deps.maxMessageBytes);
    const durableIntervalMs = deps.durableIntervalMs ?? 1_000;
    if (!Number.isFinite(durableIntervalMs) || durableIntervalMs < 0)
      throw new RangeError(`durableIntervalMs must be a non-negative number of milliseconds, not ${durableIntervalMs}`);
    this.log = deps.logger.child({ component: 'hub-ingress' });
    const helloTimeoutMs = positive('helloTimeoutMs', deps.helloTimeoutMs ?? 10_000);
    const metrics = new HubMetrics(deps.registry);
    this.host = {
      router: deps.router,
      credentials: deps.credentials,
      nodeId: deps.nodeId,
      window: deps.window,
      metrics,
      clock: deps.clock ?? Date.now,
      retry: deps.retry ?? defaultRetryPolicy,
      durableIntervalMs,
      helloTimeoutMs,
      outboundQueue: positive('outboundQueue', deps.outboundQueue ?? 1_000),
      outboundStallMs: positive('outboundStallMs', deps.outboundStallMs ?? 10_000),
      statusGraceMs: deps.statusGraceMs ?? 2_000,
      claim: (s) => this.claim(s),
      release: (s) => this.release(s),
      forget: (s) => {
        this.helloSaid(s);
        if (this.sessions.delete(s.sessionId)) this.host.metrics.streams.dec();
      },
    };
    this.server = new Server({
      'grpc.max_receive_message_length': deps.maxMessageBytes,
      'grpc.max_connection_idle_ms': positive('idleMs', deps.idleMs ?? 300_000),
      'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION,
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      // Every call (hub streams, health checks, reflection) marks its connection as speaking gRPC.
      // The call itself is passed on unwrapped: a wrapper would cost every message of every stream.
      interceptors: [
        (_method, call) => {
          this.gate.called(call.getPeer());
          return call as ServerInterceptingCall;
        },
      ],
    });
    const tls = deps.tls;
    this.credentials = tls
      ? ServerCredentials.createSsl(tls.ca ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.ca !== undefined)
      : ServerCredentials.createInsecure();
    const injector = this.server.createConnectionInjector(this.credentials);
    this.gate = new ConnectionGate({
      maxConnections: positive('maxConnections', deps.maxConnections ?? 20_000),
      firstCallMs: helloTimeoutMs,
      inject: (socket) => injector.injectConnection(socket),
      connections: metrics.connections,
      refused: metrics.connectionsRefused,
      log: this.log,
    });
    const hubDefinition = loadProtoDefinition('hub.proto');
    this.server.addService(hubService(hubDefinition), { Connect: (call: HubCall) => this.connect(call) });
    this.health = new HealthImplementation({ '': 'SERVING', [HUB_SERVICE]: 'SERVING' });
    this.health.addToServer(this.server);
    // Reflection over both services, so `grpcurl -plaintext host:port list` shows them.
    const healthDefinition = loadSync(healthProtoPath, PROTO_LOADER_OPTIONS);
    new ReflectionService({ ...hubDefinition, ...healthDefinition }).addToServer(this.server);
  }

  /** Binds `host:port` (port 0 = a free port) and resolves the port actually bound. */
  async listen(host: string, port: number): Promise<number> {
    const bound = await this.gate.listen(host, port);
    this.log.info(
      { host, port: bound, tls: this.deps.tls !== undefined, clientCertificates: this.deps.tls?.ca !== undefined },
      'hub ingress listening',
    );
    return bound;
  }

  /** Hub connections (TCP) open on this node. */
  get connectionCount(): number {
    return this.gate.open;
  }

  /**
   * Ends session `sessionId` of a hub held here (its hub actor says a newer one superseded it, the
   * hub was removed, or its secret was rotated out: then at `at`, epoch ms, at once when absent or
   * past); `sessionId` undefined: the hub's current session here. False when none matches.
   */
  endSession(homeId: string, hubId: string, sessionId: string | undefined, reason: HubSessionEndReason, at?: number): boolean {
    const hubActor = hubActorId(homeId, hubId);
    const session = sessionId === undefined ? this.current.get(hubActor) : this.sessions.get(sessionId);
    if (session?.hubActor !== hubActor) return false;
    if (reason === 'removed') session.fail('unauthenticated', 'hub removed');
    else if (reason === 'secret_retired') session.expireAt(at ?? this.host.clock());
    else session.fail('superseded', 'superseded by a newer connection of this hub on another node');
    return true;
  }

  /** The current stream of a hub on this node, if it has one here (hub-command-delivery.ts writes commands to it). */
  sessionOf(homeId: string, hubId: string): HubSession | undefined {
    return this.current.get(hubActorId(homeId, hubId));
  }

  /** Streams open on this node, whether or not they said hello (tests, metrics). */
  get streamCount(): number {
    return this.sessions.size;
  }

  /** Hubs with a stream on this node (one per hub; a superseded stream does not count). */
  get sessionCount(): number {
    return this.current.size;
  }

  /** The gRPC health status of '' and `iot.hub.v1.HubIngress`. */
  setServing(serving: boolean): void {
    const status = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(HUB_SERVICE, status);
  }

  /**
   * Ends every stream with UNAVAILABLE "node shutting down" (each hub actor is told
   * `hub.disconnect`), then shuts the server down, forcing it after `shutdownGraceMs`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.setServing(false);
    const gateClosed = this.gate.close();
    for (const s of [...this.sessions.values()]) s.fail('stopping', 'node shutting down');
    const graceMs = this.deps.shutdownGraceMs ?? HUB_INGRESS_SHUTDOWN_GRACE_MS;
    if (!(await shutdownServer(this.server, graceMs)))
      this.log.warn({ graceMs }, 'hub streams still open after the grace period: forcing shutdown');
    await gateClosed;
    this.log.info('hub ingress closed');
  }

  /** Authenticates before any actor is touched; only then does the stream get a session. */
  private connect(call: HubCall): void {
    if (this.closing) return this.refuse(call, 'stopping', 'node shutting down');
    const [header] = call.metadata.get('authorization');
    const secret = bearerToken(typeof header === 'string' ? header : undefined);
    if (secret === undefined) return this.refuse(call, 'unauthenticated', 'authorization metadata must be "Bearer <hub secret>"');
    const digest = hashSecret(secret);
    this.deps.credentials
      .findHub(digest)
      .then(
        (credential) => {
          if (call.cancelled || call.destroyed) return this.host.metrics.streamEnded('CANCELLED');
          if (this.closing) return this.refuse(call, 'stopping', 'node shutting down');
          if (!credential) return this.refuse(call, 'unauthenticated', 'unknown hub secret');
          const hubActor = hubActorId(credential.homeId, credential.hubId);
          const waiting = this.awaitingHello.get(hubActor) ?? new Set<HubSession>();
          if (waiting.size >= MAX_STREAMS_AWAITING_HELLO_PER_HUB) {
            return this.refuse(
              call,
              'resource_exhausted',
              `hub ${credential.hubId} already has ${waiting.size} streams waiting for their hello: send hello on one`,
            );
          }
          const session = new HubSession(call, credential, digest, this.host, this.log);
          waiting.add(session);
          this.awaitingHello.set(hubActor, waiting);
          this.sessions.set(session.sessionId, session);
          this.host.metrics.streams.inc();
        },
        (err: unknown) => {
          this.log.error({ err }, 'credential lookup failed');
          this.refuse(call, 'unavailable', 'credentials cannot be checked right now');
        },
      )
      .catch((err: unknown) => {
        this.log.error({ err }, 'hub stream setup failed');
        this.refuse(call, 'internal', 'internal error');
      });
  }

  private refuse(call: HubCall, code: ErrorCode, details: string): void {
    this.host.metrics.streamEnded(grpcStatusNameOf(code));
    endCall(call, code, details);
  }

  /** `session` said its hello (or ended): it no longer counts against its hub's streams awaiting hello. */
  private helloSaid(session: HubSession): void {
    const waiting = this.awaitingHello.get(session.hubActor);
    if (waiting === undefined || !waiting.delete(session)) return;
    if (waiting.size === 0) this.awaitingHello.delete(session.hubActor);
  }

  private claim(session: HubSession): void {
    this.helloSaid(session);
    const previous = this.current.get(session.hubActor);
    this.current.set(session.hubActor, session);
    if (previous && previous !== session) previous.fail('superseded', 'superseded by a new connection');
  }

  private release(session: HubSession): void {
    if (this.current.get(session.hubActor) === session) this.current.delete(session.hubActor);
  }
}

/**
 * HubIngress as proto-loader defines it, except for the codec (hub-codec.ts): protobufjs message
 * objects read in place rather than proto-loader's `toObject` copies, and no `fromObject` copy of
 * what the node writes down.
 */
function hubService(definition: PackageDefinition): ServiceDefinition {
  const service = serviceOf(definition, HUB_SERVICE);
  const connect = service['Connect'];
  if (connect === undefined) throw new Error(`${HUB_SERVICE} has no Connect method`);
  return { ...service, Connect: { ...connect, requestDeserialize: decodeHubMessage, responseSerialize: encodeCloudMessage } };
}

/** The service definition `name` of a loaded package definition (messages and enums have a `format`). */
function serviceOf(definition: PackageDefinition, name: string): ServiceDefinition {
  const d = definition[name];
  if (d === undefined || 'format' in d) throw new Error(`${name} is not a service of the loaded proto`);
  return d;
}
