-- get_many(ARGV[3..]): the fields' values in order (nil for absent ones), or
-- an empty list when the session is absent.
local ttl = live_ttl(KEYS[1])
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
return call_sliced('HMGET', KEYS[1], ARGV, 3, #ARGV)
