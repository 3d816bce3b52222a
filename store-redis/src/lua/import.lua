-- regenerate on a cluster, step 2: KEYS[1] becomes exactly the hash given as
-- field-value pairs in ARGV[3..], creation time included, with the TTL that
-- creation time allows, in its bucket's indexes KEYS[2] and KEYS[3]. 1 if
-- written, 0 if that session is already too old.
local key = KEYS[1]
redis.call('DEL', key)
call_sliced('HSET', key, ARGV, 3, #ARGV)
local ttl = live_ttl(key)
if not ttl then
  redis.call('DEL', key)
  return 0
end
redis.call('PEXPIRE', key, ttl)
touch(key, ttl)
return 1
