-- get(ARGV[3]): the field's value, or nil.
local ttl = live_ttl(KEYS[1])
if not ttl then return false end
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('HGET', KEYS[1], ARGV[3])
