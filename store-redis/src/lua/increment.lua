-- increment: ARGV[3] the write mode ('1': may create), ARGV[4] and ARGV[5]
-- the limits (see `refusal`), ARGV[6] the field, ARGV[7] the delta and
-- ARGV[8] the largest value accepted, in bytes.
-- HINCRBY does the sum, with Redis's own integer rules (which
-- session_core::atomic::parse_integer follows). Returns {1, value} with the
-- new value as text (exact, where a Lua number is not past 2^53), {0} if
-- the session is absent and may not be created, {-1, keys} or {-2, bytes}
-- past a limit (or {-5, bytes} past the value limit), {-3} if the field is
-- not an integer and {-4} on overflow; nothing is written then. Any other
-- error of HINCRBY (out of memory, say) is the server's, and raised as it
-- is. Counts a write.
local key, field = KEYS[1], ARGV[6]
local ttl, sealed, counts, meta = live_ttl(key, {field})
local created = false
if not ttl then
  if ARGV[3] ~= '1' then return {0} end
  created = true
  ttl = fresh_ttl()
elseif sealed then
  return {0}
end
local current = (not created) and meta[7]
if created then create(key) end
local sum = redis.pcall('HINCRBY', key, field, ARGV[7])
if type(sum) == 'table' and sum.err then
  if created then redis.call('DEL', key) end
  if string.find(sum.err, 'overflow', 1, true) then return {-4} end
  if string.find(sum.err, 'not an integer', 1, true) then return {-3} end
  return redis.error_reply(sum.err)
end
local value = redis.call('HGET', key, field)
local function undo()
  if created then
    redis.call('DEL', key)
  elseif current then
    redis.call('HSET', key, field, current)
  else
    redis.call('HDEL', key, field)
  end
end
if #value > tonumber(ARGV[8]) then
  undo()
  return {-5, #value}
end
if not current or #value > #current then
  -- Counted after the sum, and undone if refused: its length was unknown.
  local keys, bytes = size(key)
  local keys_before, bytes_before = keys - 1, bytes - #field - #value
  if current then keys_before, bytes_before = keys, bytes - #value + #current end
  local refused = refusal(keys_before, bytes_before, keys, bytes)
  if refused then
    undo()
    return refused
  end
end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl, WRITES, (not created) and counts[2] or 0)
return {1, value}
