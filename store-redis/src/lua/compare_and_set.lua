-- compare_and_set: ARGV[3] the write mode ('1': may create), ARGV[4] and
-- ARGV[5] the limits (see `refusal`), ARGV[6] the field, ARGV[7] '1' if a
-- value is expected (ARGV[8]) and '0' if the field is expected absent,
-- ARGV[9] '1' if a value is set (ARGV[10]) and '0' to delete the field.
-- Returns {1} if applied (a write), {2, value} if the field holds another
-- value, or nothing (false), and nothing was written (a read), {0} if the
-- session is absent and may not be created, {-1, keys} or {-2, bytes} if
-- the session would grow past a limit.
local key, field = KEYS[1], ARGV[6]
local expected = ARGV[7] == '1' and ARGV[8]
local new = ARGV[9] == '1' and ARGV[10]
local ttl, sealed, counts, meta = live_ttl(key, {field})
local created = false
if not ttl then
  if ARGV[3] ~= '1' then return {0} end
  -- An absent session holds nothing: only "absent" matches, and only a
  -- value to set creates it.
  if expected then return {2, false} end
  if not new then return {1} end
  created = true
  ttl = fresh_ttl()
elseif sealed then
  return {0}
end
local current = (not created) and meta[7]
if current ~= expected then
  redis.call('PEXPIRE', key, ttl)
  touch(key, ttl, READS, counts[1])
  return {2, current}
end
if new then
  if created then
    local refused = refusal(0, 0, 1, #field + #new)
    if refused then return refused end
    create(key)
  elseif not current or #new > #current then
    local keys, bytes = size(key)
    local keys_after, bytes_after = keys, bytes + #new
    if current then
      bytes_after = bytes_after - #current
    else
      keys_after = keys + 1
      bytes_after = bytes_after + #field
    end
    local refused = refusal(keys, bytes, keys_after, bytes_after)
    if refused then return refused end
  end
  redis.call('HSET', key, field, new)
elseif current then
  redis.call('HDEL', key, field)
end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl, WRITES, (not created) and counts[2] or 0)
return {1}
