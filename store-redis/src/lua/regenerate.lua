-- regenerate, on one server: KEYS[1] moves to the fresh KEYS[2] with its data
-- and creation time, in one step. 1 if moved, 0 if KEYS[1] is absent.
local ttl = live_ttl(KEYS[1])
if not ttl then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
