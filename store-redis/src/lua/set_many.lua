-- set_many: ARGV[3] is the write mode ('1': may create), ARGV[4] and ARGV[5]
-- the most user keys and bytes (keys plus values) the session may hold,
-- ARGV[6] the number n of fields set, ARGV[7 .. 6 + 2n] their field-value
-- pairs, and the rest the fields deleted (never one also set). Returns
-- {1} if applied, {0} if the session is absent and the mode forbids
-- creating it, {-1, keys} or {-2, bytes} if the session would grow past a
-- limit (nothing is written then). Counts a write.
local key = KEYS[1]
local ttl, sealed, counts = live_ttl(key)
local created = false
if not ttl then
  if ARGV[3] ~= '1' then return {0} end
  created = true
  ttl = fresh_ttl()
elseif sealed then
  return {0}
end
local last_set = 6 + 2 * tonumber(ARGV[6])

-- The session's size before and after, counted before anything is written.
local keys, bytes = 0, 0
if not created then keys, bytes = size(key) end
local keys_after, bytes_after = keys, bytes
for i = 7, last_set, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if not created and redis.call('HEXISTS', key, field) == 1 then
    bytes_after = bytes_after - redis.call('HSTRLEN', key, field) + #value
  else
    keys_after = keys_after + 1
    bytes_after = bytes_after + #field + #value
  end
end
if not created then
  for i = last_set + 1, #ARGV do
    local field = ARGV[i]
    if redis.call('HEXISTS', key, field) == 1 then
      keys_after = keys_after - 1
      bytes_after = bytes_after - #field - redis.call('HSTRLEN', key, field)
    end
  end
end
local refused = refusal(keys, bytes, keys_after, bytes_after)
if refused then return refused end

if created then create(key) end
if last_set >= 7 then call_sliced('HSET', key, ARGV, 7, last_set) end
if #ARGV > last_set then call_sliced('HDEL', key, ARGV, last_set + 1, #ARGV) end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl, WRITES, (not created) and counts[2] or 0)
return {1}
