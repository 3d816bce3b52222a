-- regenerate, on one server: KEYS[1] moves to the fresh KEYS[2] with its data,
-- creation time, owner and counters, in one step, and in the activity and
-- deadline indexes KEYS[3] and KEYS[4] if the store keeps them (one bucket
-- on one server). Returns
-- {1, owner} if moved (owner '' when it has none), {0} if KEYS[1] is absent.
local ttl = live_ttl(KEYS[1])
if not ttl then return {'0'} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[2], LAST, now_ms())
if KEYS[4] then
  untrack(KEYS[1], KEYS[3], KEYS[4])
  track(KEYS[2], KEYS[3], KEYS[4], now_ms(), ttl)
end
return {'1', redis.call('HGET', KEYS[2], OWNER) or ''}
