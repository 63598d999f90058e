/** The Lua script every actor write goes through: it checks the shard's fence token, then writes. */
import type { RedisClient } from './redis-connection.ts';

/**
 * KEYS: [fence, reminder index, then per actor: journal, snapshot, meta] — one shard, so one slot.
 * ARGV: [token, setCount, deleteCount, (score, member) × setCount, member × deleteCount,
 *        then per actor: eventCount, firstSeq, snapshotSeq ('' = none), snapshotJson, events...].
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
 * Returns one status per actor: 'OK', 'SEQ <last>' or 'NOT_WRITTEN'. Atomic per call.
 */
const SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  return redis.error_reply('FENCED ' .. (cur or 'none'))
end
local nSet = tonumber(ARGV[2])
local nDel = tonumber(ARGV[3])
if nSet + nDel > 0 then
  local t = redis.call('TYPE', KEYS[2])['ok']
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE the reminder index ' .. KEYS[2] .. ' is a ' .. t)
  end
end
local first_actor_arg = 4 + 2 * nSet + nDel
local out = {}
local lasts = {}
local expect = {}
local refused = false
local a = first_actor_arg
for k = 3, #KEYS, 3 do
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
local r = 4
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
for k = 3, #KEYS, 3 do
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
