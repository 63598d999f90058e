/** The ring document in Redis: created once, changed by compare-and-set on its epoch, watched by pub/sub and polling. */
import type { Logger } from '../runtime/logger.ts';
import type { KeyLayout } from '../runtime/redis/key-layout.ts';
import type { RedisClient } from '../runtime/redis/redis-connection.ts';
import type { RingDoc, RingNode } from './cluster-types.ts';
import {
  MAX_RING_NODES,
  MAX_RING_POINTS,
  MAX_STORED_WEIGHT,
  MAX_WEIGHT,
  POINTS_PER_WEIGHT,
  ringPoints,
  weightProblem,
} from './hash-ring.ts';

/**
 * KEYS [ring], ARGV [expectedEpoch, nodesJson, channel]: when the stored epoch is the expected
 * one, stores `{epoch: expected + 1, shardCount (kept), nodes}` and publishes the new epoch.
 * Returns {1, newJson} or {0, currentJson} ({0} when there is no ring). The document is built by
 * concatenation, not cjson.encode: cjson would round weights to 14 digits and turn [] into {}.
 */
const CAS = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local cur = cjson.decode(raw)
if cur.epoch ~= tonumber(ARGV[1]) then return {0, raw} end
local epoch = string.format('%d', cur.epoch + 1)
local doc = '{"epoch":' .. epoch .. ',"shardCount":' .. string.format('%d', cur.shardCount) .. ',"nodes":' .. ARGV[2] .. '}'
redis.call('SET', KEYS[1], doc)
redis.call('PUBLISH', ARGV[3], epoch)
return {1, doc}
`;

type RingClient = RedisClient & {
  ringCas(numKeys: 1, key: string, expectedEpoch: string, nodesJson: string, channel: string): Promise<[0] | [0 | 1, string]>;
};

/** A ring change that cannot be applied (unknown node, bad weight, nothing left active, ...). */
export class RingChangeError extends Error {
  override readonly name = 'RingChangeError';
  readonly code = 'invalid_ring_change';
}

/** A planned change, as the admin API takes it. Each node id may appear in at most one part. */
export interface RingChange {
  /** New nodes, active at once; weight defaults to 1. */
  readonly add?: readonly { readonly id: string; readonly weight?: number }[];
  /** Active nodes to hand their shards off (draining a draining node is a no-op). */
  readonly drain?: readonly string[];
  /** Nodes to take out of the ring. */
  readonly remove?: readonly string[];
  /** New weights by node id. */
  readonly weights?: Readonly<Record<string, number>>;
}

export type RingNodes = Omit<RingDoc, 'epoch' | 'shardCount'>;

export type CasResult = { readonly ok: true; readonly doc: RingDoc } | { readonly ok: false; readonly current: RingDoc | undefined };

/** Throws RingChangeError unless `w` is a weight in (0, max] for node `id`; returns it. */
function checkWeight(id: string, w: unknown, max: number): number {
  const bad = weightProblem(w, max);
  if (bad !== undefined) throw new RingChangeError(`weight of node ${id} ${bad}`);
  return w as number;
}

/**
 * Throws RingChangeError unless the nodes are a valid ring membership (unique ids, weights in
 * (0, maxWeight], known states). Strict (MAX_WEIGHT) for a new ring, lenient (MAX_STORED_WEIGHT)
 * for one read back or written after a change: a weight set before MAX_WEIGHT existed is kept
 * until an operator changes it (applyChange holds every new or changed weight to MAX_WEIGHT).
 */
function checkNodes(nodes: readonly RingNode[], maxWeight: number): void {
  const seen = new Set<string>();
  for (const n of nodes) {
    if (typeof n !== 'object' || n === null) throw new RingChangeError('a ring node must be an object {id, weight, state}');
    if (typeof n.id !== 'string' || n.id === '') throw new RingChangeError('a node id must be a non-empty string');
    if (seen.has(n.id)) throw new RingChangeError(`node ${n.id} appears twice in the ring`);
    seen.add(n.id);
    checkWeight(n.id, n.weight, maxWeight);
    if (n.state !== 'active' && n.state !== 'draining')
      throw new RingChangeError(`state of node ${n.id} must be active or draining, got ${String(n.state)}`);
  }
}

/**
 * The ring nodes after `change`, or a RingChangeError naming what is wrong: an empty change, a node
 * named twice, adding a node already in the ring, an unknown node id, a new or changed weight
 * that is not a finite number in (0, MAX_WEIGHT], or a result with no active node. A change that
 * leaves the ring as it is is refused too (it would bump the epoch for nothing), and so is one that
 * grows the ring past MAX_RING_NODES nodes or MAX_RING_POINTS control points (a ring already past
 * them, stored before they existed, may still shrink). Weights the change does not name are kept
 * as stored, even above MAX_WEIGHT. Pure: `doc` is not modified.
 */
export function applyChange(doc: Pick<RingDoc, 'nodes'>, change: RingChange): RingNodes {
  const add = change.add ?? [];
  const drain = change.drain ?? [];
  const remove = change.remove ?? [];
  const weights = Object.entries(change.weights ?? {});
  if (add.length + drain.length + remove.length + weights.length === 0)
    throw new RingChangeError('the change is empty: nothing to add, drain, remove or reweight');

  const named = new Set<string>();
  for (const id of [...add.map((a) => a.id), ...drain, ...remove, ...weights.map(([id]) => id)]) {
    if (named.has(id)) throw new RingChangeError(`node ${id} is named more than once in the change`);
    named.add(id);
  }

  const byId = new Map(doc.nodes.map((n) => [n.id, n] as const));
  const known = (id: string, what: string): RingNode => {
    const n = byId.get(id);
    if (!n) throw new RingChangeError(`cannot ${what} node ${id}: it is not in the ring`);
    return n;
  };
  const weightOf = (id: string, w: unknown): number => checkWeight(id, w, MAX_WEIGHT);

  for (const id of drain) byId.set(id, { ...known(id, 'drain'), state: 'draining' });
  for (const id of remove) {
    known(id, 'remove');
    byId.delete(id);
  }
  for (const [id, w] of weights) byId.set(id, { ...known(id, 'reweight'), weight: weightOf(id, w) });
  for (const a of add) {
    if (typeof a.id !== 'string' || a.id === '') throw new RingChangeError('a node id must be a non-empty string');
    if (byId.has(a.id)) throw new RingChangeError(`cannot add node ${a.id}: it is already in the ring`);
    byId.set(a.id, { id: a.id, weight: a.weight === undefined ? 1 : weightOf(a.id, a.weight), state: 'active' });
  }

  const nodes = [...byId.values()]; // Map order: existing nodes keep their place, added ones follow
  if (!nodes.some((n) => n.state === 'active')) throw new RingChangeError('the change would leave no active node in the ring');
  const same =
    nodes.length === doc.nodes.length &&
    nodes.every((n, i) => {
      const o = doc.nodes[i]!;
      return n.id === o.id && n.weight === o.weight && n.state === o.state;
    });
  if (same) throw new RingChangeError('the change leaves the ring as it is');
  if (nodes.length > MAX_RING_NODES && nodes.length > doc.nodes.length)
    throw new RingChangeError(`the change would leave ${nodes.length} nodes in the ring, more than ${MAX_RING_NODES}`);
  const points = ringPoints(nodes);
  if (points > MAX_RING_POINTS && points > ringPoints(doc.nodes))
    throw new RingChangeError(
      `the change would give the active nodes ${points} control points, more than ${MAX_RING_POINTS} ` +
        `(their weights may add up to ${MAX_RING_POINTS / POINTS_PER_WEIGHT}): lower some weights`,
    );
  return { nodes };
}

/** Parses a stored ring document; throws naming the key when it is not one. */
export function decodeRing(json: string, key: string): RingDoc {
  const x = JSON.parse(json) as Partial<Record<keyof RingDoc, unknown>>;
  const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
  if (!isCount(x.epoch) || !isCount(x.shardCount) || !Array.isArray(x.nodes)) throw new Error(`${key} does not hold a ring document`);
  const nodes = x.nodes as RingNode[];
  try {
    checkNodes(nodes, MAX_STORED_WEIGHT);
  } catch (err) {
    throw new Error(`${key} does not hold a valid ring document: ${(err as Error).message}`, { cause: err });
  }
  return { epoch: x.epoch, shardCount: x.shardCount, nodes: nodes.map(({ id, weight, state }) => ({ id, weight, state })) };
}

/**
 * The ring document at `keys.ring()`. Every change is a compare-and-set on the epoch (epoch + 1)
 * announced on `keys.ringChannel()`; the shard count is fixed when the ring is created.
 */
export class RingStore {
  private readonly client: RingClient;
  private readonly log: Logger;

  constructor(
    client: RedisClient,
    private readonly keys: KeyLayout,
    logger: Logger,
  ) {
    if (!('ringCas' in client)) client.defineCommand('ringCas', { lua: CAS });
    this.client = client as RingClient;
    this.log = logger.child({ component: 'ring-store' });
  }

  async read(): Promise<RingDoc | undefined> {
    const key = this.keys.ring();
    const raw = await this.client.get(key);
    if (raw === null) return undefined;
    const doc = decodeRing(raw, key);
    this.warnOverweight(doc);
    return doc;
  }

  /** Node weights above MAX_WEIGHT this store already warned about (`id=weight`): once each, not once per poll. */
  private readonly warned = new Set<string>();

  /** Names each node whose stored weight (from before MAX_WEIGHT) exceeds what a change may set, and how to fix it. */
  private warnOverweight(doc: RingDoc): void {
    for (const { id, weight } of doc.nodes) {
      if (weight <= MAX_WEIGHT || this.warned.has(`${id}=${weight}`)) continue;
      this.warned.add(`${id}=${weight}`);
      this.log.warn(
        { nodeId: id, weight, epoch: doc.epoch, maxWeight: MAX_WEIGHT },
        `ring node ${id} has weight ${weight}, above the ${MAX_WEIGHT} a ring change may set: it is followed as stored, ` +
          `but reweight it to at most ${MAX_WEIGHT} (npm run ring -- reweight ${id} <weight>)`,
      );
    }
  }

  /** Creates the ring at epoch 1 unless one exists (SET NX); returns whichever ring is stored afterwards. */
  async create(doc: Omit<RingDoc, 'epoch'>): Promise<RingDoc> {
    if (!Number.isInteger(doc.shardCount) || doc.shardCount <= 0)
      throw new RingChangeError(`shardCount must be a positive integer, got ${doc.shardCount}`);
    checkNodes(doc.nodes, MAX_WEIGHT);
    const created = await this.client.set(
      this.keys.ring(),
      JSON.stringify({ epoch: 1, shardCount: doc.shardCount, nodes: doc.nodes }),
      'NX',
    );
    const stored = await this.read();
    if (!stored) throw new Error(`ring ${this.keys.ring()} vanished right after it was created`);
    if (created === 'OK') this.log.info({ epoch: stored.epoch, shardCount: stored.shardCount, nodes: stored.nodes.length }, 'ring created');
    return stored;
  }

  /**
   * Atomically replaces the nodes when the stored epoch is `expectedEpoch`: the new document has
   * epoch `expectedEpoch + 1` and the same shardCount, and its epoch is published. Otherwise
   * returns the current document (undefined when there is no ring) and changes nothing.
   */
  async compareAndSet(expectedEpoch: number, next: RingNodes): Promise<CasResult> {
    if (!Number.isInteger(expectedEpoch) || expectedEpoch < 1)
      throw new RingChangeError(`expected epoch must be a positive integer, got ${expectedEpoch}`);
    checkNodes(next.nodes, MAX_STORED_WEIGHT);
    const nodes = next.nodes.map(({ id, weight, state }) => ({ id, weight, state }));
    const key = this.keys.ring();
    const [ok, raw] = await this.client.ringCas(1, key, String(expectedEpoch), JSON.stringify(nodes), this.keys.ringChannel());
    const doc = raw === undefined ? undefined : decodeRing(raw, key);
    if (ok === 1 && doc) {
      this.log.info({ epoch: doc.epoch, nodes: doc.nodes.length }, 'ring changed');
      return { ok: true, doc };
    }
    return { ok: false, current: doc };
  }

  /**
   * Calls `onChange` with each newer ring, in increasing epoch order (never an older or the same
   * epoch twice): announcements arrive on a duplicate subscriber connection, and the ring is also
   * read every `pollMs` milliseconds, at start and after each (re)subscription, so a lost
   * announcement only delays. The first call reports the current ring when its epoch is above
   * `sinceEpoch` (default 0: any ring). Returns a stop function that unsubscribes and closes the
   * duplicate connection (awaitable; it never rejects).
   */
  watch(onChange: (doc: RingDoc) => void, pollMs = 1000, sinceEpoch = 0): () => Promise<void> {
    const channel = this.keys.ringChannel();
    let last = sinceEpoch;
    let stopped = false;
    let failing = false;
    let running: Promise<void> | undefined;
    let again = false;

    const readAndDeliver = async (): Promise<void> => {
      let doc: RingDoc | undefined;
      try {
        doc = await this.read();
        if (failing) this.log.info('ring readable again');
        failing = false;
      } catch (err) {
        if (!failing) this.log.warn({ err }, 'cannot read the ring; retrying every poll');
        failing = true;
        return;
      }
      // Re-checked here, after the read: a slower read of an older ring must not be reported.
      if (stopped || !doc || doc.epoch <= last) return;
      last = doc.epoch;
      try {
        onChange(doc);
      } catch (err) {
        this.log.error({ err, epoch: doc.epoch }, 'ring watcher failed');
      }
    };
    // One read at a time; triggers meanwhile coalesce into one more read.
    const check = (): void => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = (async () => {
        do {
          again = false;
          await readAndDeliver();
        } while (again && !stopped);
      })().finally(() => (running = undefined));
    };

    const sub = this.client.duplicate(); // a subscribed connection cannot run GET
    let subscribed = false;
    let subFailing = false;
    sub.on('error', (err: unknown) => {
      if (!subFailing) this.log.warn({ err }, 'ring subscription connection failed; polling meanwhile');
      subFailing = true;
    });
    sub.on('message', (ch: string, message: string) => {
      if (ch === channel && Number(message) > last) check();
    });
    sub.on('ready', () => {
      subFailing = false;
      if (subscribed) return check(); // ioredis re-subscribed by itself; announcements may have been missed meanwhile
      sub.subscribe(channel).then(
        () => {
          subscribed = true;
          check();
        },
        (err: unknown) => this.log.warn({ err }, 'ring subscribe failed; polling meanwhile'),
      );
    });
    // The duplicate copies lazyConnect; a failed first connect is retried by ioredis' retryStrategy.
    if (sub.status === 'wait') sub.connect().catch(() => {});

    const timer = setInterval(check, pollMs).unref();
    check();

    return async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (sub.status === 'ready') await sub.unsubscribe(channel).catch(() => {});
      sub.disconnect();
      await running;
    };
  }
}
