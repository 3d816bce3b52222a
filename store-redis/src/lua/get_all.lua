-- get_all(): {due, fields}: every field and value, metadata included, or an
-- empty list, and in how many ms a read must slide the expiry again (see
-- read_touch). Counts a read, and slides the expiry if a refresh is due
-- (ARGV[3], the touch granularity).
local ttl, _, counts, meta = live_ttl(KEYS[1])
if not ttl then return {0, {}} end
local due = read_touch(KEYS[1], ttl, counts[1], meta)
return {due, redis.call('HGETALL', KEYS[1])}
