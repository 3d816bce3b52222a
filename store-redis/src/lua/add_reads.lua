-- Reads served without a script (see RedisStore's plain read path), or after
-- a cluster regenerate the reads the old copy took while sealed: ARGV[1],
-- added to session KEYS[1] if it still exists. 1 if it does, 0 if not.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], '\255reads', ARGV[1])
  return 1
end
return 0
