-- extend(): 1 if the session exists (and its expiry slid), 0 if not.
local ttl = live_ttl(KEYS[1])
if not ttl then return 0 end
redis.call('PEXPIRE', KEYS[1], ttl)
touch(KEYS[1], ttl)
return 1
