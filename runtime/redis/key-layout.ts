/** Every Redis key of a cluster, in one place: names carry the cluster name and a shard hash tag. */

/**
 * Actor keys live under their shard's hash tag `{<cluster>:<shard>}`, so an actor's journal and
 * snapshot and its shard's fence token share one Redis Cluster slot: the fenced write script can
 * touch them together. Keys that are read one at a time carry the cluster name only.
 */
export class KeyLayout {
  constructor(readonly cluster: string) {}

  /** `{iot:17}`: one slot per shard. */
  shardTag(shard: number): string {
    return `{${this.cluster}:${shard}}`;
  }

  /** The shard's fence token: an integer that only grows, one per lease taken. */
  fence(shard: number): string {
    return `${this.shardTag(shard)}:fence`;
  }

  /** The shard's owner lease: the owning node id, with a TTL. */
  lease(shard: number): string {
    return `${this.shardTag(shard)}:lease`;
  }

  /** An actor's journal: a list of JSON entries `{seq, at, msg}` after its snapshot. */
  journal(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:j:${actorId}`;
  }

  /** An actor's latest snapshot: JSON `{seq, state}`. */
  snapshot(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:s:${actorId}`;
  }

  /** An actor's write bookkeeping: hash `{last: highest journaled seq, snap: snapshot seq}`. */
  actorMeta(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:m:${actorId}`;
  }

  /** A node's handoff progress `{epoch, owned, pending, done, at}` (JSON, with a TTL). */
  progress(nodeId: string): string {
    return `${this.cluster}:progress:${nodeId}`;
  }

  /** Cluster settings fixed at creation (the shard count). */
  meta(): string {
    return `${this.cluster}:meta`;
  }

  /** The ring document: JSON `RingDoc`, replaced whole by compare-and-set on its epoch. */
  ring(): string {
    return `${this.cluster}:ring`;
  }

  /** Pub/sub channel (not a key) announcing each new ring epoch; the message is the epoch. */
  ringChannel(): string {
    return `${this.cluster}:ring:changed`;
  }

  /**
   * Membership keys share the hash tag `{<cluster>:members}`, so one pipeline (or MGET) over
   * every node's heartbeat or record stays in one Redis Cluster slot.
   */
  private membersTag(): string {
    return `{${this.cluster}:members}`;
  }

  /** A node's record: JSON `NodeInfo`, kept after the node stops. */
  node(id: string): string {
    return `${this.membersTag()}:node:${id}`;
  }

  /** A node's heartbeat: present (with a TTL) while the node is alive. */
  heartbeat(id: string): string {
    return `${this.membersTag()}:hb:${id}`;
  }

  /** The set of ids of every registered node. */
  nodes(): string {
    return `${this.membersTag()}:nodes`;
  }

  /** A hub credential by secret digest. */
  hubCredential(digest: string): string {
    return `${this.cluster}:cred:hub:${digest}`;
  }

  /** An app token grant by token digest. */
  appToken(digest: string): string {
    return `${this.cluster}:cred:token:${digest}`;
  }

  /** Pattern matching every key of this cluster (tests and tooling; never on a hot path). */
  everything(): string[] {
    return [`${this.cluster}:*`, `{${this.cluster}:*`];
  }
}
