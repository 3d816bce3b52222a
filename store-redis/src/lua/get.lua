-- get(ARGV[4]): the field's value, or nil. Counts a read, and slides the
-- expiry if a refresh is due (ARGV[3], the touch granularity). The value
-- comes with the metadata, in one HMGET.
local ttl, _, counts, meta = live_ttl(KEYS[1], {ARGV[4]})
if not ttl then return false end
read_touch(KEYS[1], ttl, counts[1], meta)
return meta[7]
