-- set_many: ARGV[3] is the write mode ('1': may create), ARGV[4] the number
-- n of fields set, ARGV[5 .. 4 + 2n] their field-value pairs, and the rest
-- the fields deleted. Returns 1 if applied, 0 if the session is absent and
-- the mode forbids creating it.
local key = KEYS[1]
local ttl, sealed = live_ttl(key)
if not ttl then
  if ARGV[3] ~= '1' then return 0 end
  -- Whatever is left of a session past its absolute lifetime goes first.
  redis.call('DEL', key)
  redis.call('HSET', key, CREATED, now_ms())
  ttl = tonumber(ARGV[1])
  local absolute = tonumber(ARGV[2])
  if absolute > 0 then ttl = math.min(ttl, absolute) end
elseif sealed then
  return 0
end
local last_set = 4 + 2 * tonumber(ARGV[4])
if last_set >= 5 then call_sliced('HSET', key, ARGV, 5, last_set) end
if #ARGV > last_set then call_sliced('HDEL', key, ARGV, last_set + 1, #ARGV) end
redis.call('PEXPIRE', key, ttl)
return 1
