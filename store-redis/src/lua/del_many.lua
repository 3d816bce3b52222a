-- del_many(ARGV[3..]): 1 if the session exists (and the fields are gone), 0 if not.
-- Counts a write.
local ttl, sealed, counts = live_ttl(KEYS[1])
if not ttl or sealed then return 0 end
if #ARGV >= 3 then call_sliced('HDEL', KEYS[1], ARGV, 3, #ARGV) end
redis.call('PEXPIRE', KEYS[1], ttl)
touch(KEYS[1], ttl, WRITES, counts[2])
return 1
