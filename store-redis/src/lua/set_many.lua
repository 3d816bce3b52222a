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

-- What the write adds and takes away, from the fields it names alone.
-- Only a session that grows can cross a limit (see `refusal`), so only
-- then is its whole size read: the scan costs a command per key.
local keys_delta, bytes_delta = 0, 0
-- The length of `field`'s value, or nil if the session has no such field
-- (HSTRLEN is 0 for both an absent field and an empty value).
local function stored_len(field)
  if created then return nil end
  local len = redis.call('HSTRLEN', key, field)
  if len > 0 or redis.call('HEXISTS', key, field) == 1 then return len end
  return nil
end
for i = 7, last_set, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local old = stored_len(field)
  if old then
    bytes_delta = bytes_delta + #value - old
  else
    keys_delta = keys_delta + 1
    bytes_delta = bytes_delta + #field + #value
  end
end
for i = last_set + 1, #ARGV do
  local field = ARGV[i]
  local old = stored_len(field)
  if old then
    keys_delta = keys_delta - 1
    bytes_delta = bytes_delta - #field - old
  end
end
if keys_delta > 0 or bytes_delta > 0 then
  local keys, bytes = 0, 0
  if not created then keys, bytes = size(key) end
  local refused = refusal(keys, bytes, keys + keys_delta, bytes + bytes_delta)
  if refused then return refused end
end

if created then create(key) end
if last_set >= 7 then call_sliced('HSET', key, ARGV, 7, last_set) end
if #ARGV > last_set then call_sliced('HDEL', key, ARGV, last_set + 1, #ARGV) end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl, WRITES, (not created) and counts[2] or 0)
return {1}
