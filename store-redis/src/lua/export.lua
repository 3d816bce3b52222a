-- regenerate on a cluster, step 1 (the two ids live in different slots): the
-- whole hash of a live session, metadata included, or an empty list.
local ttl = live_ttl(KEYS[1])
if not ttl then return {} end
return redis.call('HGETALL', KEYS[1])
