-- Reads served without a script (see RedisStore's plain read path), or after
-- a cluster regenerate the reads the old copy took while sealed: ARGV[i],
-- added to session KEYS[i] if it still exists. For each, 1 if it does, 0 if
-- not. Many sessions in one call, so that a flush of many sessions read once
-- each costs Redis one command, not one per session.
local found = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, '\255reads', ARGV[i])
    found[i] = 1
  else
    found[i] = 0
  end
end
return found
