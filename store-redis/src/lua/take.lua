-- take(ARGV[3]): the field's value, deleted in the same step; nil if it or
-- the session is absent (or sealed by a cluster regenerate, as for every
-- write). Counts a write, and slides the expiry, even when nothing was there.
local key = KEYS[1]
local ttl, sealed, counts, meta = live_ttl(key, {ARGV[3]})
if not ttl or sealed then return false end
local value = meta[7]
if value then redis.call('HDEL', key, ARGV[3]) end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl, WRITES, counts[2])
return value
