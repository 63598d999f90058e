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

  /**
   * The shard's reminder index: a sorted set, member `${name}@${actorId}` (names never contain `@`,
   * so a member splits at its first `@`), score the due time in epoch ms. Written only by the fence
   * script, with the journal entries whose reminder ops it mirrors.
   */
  reminders(shard: number): string {
    return `${this.shardTag(shard)}:rem`;
  }

  /** An actor's journal: a list of JSON entries `{seq, at, msg, rem?, sys?, from?}` after its snapshot. */
  journal(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:j:${actorId}`;
  }

  /** An actor's latest snapshot: JSON `{seq, state, rem?, inbox?}`. */
  snapshot(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:s:${actorId}`;
  }

  /** An actor's write bookkeeping: hash `{last: highest journaled seq, snap: snapshot seq}`. */
  actorMeta(shard: number, actorId: string): string {
    return `${this.shardTag(shard)}:m:${actorId}`;
  }

  /**
   * A log of the shard (a home's event history, `log` = the home id): a capped stream, entries
   * `{at, e: JSON}` with Redis stream ids, expiring some time after its last entry. Written only by
   * the fence script, with the window whose steps appended them.
   */
  events(shard: number, log: string): string {
    return `${this.shardTag(shard)}:ev:${log}`;
  }

  /** Pub/sub channel (not a key) on which the fence script announces each window's new entries of `events(shard, log)`. */
  eventsChannel(shard: number, log: string): string {
    return `${this.shardTag(shard)}:evc:${log}`;
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

  /** The digests of one hub's secrets (a set), so rotation and removal reach every one of them. */
  hubSecrets(homeId: string, hubId: string): string {
    return `${this.cluster}:cred:hubsecrets:${homeId}:${hubId}`;
  }

  /**
   * Every live app token's digest (a sorted set, all scores 0, read by lex range): a token id is
   * a prefix of its digest, so the set lists tokens in id order and finds one by id.
   */
  tokenIndex(): string {
    return `${this.cluster}:cred:tokens`;
  }

  /** The tombstone `{revokedAt}` of a revoked app token, by token digest (with a TTL). */
  tokenRevocation(digest: string): string {
    return `${this.cluster}:cred:revoked:${digest}`;
  }

  /**
   * The expiring app tokens' digests scored by when their grant's key expires (epoch ms): each new
   * token removes a few that are due from it and from `tokenIndex`, so the index does not grow
   * with tokens nobody lists.
   */
  tokenExpiry(): string {
    return `${this.cluster}:cred:tokenexpiry`;
  }

  /** When a home was last deleted (epoch ms, a string; no TTL): grants made before it no longer cover the home. */
  homeDeleted(homeId: string): string {
    return `${this.cluster}:cred:homedeleted:${homeId}`;
  }

  /**
   * The cluster's audit log: a capped stream of JSON entries (field `e`). No hash tag: it is
   * written and read on its own, and a home's audit stream is written by a separate command, so
   * the two may sit in different Redis Cluster slots.
   */
  auditLog(): string {
    return `${this.cluster}:audit`;
  }

  /** One home's audit log: a capped stream like `auditLog()`, expiring some time after its last entry. */
  homeAuditLog(homeId: string): string {
    return `${this.cluster}:audit:home:${homeId}`;
  }

  /**
   * The cluster's peer secret (hex), generated by the first node when neither PEER_SECRET nor
   * PEER_TLS is configured (`SET NX`) and read by every other node: whoever reads it is a peer.
   * It has no TTL and must never be evicted (node/peer-secret-keeper.ts writes it back if lost).
   */
  peerSecret(): string {
    return `${this.cluster}:peer:secret`;
  }

  /**
   * A rate-limit bucket the cluster's nodes share: hash `{n: tokens left, t: last refill in ms of
   * Redis TIME}`, expiring once it would be full again. `kind` `token` (key: the token's digest,
   * never the token) or `home` (key: the home id). No hash tag: each script call touches one key.
   */
  rateBucket(kind: 'token' | 'home', key: string): string {
    return `${this.cluster}:rl:${kind}:${key}`;
  }

  /** Pattern matching every key of this cluster (tests and tooling; never on a hot path). */
  everything(): string[] {
    return [`${this.cluster}:*`, `{${this.cluster}:*`];
  }
}
