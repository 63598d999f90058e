/** The cluster's shared vocabulary: the ring document, node records, and the per-epoch shard table. */

/** A node's lifecycle in the ring (changed only through ring-document CAS): active nodes own shards, draining ones hand theirs off. */
export type RingNodeState = 'active' | 'draining';

export interface RingNode {
  readonly id: string;
  /** Relative share of shards (default 1). */
  readonly weight: number;
  readonly state: RingNodeState;
}

/**
 * The ring: an immutable, versioned snapshot replaced whole. Changes are compare-and-set on
 * `epoch` (each change is epoch + 1), announced on pub/sub and polled as a fallback.
 */
export interface RingDoc {
  readonly epoch: number;
  readonly shardCount: number;
  readonly nodes: readonly RingNode[];
}

/** Where a node can be reached (registered in Redis at start). */
export interface NodeInfo {
  readonly id: string;
  /** host:port of its HTTP edge, hub ingress and peer server ('' when the role is off). */
  readonly http: string;
  readonly grpc: string;
  readonly peer: string;
  /** Epoch ms. */
  readonly startedAt: number;
  /** Its HEARTBEAT_TTL_MS, as registered (absent in records of older nodes: the default then). */
  readonly heartbeatTtlMs?: number;
}

/** Derived once per epoch: the owner node id of every shard (an array lookup on the hot path). */
export interface ShardTable {
  readonly epoch: number;
  readonly owners: readonly string[];
}
