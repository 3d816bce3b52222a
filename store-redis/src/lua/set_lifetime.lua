-- set_lifetime: ARGV[3] is the session's own idle timeout in milliseconds,
-- kept in the hash and used by every later operation in place of ARGV[1];
-- ARGV[4] the policy's touch_after, in milliseconds. Returns the session's
-- new time to live in milliseconds, or -1 (changing nothing) if it is
-- absent or sealed by a cluster regenerate.
--
-- A shorter timeout leaves the session up to touch_after beyond it, never
-- beyond the time it had left, its absolute lifetime or its owner's hard
-- deadline. Other processes may be serving its reads with a plain command,
-- sliding nothing, until the refresh their last read script said was due,
-- at most touch_after from now (see RedisStore's plain read path); they
-- slide it by the new timeout from then on. Expiring it sooner would end
-- it while they read it.
local key = KEYS[1]
local ttl, sealed, _, meta = live_ttl(key)
if not ttl or sealed then return -1 end
local shorter = tonumber(ARGV[3]) < tonumber(meta[3] or ARGV[1])
redis.call('HSET', key, IDLE, ARGV[3])
ttl = live_ttl(key)
local grace = tonumber(ARGV[4])
if shorter and grace > 0 then
  local limit = math.min(ttl + grace, hard_left(meta) or ttl + grace)
  ttl = math.max(ttl, math.min(redis.call('PTTL', key), limit))
end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl)
return ttl
