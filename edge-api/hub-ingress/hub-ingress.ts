/** The hub gRPC ingress: the HubIngress server with health and reflection, hub authentication and the session registry. */
import { Server, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import { hubActorId } from '../../actors/actor-id.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import { bindServer, shutdownServer } from '../../cluster/grpc-server.ts';
import { loadProtoDefinition, PROTO_LOADER_OPTIONS } from '../../protos/load-proto.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { CredentialStore } from '../auth/credential-store.ts';
import { bearerToken, hashSecret } from '../auth/secrets.ts';
import { grpcStatusNameOf, type ErrorCode } from '../error-codes.ts';
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
  /** Milliseconds `close()` waits for streams to finish before it forces the server down; default 5000. */
  readonly shutdownGraceMs?: number;
  /**
   * Milliseconds between two writes of a hub's durable cursor (`hub.durable`, where a reconnecting
   * hub resumes); default 1000. Longer: fewer hub steps, more re-sent (deduplicated) reports after a
   * broken stream.
   */
  readonly durableIntervalMs?: number;
}

/**
 * Accepts hub streams. A hub has at most one session per node: a second stream for the same hub
 * supersedes the first. Commands reach a hub through `HubCommandDelivery` (hub-command-delivery.ts).
 */
export class HubIngress {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  private readonly sessions = new Set<HubSession>();
  /** The current session of each hub, by hub actor id. */
  private readonly current = new Map<string, HubSession>();
  private readonly host: SessionHost;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: HubIngressDeps) {
    if (!Number.isSafeInteger(deps.window) || deps.window < 1)
      throw new RangeError(`window must be a positive integer, not ${deps.window}`);
    if (!Number.isSafeInteger(deps.maxMessageBytes) || deps.maxMessageBytes < 1) {
      throw new RangeError(`maxMessageBytes must be a positive integer, not ${deps.maxMessageBytes}`);
    }
    const durableIntervalMs = deps.durableIntervalMs ?? 1_000;
    if (!Number.isFinite(durableIntervalMs) || durableIntervalMs < 0)
      throw new RangeError(`durableIntervalMs must be a non-negative number of milliseconds, not ${durableIntervalMs}`);
    this.log = deps.logger.child({ component: 'hub-ingress' });
    this.host = {
      router: deps.router,
      nodeId: deps.nodeId,
      window: deps.window,
      metrics: new HubMetrics(deps.registry),
      clock: deps.clock ?? Date.now,
      retry: deps.retry ?? defaultRetryPolicy,
      durableIntervalMs,
      claim: (s) => this.claim(s),
      release: (s) => this.release(s),
      forget: (s) => {
        if (this.sessions.delete(s)) this.host.metrics.streams.dec();
      },
    };
    this.server = new Server({ 'grpc.max_receive_message_length': deps.maxMessageBytes });
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
    const bound = await bindServer(this.server, host, port);
    this.log.info({ host, port: bound }, 'hub ingress listening');
    return bound;
  }

  /** The current stream of a hub on this node, if it has one here (hub-command-delivery.ts writes commands to it). */
  sessionOf(homeId: string, hubId: string): HubSession | undefined {
    return this.current.get(hubActorId(homeId, hubId));
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
    for (const s of [...this.sessions]) s.fail('stopping', 'node shutting down');
    const graceMs = this.deps.shutdownGraceMs ?? 5_000;
    if (!(await shutdownServer(this.server, graceMs)))
      this.log.warn({ graceMs }, 'hub streams still open after the grace period: forcing shutdown');
    this.log.info('hub ingress closed');
  }

  /** Authenticates before any actor is touched; only then does the stream get a session. */
  private connect(call: HubCall): void {
    if (this.closing) return this.refuse(call, 'stopping', 'node shutting down');
    const [header] = call.metadata.get('authorization');
    const secret = bearerToken(typeof header === 'string' ? header : undefined);
    if (secret === undefined) return this.refuse(call, 'unauthenticated', 'authorization metadata must be "Bearer <hub secret>"');
    this.deps.credentials
      .findHub(hashSecret(secret))
      .then(
        (credential) => {
          if (call.cancelled || call.destroyed) return this.host.metrics.streamEnded('CANCELLED');
          if (this.closing) return this.refuse(call, 'stopping', 'node shutting down');
          if (!credential) return this.refuse(call, 'unauthenticated', 'unknown hub secret');
          const session = new HubSession(call, credential, this.host, this.log);
          this.sessions.add(session);
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

  private claim(session: HubSession): void {
    const previous = this.current.get(session.hubActor);
    this.current.set(session.hubActor, session);
    if (previous && previous !== session) previous.fail('superseded', 'superseded by a new connection');
  }

  private release(session: HubSession): boolean {
    if (this.current.get(session.hubActor) !== session) return false;
    this.current.delete(session.hubActor);
    return true;
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
