-- get_many(ARGV[3..]): the fields' values in order (nil for absent ones), or
-- an empty list when the session is absent. Counts a read.
local ttl, _, counts = live_ttl(KEYS[1])
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
touch(KEYS[1], ttl, READS, counts[1])
return call_sliced('HMGET', KEYS[1], ARGV, 3, #ARGV)
