/** Shard placement: a deterministic consistent-hash ring (the `consistent-hash` package) turned into a per-epoch shard → node table. */
import ConsistentHash from 'consistent-hash';
import type { RingDoc, RingNode, ShardTable } from './cluster-types.ts';
import { mixHash } from './shard-of.ts';

/** Control points a node gets per unit of weight (a node of weight 0.5 gets 128). */
export const POINTS_PER_WEIGHT = 256;

/**
 * Size of the ring: control points and shard keys are positions in [0, RING_RANGE).
 * The package places a key at `(pjw24(key) << 5) % range`, and its 24-bit hash of a hex string
 * is far from uniform (hex digits are not nibbles), so the range must wrap that value many
 * times: this prime (~1e6, 537 wraps) measures as uniform, while e.g. 4194301, 9999991 or
 * 2^29-ish primes leave the shards clumped.
 */
export const RING_RANGE = 999_983;

/** One shard whose owner differs between two tables. */
export interface ShardMove {
  readonly shard: number;
  readonly from: string;
  readonly to: string;
}

/**
 * The candidate control points of a node: `mixHash(`${nodeId}#${i}`) % range` for
 * i < max(1, round(weight × POINTS_PER_WEIGHT)), without repeats, in order of i. They depend
 * on nothing but the node, so a larger weight only adds points (a weight change moves shards
 * only to or from that node). `weight` must be finite and > 0.
 */
export function controlPoints(nodeId: string, weight: number, range: number = RING_RANGE): number[] {
  if (!(Number.isFinite(weight) && weight > 0)) throw new Error(`node ${nodeId}: weight must be a finite number > 0, got ${weight}`);
  const count = Math.max(1, Math.round(weight * POINTS_PER_WEIGHT));
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) seen.add(mixHash(`${nodeId}#${i}`) % range);
  return [...seen];
}

/**
 * Derives the owner of every shard from a ring document; call once per epoch. Only 'active'
 * nodes own shards. Deterministic: the same document gives the same table in any process,
 * whatever the order of `ring.nodes` (the package's Math.random() control points are never
 * used). Adding or removing (or draining) a node moves only shards to or from that node.
 * Throws when no node is active, on duplicate node ids, on a bad weight or shard count.
 */
export function buildShardTable(ring: RingDoc): ShardTable {
  const { epoch, shardCount } = ring;
  if (!(Number.isInteger(shardCount) && shardCount > 0))
    throw new Error(`ring epoch ${epoch}: shardCount must be a positive integer, got ${shardCount}`);
  const ids = new Set<string>();
  for (const node of ring.nodes) {
    if (ids.has(node.id)) throw new Error(`ring epoch ${epoch}: node ${node.id} is listed twice`);
    ids.add(node.id);
  }
  const active = ring.nodes.filter((n) => n.state === 'active').sort(byId);
  if (active.length === 0) throw new Error(`ring epoch ${epoch} has no active node: cannot place ${shardCount} shards`);

  const hashRing = new ConsistentHash({ range: RING_RANGE });
  const claimed = new Set<number>();
  for (const node of active) {
    // A point two nodes share goes to the lower id; the other node just has one point fewer.
    // No replacement point: that would make a node's points depend on the other nodes, and a
    // join or leave could then move shards between two nodes that did not change.
    const points = controlPoints(node.id, node.weight).filter((p) => !claimed.has(p));
    for (const p of points) claimed.add(p);
    if (points.length > 0) hashRing.add(node.id, points.length, points);
  }

  const owners: string[] = new Array<string>(shardCount);
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = hashRing.get(shardKey(shard));
    if (owner === null) throw new Error(`ring epoch ${epoch}: no control points to place shard ${shard}`);
    owners[shard] = owner;
  }
  return Object.freeze({ epoch, owners: Object.freeze(owners) });
}

/** The shards whose owner differs between two tables of the same shard count, in shard order. */
export function planMoves(from: ShardTable, to: ShardTable): ShardMove[] {
  if (from.owners.length !== to.owners.length) {
    throw new Error(`cannot compare shard tables of ${from.owners.length} and ${to.owners.length} shards`);
  }
  const moves: ShardMove[] = [];
  for (let shard = 0; shard < from.owners.length; shard++) {
    const a = from.owners[shard] as string;
    const b = to.owners[shard] as string;
    if (a !== b) moves.push({ shard, from: a, to: b });
  }
  return moves;
}

/**
 * The ring key of a shard: already mixed, because the package's own string hash clumps
 * sequential ids (on its default ring, '0'…'1023' leave a quarter of the ring empty).
 */
const shardKey = (shard: number): string => mixHash(`shard:${shard}`).toString(16);

// Code-unit order, not localeCompare: it must not vary with the process's locale.
const byId = (a: RingNode, b: RingNode): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
