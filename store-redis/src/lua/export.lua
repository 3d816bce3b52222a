-- regenerate on a cluster, step 1 (the two ids live in different slots): the
-- whole hash of a live session, metadata included, or an empty list. The
-- session is sealed for ARGV[3] milliseconds, so that no write lands in it
-- while it is copied; a regenerate cancelled midway leaves it sealed no longer.
local ttl = live_ttl(KEYS[1])
if not ttl then return {} end
local fields = redis.call('HGETALL', KEYS[1])
local exported = {}
for i = 1, #fields, 2 do
  if fields[i] ~= SEALED then
    exported[#exported + 1] = fields[i]
    exported[#exported + 1] = fields[i + 1]
  end
end
redis.call('HSET', KEYS[1], SEALED, now_ms() + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ttl)
return exported
