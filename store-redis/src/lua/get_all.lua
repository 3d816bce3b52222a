-- get_all(): every field and value, metadata included, or an empty list.
-- Counts a read.
local ttl, _, counts = live_ttl(KEYS[1])
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
touch(KEYS[1], ttl, READS, counts[1])
return redis.call('HGETALL', KEYS[1])
