-- count_active: KEYS[1] and KEYS[2] are one bucket's activity and deadline
-- indexes; ARGV[3] the window in ms. Forgets the bucket's expired sessions,
-- then counts those active within the window.
local now = now_ms()
while prune(KEYS[1], KEYS[2], now, 1000) == 1000 do end
return redis.call('ZCOUNT', KEYS[1], int(now_us() - 1000 * tonumber(ARGV[3])), '+inf')
