-- After a cluster regenerate: the reads the old copy took while sealed,
-- ARGV[1], added to the new one KEYS[1] if it still exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], '\255reads', ARGV[1])
end
return 1
