/** Shard placement: a deterministic consistent-hash ring (the `consistent-hash` package) turned into a per-epoch shard → node table. */
import ConsistentHash from 'consistent-hash';
import type { RingDoc, RingNode, ShardTable } from './cluster-types.ts';
import { mixHash } from './shard-of.ts';

/** Control points a node gets per unit of weight (a node of weight 0.5 gets 128). */
export const POINTS_PER_WEIGHT = 256;

/**
 * Largest weight a ring change may set (a new node, or a new weight). Weights are relative shares,
 * so 0 < weight <= 16 spans any sensible mix of machines; every node rebuilds the ring table on
 * each epoch, on its event loop, at about a microsecond per control point (a weight of 20 000
 * once blocked a node for 6.5 s, past its heartbeat TTL).
 */
export const MAX_WEIGHT = 16;

/**
 * Largest weight a stored ring may hold. Rings written before MAX_WEIGHT existed may hold larger
 * weights; they are still read and followed (refusing them would stop every upgraded node at
 * start, with no way to repair the ring through the admin API), up to this ceiling, which still
 * costs milliseconds. Weights are never clamped: that would move shards between unchanged nodes.
 */
export const MAX_STORED_WEIGHT = 256;

/** Control points of a node of MAX_WEIGHT: the most a ring change can give one node. */
export const MAX_POINTS_PER_NODE = MAX_WEIGHT * POINTS_PER_WEIGHT;

/**
 * Most control points the active nodes of a ring may have together after a change (the sum of
 * their weights at most 256, e.g. 256 nodes of weight 1 or 1 024 of weight 0.25): bounds the
 * table build to about 0.1 s (measured) however many nodes one change adds.
 */
export const MAX_RING_POINTS = 65_536;

/** Most nodes (active or draining) a ring may have after a change. */
export const MAX_RING_NODES = 1_024;

/**
 * Why `weight` is not a valid node weight: a finite number with 0 < weight <= `max`
 * (MAX_WEIGHT for a weight being set, MAX_STORED_WEIGHT for one read back); undefined when it is.
 * The text follows "weight of node X" or a field name: "must be ...".
 */
export function weightProblem(weight: unknown, max: number = MAX_WEIGHT): string | undefined {
  if (!(typeof weight === 'number' && Number.isFinite(weight) && weight > 0))
    return `must be a positive finite number, got ${describeValue(weight)}`;
  if (weight > max) return `must be at most ${max}, got ${weight}`;
  return undefined;
}

/** A short description of an untrusted value: scalars as JSON, anything else by its type (a JSON object such as `{"toString": false}` has no string form). */
function describeValue(x: unknown): string {
  if (typeof x === 'number') return String(x);
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (typeof x === 'boolean' || x === null) return String(x);
  return Array.isArray(x) ? 'an array' : typeof x === 'object' ? 'an object' : typeof x;
}

/** Whether `weight` may be set by a ring change: a finite number with 0 < weight <= MAX_WEIGHT. */
export const isValidWeight = (weight: unknown): weight is number => weightProblem(weight) === undefined;

/** How many control points a node of `weight` gets (before repeats are dropped). */
export const pointCount = (weight: number): number => Math.max(1, Math.round(weight * POINTS_PER_WEIGHT));

/** Control points of the active nodes of a ring: what building its table costs. */
export const ringPoints = (nodes: readonly RingNode[]): number =>
  nodes.reduce((sum, n) => (n.state === 'active' ? sum + pointCount(n.weight) : sum), 0);

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
 * only to or from that node). `weight` must be finite, > 0 and <= MAX_STORED_WEIGHT (a stored
 * ring may predate MAX_WEIGHT), whoever wrote the ring: a huge one is refused, not computed.
 */
export function controlPoints(nodeId: string, weight: number, range: number = RING_RANGE): number[] {
  const bad = weightProblem(weight, MAX_STORED_WEIGHT);
  if (bad !== undefined) throw new Error(`node ${nodeId}: weight ${bad}`);
  const count = pointCount(weight);
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
