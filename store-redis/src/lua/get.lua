-- get(ARGV[3]): the field's value, or nil. Counts a read. The value comes
-- with the metadata, in one HMGET.
local ttl, _, counts, meta = live_ttl(KEYS[1], {ARGV[3]})
if not ttl then return false end
redis.call('PEXPIRE', KEYS[1], ttl)
touch(KEYS[1], ttl, READS, counts[1])
return meta[7]
