-- get(ARGV[4]): {due, value, left}: the field's value (nil if absent), in
-- how many ms a read must slide the expiry again, and the session's time to
-- live (see read_touch). Counts a read, and slides the expiry if a refresh
-- is due (ARGV[3], the touch granularity). The value comes with the
-- metadata, in one HMGET.
local ttl, _, counts, meta = live_ttl(KEYS[1], {ARGV[4]})
if not ttl then return {0, false, 0} end
local due, left = read_touch(KEYS[1], ttl, counts[1], meta)
return {due, meta[7], left}
