-- set_lifetime: ARGV[3] is the session's own idle timeout in milliseconds,
-- kept in the hash and used by every later operation in place of ARGV[1].
-- Returns the session's new time to live in milliseconds, or -1 (changing
-- nothing) if it is absent or sealed by a cluster regenerate.
local key = KEYS[1]
local ttl, sealed = live_ttl(key)
if not ttl or sealed then return -1 end
redis.call('HSET', key, IDLE, ARGV[3])
ttl = live_ttl(key)
redis.call('PEXPIRE', key, ttl)
touch(key, ttl)
return ttl
