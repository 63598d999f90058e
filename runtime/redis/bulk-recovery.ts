/** Activation in bulk: the snapshots and journal tails of many actors in one pipelined read, not a round trip per actor. */
import type { JournalEntry, Recovered, Snapshot } from '../persistence-port.ts';
import type { KeyLayout } from './key-layout.ts';
import type { RedisClient } from './redis-connection.ts';

/**
 * Turns an actor's stored snapshot (JSON `{seq, state, rem?, inbox?}`, or null when it has none) and journal
 * list (JSON entries `{seq, at, msg, rem?, sys?, from?}`, oldest first) into what recovery hands the host. Journal
 * entries at or below the snapshot's seq are dropped: they can only be ones a trim has not
 * removed yet. Shared by `RedisStore.recover` and `recoverMany`, so both decode alike.
 * Throws an Error naming the bad part (snapshot or entry index) when a stored value is not JSON.
 */
export function decodeRecovered(snapshotJson: string | null, entriesJson: readonly string[]): Recovered {
  let snapshot: Snapshot | undefined;
  if (snapshotJson !== null) {
    try {
      snapshot = JSON.parse(snapshotJson) as Snapshot;
    } catch (err) {
      throw new Error(`stored snapshot is not JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const after = snapshot?.seq ?? 0;
  const events: JournalEntry[] = [];
  for (let i = 0; i < entriesJson.length; i++) {
    let entry: JournalEntry;
    try {
      entry = JSON.parse(entriesJson[i]!) as JournalEntry;
    } catch (err) {
      throw new Error(`stored journal entry ${i} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (entry.seq > after) events.push(entry);
  }
  return snapshot ? { snapshot, events } : { events };
}

export interface RecoverManyOptions {
  /**
   * Most actors read per pipeline (two commands each); larger batches go in consecutive
   * pipelines, so one round trip's request and reply buffers stay bounded. Default 500.
   */
  readonly chunkSize?: number;
}

export const defaultRecoverChunkSize = 500;

/**
 * Some actors of a `recoverMany` call could not be recovered. `failed` names each of them with
 * its cause; `recovered` holds every other requested actor, so a caller can activate those and
 * supervise (or retry) only the failed ones.
 */
export class BulkRecoveryError extends Error {
  override readonly name = 'BulkRecoveryError';
  /** Stable code: recovery of at least one actor failed; nothing was written. */
  readonly code = 'recovery_failed';

  constructor(
    readonly failed: ReadonlyMap<string, Error>,
    readonly recovered: ReadonlyMap<string, Recovered>,
  ) {
    const ids = [...failed.keys()];
    const first = failed.values().next().value;
    const shown = ids.slice(0, 5).join(', ') + (ids.length > 5 ? `, … (${ids.length} in all)` : '');
    super(`recovery failed for ${shown}; first: ${first?.message ?? 'unknown error'}`, { cause: first });
  }
}

/** One actor's three reads in a pipeline, and where their replies land. */
interface Read {
  readonly actorId: string;
  readonly snapshotKey: string;
  readonly journalKey: string;
  /** The write bookkeeping: `last`, the highest seq the fence script has journaled. */
  readonly metaKey: string;
}

/** One command's reply in `pipeline.exec()`'s result. */
type PipelineReply = [error: Error | null, result: unknown];

/**
 * Recovers every actor of `actorIds` as `RedisStore.recover` would, one at a time, but with a
 * GET of its snapshot, an LRANGE of its journal and an HGET of its last journaled seq per actor sent together: one round trip per
 * `chunkSize` actors (per shard on Redis Cluster, see below). An actor that was never written
 * recovers as `{events: []}`. Duplicate ids are read once. The map holds every requested id, in
 * request order (a caller iterating it activates actors in the order it asked for them).
 *
 * Failures are per actor: when any actor cannot be read or decoded, the promise rejects with a
 * `BulkRecoveryError` that names the failed actors and carries the others' recovered state. A
 * chunk whose pipeline fails as a whole (connection lost, timeout) fails the actors of the chunks
 * after it too, without sending them: a dead connection costs one timeout, not one per chunk.
 *
 * Precondition: the caller owns the actors' shards (holds their leases), so nothing writes them
 * while they are read. The reads are pipelined, not a transaction: a fenced write landing between
 * an actor's GET and LRANGE could pair an old snapshot with a journal trimmed behind a newer one
 * (as with `RedisStore.recover`). An owner's own actors are not written before they are recovered,
 * and a former owner's writes are refused by the fence from the moment the lease changed hands.
 *
 * Redis Cluster: actors of different shards have different hash tags, so their keys are in
 * different slots, possibly on different nodes, and ioredis rejects a Cluster pipeline whose keys
 * are not all served by one node ("All keys in the pipeline should belong to the same slots
 * allocation group"). On a Cluster client each chunk is therefore split into one pipeline per
 * shard (one slot each), all sent at once: still one round trip per node in parallel, and a
 * MOVED during resharding redirects a whole single-slot pipeline, which ioredis handles.
 */
export async function recoverMany(
  client: RedisClient,
  keys: KeyLayout,
  shardOf: (id: string) => number,
  actorIds: readonly string[],
  options: RecoverManyOptions = {},
): Promise<Map<string, Recovered>> {
  const chunkSize = options.chunkSize ?? defaultRecoverChunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw Object.assign(new RangeError(`recoverMany chunkSize must be a positive integer, got ${String(chunkSize)}`), {
      code: 'invalid_argument',
    });
  }
  const reads: Read[] = [];
  const seen = new Set<string>();
  for (const actorId of actorIds) {
    if (seen.has(actorId)) continue;
    seen.add(actorId);
    const shard = shardOf(actorId);
    reads.push({
      actorId,
      snapshotKey: keys.snapshot(shard, actorId),
      journalKey: keys.journal(shard, actorId),
      metaKey: keys.actorMeta(shard, actorId),
    });
  }

  const recovered = new Map<string, Recovered>();
  const failed = new Map<string, Error>();
  let broken: Error | undefined;
  for (let start = 0; start < reads.length; start += chunkSize) {
    const chunk = reads.slice(start, start + chunkSize);
    if (broken) {
      for (const r of chunk) failed.set(r.actorId, broken);
      continue;
    }
    broken = await readChunk(client, chunk, shardOf, recovered, failed);
  }
  if (failed.size > 0) throw new BulkRecoveryError(failed, recovered);
  return recovered;
}

/**
 * Reads one chunk into `recovered` / `failed`, in the chunk's order. Returns the error that
 * failed the chunk's round trip (so the caller stops sending), or undefined when Redis answered.
 */
async function readChunk(
  client: RedisClient,
  chunk: readonly Read[],
  shardOf: (id: string) => number,
  recovered: Map<string, Recovered>,
  failed: Map<string, Error>,
): Promise<Error | undefined> {
  // Per read of the chunk: its two replies, or the error of its whole pipeline.
  const outcomes: (
    { snap: PipelineReply | undefined; list: PipelineReply | undefined; last: PipelineReply | undefined } | Error | undefined
  )[] = chunk.map(() => undefined);
  const groups = client.isCluster ? groupByShard(chunk, shardOf) : [chunk.map((_, i) => i)];
  await Promise.all(
    groups.map(async (group) => {
      const pipeline = client.pipeline();
      for (const i of group) {
        pipeline.get(chunk[i]!.snapshotKey);
        pipeline.lrange(chunk[i]!.journalKey, 0, -1);
        pipeline.hget(chunk[i]!.metaKey, 'last');
      }
      try {
        const replies = await pipeline.exec(); // null only for an empty pipeline, which is never sent
        group.forEach((i, k) => (outcomes[i] = { snap: replies?.[3 * k], list: replies?.[3 * k + 1], last: replies?.[3 * k + 2] }));
      } catch (err) {
        const error = asError(err);
        for (const i of group) outcomes[i] = error;
      }
    }),
  );
  let broken: Error | undefined;
  chunk.forEach((r, i) => {
    const outcome = outcomes[i];
    const err = outcome instanceof Error ? outcome : (outcome?.snap?.[0] ?? outcome?.list?.[0] ?? outcome?.last?.[0] ?? null);
    if (err) {
      // A reply error (WRONGTYPE, ...) concerns this actor's keys; any other (connection lost,
      // timeout, a whole pipeline refused) concerns the connection: later chunks would meet it too.
      if (err.name !== 'ReplyError') broken = err;
      failed.set(r.actorId, withActor(r.actorId, err));
      return;
    }
    if (outcome instanceof Error || !outcome?.snap || !outcome.list || !outcome.last) {
      failed.set(r.actorId, withActor(r.actorId, new Error('no reply from Redis')));
      return;
    }
    try {
      const state = decodeRecovered(outcome.snap[1] as string | null, outcome.list[1] as string[]);
      checkComplete(state, outcome.last[1] as string | null);
      recovered.set(r.actorId, state);
    } catch (decodeErr) {
      failed.set(r.actorId, withActor(r.actorId, asError(decodeErr)));
    }
  });
  return broken;
}

/**
 * Refuses a recovery that does not reach the last journaled seq (a journal key evicted or edited
 * by hand, a bug): the actor would go on from an older state, and every window holding its next
 * step would be refused by the fence script's seq check — with it every step of its shard written
 * in the same window. Failing here keeps the damage to that one actor, and says what is wrong.
 */
function checkComplete(state: Recovered, lastJournaled: string | null): void {
  const last = lastJournaled === null ? 0 : Number(lastJournaled);
  const reached = state.events.length > 0 ? state.events[state.events.length - 1]!.seq : (state.snapshot?.seq ?? 0);
  if (reached !== last) {
    throw new Error(`its stored state ends at seq ${reached} but seq ${last} was journaled: the journal is damaged and needs repair`);
  }
}

/** Indexes into `chunk`, one list per shard (one Redis Cluster slot each). */
function groupByShard(chunk: readonly Read[], shardOf: (id: string) => number): number[][] {
  const byShard = new Map<number, number[]>();
  chunk.forEach((r, i) => {
    const shard = shardOf(r.actorId);
    let list = byShard.get(shard);
    if (!list) byShard.set(shard, (list = []));
    list.push(i);
  });
  return [...byShard.values()];
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

const withActor = (actorId: string, err: Error): Error => new Error(`cannot recover ${actorId}: ${err.message}`, { cause: err });
