-- regenerate on a cluster, step 3: deletes KEYS[1] only if it still holds
-- exactly the field-value pairs ARGV[2..] that step 1 exported (the seal,
-- the read counter and the last activity aside: reads go on while it is
-- sealed), so that a write after the seal ran out is never lost. A flush's
-- token is not aside: the reads that flush added are caught up, but the
-- copy must hold its token with them, so a flush meanwhile makes the copy
-- go again. Then takes it out of its bucket's indexes KEYS[3] and KEYS[4],
-- and leaves the marker KEYS[2] (same slot) for ARGV[1] milliseconds, so
-- that a cleanup after a lost reply can tell "moved" from "destroyed".
-- {1, reads} if deleted (its read counter, for the copy to catch up), {0}
-- if it changed.
local SEALED = '\255sealed'
local READS = '\255reads'
local LAST = '\255last'
local current = redis.call('HGETALL', KEYS[1])
local exported = {}
local expected = 0
for i = 2, #ARGV, 2 do
  if ARGV[i] ~= READS and ARGV[i] ~= LAST then
    exported[ARGV[i]] = ARGV[i + 1]
    expected = expected + 2
  end
end
local seen = 0
local reads = '0'
for i = 1, #current, 2 do
  if current[i] == READS then
    reads = current[i + 1]
  elseif current[i] ~= SEALED and current[i] ~= LAST then
    if exported[current[i]] ~= current[i + 1] then return {'0'} end
    seen = seen + 2
  end
end
if seen ~= expected then return {'0'} end
redis.call('DEL', KEYS[1])
if KEYS[4] then
  redis.call('ZREM', KEYS[3], KEYS[1])
  redis.call('ZREM', KEYS[4], KEYS[1])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return {'1', reads}
