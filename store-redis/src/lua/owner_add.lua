-- An owner's index KEYS[1] (handle -> session id) gains ARGV[1] -> ARGV[2],
-- and lives at least ARGV[3] ms more: as long as any session bound to it.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
