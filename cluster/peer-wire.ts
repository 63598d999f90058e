/** The peer wire shared by peer-server.ts and peer-client.ts: message shapes, the service definition, JSON payloads, size limits. */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadProtoDefinition } from '../protos/load-proto.ts';
/** The fully qualified name of the peer service. */
export const PEER_SERVICE = 'iot.cluster.v1.Peer';

/** Metadata key both sides set to their node id when a stream opens (logs, sanity checks). */
export const PEER_NODE_HEADER = 'x-peer-node';

// ---- the wire, as protos/load-proto.ts decodes it -------------------------------------------
// uint64 fields decode as decimal strings and may be written as numbers; bytes decode as Buffers.

export interface WireRequest {
  readonly id: string | number;
  readonly actor_id: string;
  readonly payload: Uint8Array;
  readonly timeout_ms: number;
  readonly hops: number;
  readonly epoch: string | number;
  /** The sender's trace context (a W3C traceparent); '' or absent when not traced. */
  readonly trace?: string;
}

export interface WireReply {
  readonly id: string | number;
  readonly payload: Uint8Array;
}

export interface WireTell {
  readonly actor_id: string;
  readonly payload: Uint8Array;
  readonly durable: boolean;
  readonly hops: number;
  readonly epoch: string | number;
  /** As WireRequest.trace. */
  readonly trace?: string;
}

export interface WireDelivery {
  readonly channel: string;
  readonly payload: Uint8Array;
  /** As WireRequest.trace. */
  readonly trace?: string;
}

/** `PeerMessage` oneof `body`; when decoded, `body` names the member that is set. */
export interface WirePeerMessage {
  readonly body?: 'request' | 'reply' | 'tell' | 'delivery';
  readonly request?: WireRequest;
  readonly reply?: WireReply;
  readonly tell?: WireTell;
  readonly delivery?: WireDelivery;
}

export interface WirePeerBatch {
  readonly items: readonly WirePeerMessage[];
}

/** Size limits of the peer wire. */
export interface PeerLimits {
  /** Most items per PeerBatch; a tick with more sends several batches. */
  readonly maxBatchItems: number;
  /** A batch is closed once its payloads reach this many bytes. */
  readonly maxBatchBytes: number;
  /** gRPC max message length on both sides, bytes; a single larger item is refused before it is sent. */
  readonly maxMessageBytes: number;
}

export const DEFAULT_PEER_LIMITS: PeerLimits = { maxBatchItems: 1024, maxBatchBytes: 1 << 20, maxMessageBytes: 16 << 20 };

let method: MethodDefinition<WirePeerBatch, WirePeerBatch> | undefined;
let service: ServiceDefinition | undefined;

/** The Peer service definition, loaded once with the shared loader options. */
export function peerService(): ServiceDefinition {
  if (!service) {
    const d = loadProtoDefinition('cluster.proto')[PEER_SERVICE];
    if (d === undefined || 'format' in d) throw new Error(`${PEER_SERVICE} is not a service of cluster.proto`);
    service = d;
  }
  return service;
}

/** `Peer.Exchange`: its path and (de)serializers, for a client built without a generated stub. */
export function exchangeMethod(): MethodDefinition<WirePeerBatch, WirePeerBatch> {
  method ??= peerService()['Exchange'] as MethodDefinition<WirePeerBatch, WirePeerBatch>;
  return method;
}

/** UTF-8 JSON bytes of a value; throws when it has no JSON form (undefined, BigInt, cycles). */
export function toJsonBytes(value: unknown): Buffer {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`${typeof value} has no JSON form`);
  return Buffer.from(json, 'utf8');
}

/** The value of UTF-8 JSON bytes; throws SyntaxError when they are not JSON. */
export function fromJsonBytes(bytes: Uint8Array): unknown {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return JSON.parse(b.toString('utf8'));
}

/** Approximate encoded size of an item, bytes (payload plus a fixed allowance for the rest). */
export function itemBytes(m: WirePeerMessage): number {
  const r = m.request ?? m.reply ?? m.tell ?? m.delivery;
  return (r?.payload.byteLength ?? 0) + 48;
}
