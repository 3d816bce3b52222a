-- get_all(): every field and value, metadata included, or an empty list.
-- Counts a read, and slides the expiry if a refresh is due (ARGV[3], the
-- touch granularity).
local ttl, _, counts, meta = live_ttl(KEYS[1])
if not ttl then return {} end
read_touch(KEYS[1], ttl, counts[1], meta)
return redis.call('HGETALL', KEYS[1])
