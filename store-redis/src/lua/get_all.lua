-- get_all(): {due, fields, left}: every field and value, metadata included,
-- or an empty list, in how many ms a read must slide the expiry again, and
-- the session's time to live (see read_touch). Counts a read, and slides the
-- expiry if a refresh is due (ARGV[3], the touch granularity).
local ttl, _, counts, meta = live_ttl(KEYS[1])
if not ttl then return {0, {}, 0} end
local due, left = read_touch(KEYS[1], ttl, counts[1], meta)
return {due, redis.call('HGETALL', KEYS[1]), left}
