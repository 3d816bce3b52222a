-- Reads served without a script (see RedisStore's plain read path), or after
-- a cluster regenerate the reads the old copy took while sealed: for session
-- KEYS[i], ARGV[2i - 1] reads to add to its read counter if it still exists,
-- and ARGV[2i] the token of the flush call that sends them ('' for none).
-- For each, 1 if it exists, 0 if not (or if its key refused the count, see
-- guard.lua). Many sessions in one call, so that a flush of many sessions
-- read once each costs Redis one call, not one per session, and two
-- commands per session that has a count already (the usual case).
--
-- The token stays in the hash, as its store's latest (see passes.lua). A
-- flush call that got no answer may have run: its reads then go out again
-- under the same token, and finding it there, this adds nothing. A fresh
-- token can be there only if a call sent again ran before the first one,
-- so the check holds either way round, until the store's next call for
-- the session replaces the token (see passes.lua).
local READS = '\255reads'
local PASS = '\255pass'
local function add(key, count, token)
  local got = redis.call('HMGET', key, READS, PASS)
  if token ~= '' and passed(got[2], token) then return 1 end
  if not got[1] and redis.call('EXISTS', key) == 0 then return 0 end
  local reads = got[1] or '0'
  -- Refused as HINCRBY would: only a whole number is a count.
  if not string.match(reads, '^-?%d+$') then error('the read counter is not a whole number') end
  reads = string.format('%.0f', tonumber(reads) + tonumber(count))
  if token ~= '' then
    redis.call('HSET', key, READS, reads, PASS, with_pass(got[2], token))
  else
    redis.call('HSET', key, READS, reads)
  end
  return 1
end
local found = {}
for i, key in ipairs(KEYS) do
  local ok, added = guarded(add, key, ARGV[2 * i - 1], ARGV[2 * i])
  found[i] = ok and added or 0
end
return found
