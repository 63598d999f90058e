/** The Lua script every actor write goes through: it checks the shard's fence token, then writes. */
import { Counter, type Registry } from 'prom-client';
import type { LogAppend } from '../persistence-port.ts';
import type { RedisClient } from './redis-connection.ts';

/**
 * KEYS: [fence, reminder index, then per actor: journal, snapshot, meta, then per log: stream] —
 *       one shard, so one slot.
 * ARGV: [token, setCount, deleteCount, logCount, logMaxLen, logTtlMs,
 *        (score, member) × setCount, member × deleteCount,
 *        then per actor: eventCount, firstSeq, snapshotSeq ('' = none), snapshotJson, events...,
 *        then per log: channel, entryCount, (at, entryJson) × entryCount].
 *
 * Rejects the whole call with `FENCED <current>` unless the token is the shard's current one: a
 * node that lost its lease can never overwrite the new owner's state. Then, per actor, the meta
 * hash holds `last` (highest journaled seq) and `snap` (snapshot seq): a write whose first seq is
 * not `last + 1` is refused with `SEQ <last>` (a write that timed out may have landed after its
 * actor re-read the store; the actor must re-read again rather than fork its journal). The call is
 * a window of causally linked steps, so it is all or nothing: every actor is checked first, and
 * if any is refused nothing is written (the others answer `NOT_WRITTEN`). A snapshot older than
 * the stored one is skipped; a newer one trims the journal up to it.
 * The window's net reminder changes (sets and deletes disjoint, see ReminderChanges) are applied to
 * the shard's reminder index only when the whole window is written; a reminder index key of the
 * wrong type fails the call with `WRONGTYPE` before anything is written.
 * Log entries (apps' event history) are appended last, only when the whole window is written:
 * `XADD <stream> MAXLEN ~ logMaxLen * at <at> e <entryJson>` each (ids are Redis stream ids, so
 * they only grow), one `PEXPIRE logTtlMs` per log, and one `PUBLISH` per log on its channel of
 * `{"p": prevId, "e": [[id, at, entry], ...]}` (the entries as JSON, in order; `prevId` the log's
 * newest id before this call, '' when it had none): announcements are chained, so a follower that
 * missed one (pub/sub is lossy) sees it by the next one's `p`. The PUBLISH is a `pcall`: it runs
 * after the writes (Lua does not roll back), so one Redis refuses (an ACL user without the channel)
 * must not fail a window that is written; the followers catch up from the log. A stream key of the
 * wrong type is skipped (its entries are not written, the window is): one bad key must not fail
 * every window of its shard forever; the reply then ends with one `LOGTYPE <key> <type>` per skipped log.
 * Returns one status per actor: 'OK', 'SEQ <last>' or 'NOT_WRITTEN' (then the skipped logs). Atomic per call.
 */
const SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  return redis.error_reply('FENCED ' .. (cur or 'none'))
end
local nSet = tonumber(ARGV[2])
local nDel = tonumber(ARGV[3])
local nLogs = tonumber(ARGV[4])
local last_actor_key = #KEYS - nLogs
if nSet + nDel > 0 then
  local t = redis.call('TYPE', KEYS[2])['ok']
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE the reminder index ' .. KEYS[2] .. ' is a ' .. t)
  end
end
local bad_log = {}
for k = last_actor_key + 1, #KEYS do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'stream' and t ~= 'none' then bad_log[k] = t end
end
local first_actor_arg = 7 + 2 * nSet + nDel
local out = {}
local lasts = {}
local expect = {}
local refused = false
local a = first_actor_arg
for k = 3, last_actor_key, 3 do
  local n = tonumber(ARGV[a])
  local first = tonumber(ARGV[a + 1])
  local snapSeq = tonumber(ARGV[a + 2])
  -- An actor named twice in one call is checked against its own earlier part, not the stored seq.
  local last = expect[KEYS[k + 2]] or tonumber(redis.call('HGET', KEYS[k + 2], 'last') or '0')
  lasts[k] = last
  if (n > 0 and first ~= last + 1) or (n == 0 and snapSeq and snapSeq > last) then
    out[#out + 1] = 'SEQ ' .. last
    refused = true
  else
    out[#out + 1] = 'OK'
    if n > 0 then expect[KEYS[k + 2]] = first + n - 1 end
  end
  a = a + 4 + n
end
if refused then
  for i = 1, #out do
    if out[i] == 'OK' then out[i] = 'NOT_WRITTEN' end
  end
  return out
end
-- 500 arguments per call keep unpack within Lua's stack; an even count never splits a (score, member) pair.
local r = 7
local i = 0
while i < 2 * nSet do
  local upto = math.min(i + 500, 2 * nSet)
  redis.call('ZADD', KEYS[2], unpack(ARGV, r + i, r + upto - 1))
  i = upto
end
r = r + 2 * nSet
i = 0
while i < nDel do
  local upto = math.min(i + 500, nDel)
  redis.call('ZREM', KEYS[2], unpack(ARGV, r + i, r + upto - 1))
  i = upto
end
a = first_actor_arg
for k = 3, last_actor_key, 3 do
  local n = tonumber(ARGV[a])
  local first = tonumber(ARGV[a + 1])
  local snapSeq = tonumber(ARGV[a + 2])
  local snap = ARGV[a + 3]
  a = a + 4
  local last = lasts[k]
  local i = 0
  while i < n do
    local upto = math.min(i + 500, n)
    redis.call('RPUSH', KEYS[k], unpack(ARGV, a + i, a + upto - 1))
    i = upto
  end
  if n > 0 then
    last = first + n - 1
    redis.call('HSET', KEYS[k + 2], 'last', last)
  end
  if snapSeq and snapSeq > tonumber(redis.call('HGET', KEYS[k + 2], 'snap') or '0') then
    redis.call('SET', KEYS[k + 1], snap)
    redis.call('HSET', KEYS[k + 2], 'snap', snapSeq)
    local keep = last - snapSeq
    if keep <= 0 then
      redis.call('DEL', KEYS[k])
    else
      redis.call('LTRIM', KEYS[k], -keep, -1)
    end
  end
  a = a + n
end
local skipped = {}
for k = last_actor_key + 1, #KEYS do
  local channel = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  if bad_log[k] then
    skipped[#skipped + 1] = 'LOGTYPE ' .. KEYS[k] .. ' ' .. bad_log[k]
  elseif n > 0 then
    local newest = redis.call('XREVRANGE', KEYS[k], '+', '-', 'COUNT', 1)[1]
    local parts = {}
    for j = 0, n - 1 do
      local at = ARGV[a + 2 * j]
      local e = ARGV[a + 2 * j + 1]
      local id = redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[5], '*', 'at', at, 'e', e)
      parts[j + 1] = '["' .. id .. '",' .. at .. ',' .. e .. ']'
    end
    redis.call('PEXPIRE', KEYS[k], ARGV[6])
    redis.pcall('PUBLISH', channel, '{"p":"' .. (newest and newest[1] or '') .. '","e":[' .. table.concat(parts, ',') .. ']}')
  end
  a = a + 2 * n
end
for s = 1, #skipped do out[#out + 1] = skipped[s] end
return out
`;

/**
 * The command name of the script. The connection must not auto-pipeline it: ioredis serves one
 * auto-pipeline per connection at a time, so a window would wait behind whatever else the node
 * sent in the tick before (lease renewals, recoveries, credentials) and windows of different
 * shards could never be in flight together. Sent as it is issued, they are pipelined on the socket.
 */
export const FENCED_WRITE_COMMAND = 'fencedWrite';

export interface FencedWriteClient {
  /** One status per actor, in KEYS order: 'OK', 'SEQ <last journaled seq>' or 'NOT_WRITTEN'. */
  fencedWrite(numKeys: number, ...keysAndArgs: string[]): Promise<string[]>;
}

/** Registers the script on the client (EVALSHA, falling back to EVAL once per connection). */
export function defineFencedWrite(client: RedisClient): RedisClient & FencedWriteClient {
  if (!(FENCED_WRITE_COMMAND in client)) client.defineCommand(FENCED_WRITE_COMMAND, { lua: SCRIPT });
  return client as RedisClient & FencedWriteClient;
}

/**
 * The reason of the script's fence rejection: the shard's current fence token as the script saw it
 * (`none` when the shard has no fence), or undefined when `err` is not a fence rejection.
 */
export function fenceRejection(err: unknown): string | undefined {
  const m = err instanceof Error ? /FENCED (\S+)/.exec(err.message) : null;
  return m?.[1];
}

/** How much of each log (a home's event history) Redis keeps. */
export interface LogRetention {
  /** Entries kept per log, about (`XADD MAXLEN ~`: Redis trims whole stream nodes, so a few more may stay). */
  readonly length: number;
  /** Milliseconds a log is kept after its last entry. */
  readonly ttlMs: number;
}

/** The defaults of EVENT_LOG_LENGTH and EVENT_LOG_TTL_MS. */
export const defaultLogRetention: LogRetention = { length: 200, ttlMs: 3_600_000 };

/**
 * The script's log part of one window: the stream keys (KEYS, after the actors'), the header
 * (ARGV after deleteCount: logCount, logMaxLen, logTtlMs) and the per-log arguments (ARGV, after
 * the actors'). Appends are grouped by log, each log's in order. An entry that cannot be encoded
 * (the host checks each in its step, so this is a bug) is left out and counted in `skipped`: one
 * bad entry must not fail its window, and with it every window of its shard that retries it.
 */
export function logArguments(
  appends: readonly LogAppend[],
  retention: LogRetention,
  keyOf: (log: string) => string,
  channelOf: (log: string) => string,
): { keys: string[]; header: string[]; args: string[]; bytes: number; skipped: string[] } {
  const byLog = new Map<string, string[]>();
  const skipped: string[] = [];
  let bytes = 0;
  for (const { log, at, entry } of appends) {
    const json = Number.isSafeInteger(at) ? encodeLogEntry(entry) : undefined;
    if (json === undefined) {
      skipped.push(log);
      continue;
    }
    let args = byLog.get(log);
    if (!args) byLog.set(log, (args = []));
    args.push(String(at), json);
    bytes += json.length;
  }
  const keys: string[] = [];
  const args: string[] = [];
  for (const [log, entries] of byLog) {
    keys.push(keyOf(log));
    args.push(channelOf(log), String(entries.length / 2));
    for (const a of entries) args.push(a);
  }
  return { keys, header: [String(keys.length), String(retention.length), String(retention.ttlMs)], args, bytes, skipped };
}

/** A log entry as JSON, or undefined when it has none (undefined, a function) or cannot be encoded (cyclic, BigInt). */
export function encodeLogEntry(entry: unknown): string | undefined {
  try {
    return JSON.stringify(entry);
  } catch {
    return undefined;
  }
}

/** The logs the script skipped because their key holds another type: `[key, type]` per `LOGTYPE` status after the actors'. */
export function skippedLogs(statuses: readonly string[], actors: number): [string, string][] {
  const out: [string, string][] = [];
  for (let i = actors; i < statuses.length; i++) {
    const m = /^LOGTYPE (\S+) (\S+)$/.exec(statuses[i]!);
    if (m) out.push([m[1]!, m[2]!]);
  }
  return out;
}

const LOG_SKIPPED = 'iot_event_log_skipped_total';

/** `iot_event_log_skipped_total{reason}`: log entries windows were written without (`wrongtype`: the log key; `encode`: the entry). */
export function logSkippedCounter(registry: Registry): Counter<'reason'> {
  const existing = registry.getSingleMetric(LOG_SKIPPED);
  if (existing) return existing as Counter<'reason'>;
  return new Counter({
    name: LOG_SKIPPED,
    help: 'Event log entries a window was written without: a log key of another type, or an entry that does not encode',
    labelNames: ['reason'],
    registers: [registry],
  });
}
