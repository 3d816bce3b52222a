-- get_all(): every field and value, metadata included, or an empty list.
local ttl = live_ttl(KEYS[1])
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('HGETALL', KEYS[1])
