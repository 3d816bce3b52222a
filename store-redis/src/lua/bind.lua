-- bind: ARGV[3] becomes the owner of the live session KEYS[1]. The first
-- bind fixes its hard deadline: its creation plus the absolute lifetime,
-- or, without one, now plus ARGV[4] ms; the owner's index is kept at least
-- that long. {1, previous owner or ''} if bound, {0} if absent or sealed.
local key = KEYS[1]
local ttl, sealed = live_ttl(key)
if not ttl or sealed then return {'0'} end
local now = now_ms()
local previous = redis.call('HGET', key, OWNER) or ''
if not redis.call('HGET', key, UNTIL) then
  local absolute = tonumber(ARGV[2])
  local deadline
  if absolute > 0 then
    deadline = tonumber(redis.call('HGET', key, CREATED)) + absolute
  else
    deadline = now + tonumber(ARGV[4])
  end
  redis.call('HSET', key, UNTIL, int(deadline))
end
redis.call('HSET', key, OWNER, ARGV[3])
ttl = live_ttl(key)
if not ttl then return {'0'} end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl)
return {'1', previous}
