-- Reads served without a script (see RedisStore's plain read path), or after
-- a cluster regenerate the reads the old copy took while sealed: ARGV[i],
-- added to session KEYS[i] if it still exists. For each, 1 if it does, 0 if
-- not (or if its key refused the count, see guard.lua). Many sessions in one
-- call, so that a flush of many sessions read once each costs Redis one
-- call, not one per session; and one command per session that has a count
-- already (the usual case), not an existence check first. A count that
-- HINCRBY had to make is checked: a hash that holds nothing else is one it
-- made for a session that is gone, and goes again.
local READS = '\255reads'
local function add(key, count)
  local reads = redis.call('HINCRBY', key, READS, count)
  if reads == tonumber(count) and redis.call('HLEN', key) == 1 then
    redis.call('DEL', key)
    return 0
  end
  return 1
end
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = guarded(add, key, ARGV[i]) or 0
end
return found
