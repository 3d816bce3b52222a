-- Shared head of every session script. KEYS[1] is the session's hash;
-- KEYS[2] and KEYS[3], when the store keeps an activity index, the activity
-- and deadline indexes of its bucket (in its slot). ARGV[1] is the idle
-- timeout and ARGV[2] the absolute lifetime (0: none), both in
-- milliseconds. Times come from the server's clock, so app servers with
-- skewed clocks agree on every session's age.
local CREATED = '\255created'
-- Set while a cluster regenerate copies the session to its new slot.
local SEALED = '\255sealed'
-- The session's own idle timeout in milliseconds, used in place of ARGV[1].
local IDLE = '\255idle'
-- The owner (a user id) of an owned session, and the hard deadline (Unix ms)
-- its owner's index is kept for: the session never outlives it.
local OWNER = '\255owner'
local UNTIL = '\255until'
-- Reads and writes, counted by the scripts that do them, and the last
-- activity (Unix ms).
local READS = '\255reads'
local WRITES = '\255writes'
local LAST = '\255last'
-- The latest tokens of the last stores whose calls wrote out reads served
-- without a script (see add_reads.lua and passes.lua), so that sending
-- such a call again adds nothing twice.
local PASS = '\255pass'

-- The server's clock, read once per script.
local CLOCK
local function now_us()
  if not CLOCK then
    local t = redis.call('TIME')
    CLOCK = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return CLOCK
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

-- A whole number as text (Lua would print large ones in exponent form).
local function int(n)
  return string.format('%.0f', n)
end

-- How many ms session `meta` (as live_ttl reads it) has before its
-- absolute lifetime (ARGV[2]) or its owner's hard deadline ends, whichever
-- comes first; nil if neither bounds it. No activity moves either.
local function hard_left(meta)
  local left
  local absolute = tonumber(ARGV[2])
  if absolute > 0 then left = tonumber(meta[1]) + absolute - now_ms() end
  if meta[4] then
    local owned = tonumber(meta[4]) - now_ms()
    if not left or owned < left then left = owned end
  end
  return left
end

-- The time to live Redis gives live session `key` (`meta` as live_ttl reads
-- it), cut to hard_left: our scripts never set it past that, but something
-- else can (a Node app's touch on the connect-redis layout, or a store
-- whose absolute lifetime was shortened since), and a read that takes it
-- as it is lets this process serve plain reads of the session after its
-- end. Cut, Redis removes the hash at its end, as from any process.
local function bounded_pttl(key, meta)
  local left = redis.call('PTTL', key)
  local hard = hard_left(meta)
  if hard and left > hard then
    redis.call('PEXPIRE', key, hard)
    left = hard
  end
  return left
end

-- The time to live of a live session touched now, or nil when it is absent
-- or past its absolute lifetime; whether a cluster regenerate has sealed it,
-- so that writes must find it gone; its counters {reads, writes}; and the
-- values of `fields` (a few user keys, or nil) from the 7th place on. One
-- HMGET reads all of them.
local function live_ttl(key, fields)
  local meta
  if fields then
    meta = redis.call('HMGET', key, CREATED, SEALED, IDLE, UNTIL, READS, WRITES, unpack(fields))
  else
    meta = redis.call('HMGET', key, CREATED, SEALED, IDLE, UNTIL, READS, WRITES)
  end
  if not meta[1] then return nil, false end
  local ttl = tonumber(meta[3] or ARGV[1])
  local hard = hard_left(meta)
  if hard then
    if hard <= 0 then return nil, false end
    ttl = math.min(ttl, hard)
  end
  local sealed = false
  if meta[2] then sealed = tonumber(meta[2]) > now_ms() end
  return ttl, sealed, {meta[5], meta[6]}, meta
end

-- Forgets the sessions of a bucket whose deadline has passed (at most
-- `limit`): their hashes expired by themselves. One that is still there
-- (touched by code that does not track activity) gets its real deadline.
local function prune(activity, deadlines, now, limit)
  local dead = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(dead) do
    local left = redis.call('PTTL', member)
    if left > 0 then
      redis.call('ZADD', deadlines, int(now + left), member)
    else
      redis.call('ZREM', activity, member)
      redis.call('ZREM', deadlines, member)
    end
  end
  return #dead
end

-- Records that session `key`, with `ttl` ms left, was active `now`: its
-- score in the bucket's activity index (last activity, in microseconds, so
-- that a page of it rarely splits sessions active at the same instant) and
-- deadline index (ms).
-- Both index keys live at least as long as any session in them. Prunes a
-- few expired sessions of the bucket, so the indexes never grow stale.
local function track(key, activity, deadlines, now, ttl)
  redis.call('ZADD', activity, int(now_us()), key)
  redis.call('ZADD', deadlines, int(now + ttl), key)
  if redis.call('PTTL', deadlines) < ttl then
    -- Twice as long, so that this is rarely needed; under 2^46 ms, so
    -- that the number stays an integer on its way to PEXPIRE.
    local keep = int(math.min(2 * ttl, 70368744177664))
    redis.call('PEXPIRE', activity, keep)
    redis.call('PEXPIRE', deadlines, keep)
  end
  -- A few expired entries at a time, on one operation in 16 or so.
  if now % 16 == 0 then prune(activity, deadlines, now, 16) end
end

-- Takes session `key` out of its bucket's indexes.
local function untrack(key, activity, deadlines)
  redis.call('ZREM', activity, key)
  redis.call('ZREM', deadlines, key)
end

-- Records that session `key`, with `ttl` ms left, was active: its last
-- activity, the counter `counter` (READS or WRITES, or nil) one up from
-- `count`, in one HSET; then, if the store keeps them, the activity indexes.
local function touch(key, ttl, counter, count)
  local now = now_ms()
  if counter then
    redis.call('HSET', key, LAST, now, counter, (tonumber(count) or 0) + 1)
  else
    redis.call('HSET', key, LAST, now)
  end
  if KEYS[3] then track(key, KEYS[2], KEYS[3], now, ttl) end
end

-- A read of live session `key`, which has `ttl` ms to live if touched now
-- and `count` reads so far (`meta` as live_ttl gives it): counted, and slid
-- only if that moves its deadline by the touch granularity (ARGV[3] ms, at
-- most half the session's idle timeout) or more. Otherwise it writes its
-- count alone: no expiry, last activity or index change. Returns how many ms
-- from now the next refresh falls due (0: no granularity), so that the
-- client can serve reads before then with a plain command; and the time to
-- live the session has after the read, so that the client knows how long a
-- read due a refresh may leave it for later (see refresh_reads.lua).
local function read_touch(key, ttl, count, meta)
  local idle = tonumber(meta[3] or ARGV[1])
  local granularity = math.min(tonumber(ARGV[3]), math.floor(idle / 2))
  if granularity > 0 then
    local left = bounded_pttl(key, meta)
    if left > ttl - granularity then
      redis.call('HSET', key, READS, (tonumber(count) or 0) + 1)
      -- Never past the session's end: with less of its lifetime left than
      -- the granularity, plain reads stop there, even if something else
      -- stretches the hash's expiry meanwhile. (A hash with no expiry, -1,
      -- gets none: the client takes both as unsigned.)
      left = math.max(left, 0)
      return math.min(left - (ttl - granularity), left), left
    end
  end
  redis.call('PEXPIRE', key, ttl)
  touch(key, ttl, READS, count)
  return math.max(granularity, 0), ttl
end

-- What a listing shows of live session `key`: owner, created, reads,
-- writes, last activity and time to live, as strings; nil if it is gone.
local function info_row(key)
  local ttl = redis.call('PTTL', key)
  if ttl <= 0 then return nil end
  local f = redis.call('HMGET', key, OWNER, CREATED, READS, WRITES, LAST)
  if not f[2] then return nil end
  return {f[1] or '', f[2], f[3] or '0', f[4] or '0', f[5] or f[2], tostring(ttl)}
end

-- redis.call(command, key, args[first..last]) in slices that stay below Lua's
-- limit on unpacked values; the replies are concatenated.
local function call_sliced(command, key, args, first, last)
  local replies = {}
  local slice = 1000
  for i = first, last, slice do
    local reply = redis.call(command, key, unpack(args, i, math.min(i + slice - 1, last)))
    if type(reply) == 'table' then
      for _, v in ipairs(reply) do replies[#replies + 1] = v end
    end
  end
  return replies
end

-- The time to live of a session created now.
local function fresh_ttl()
  local ttl = tonumber(ARGV[1])
  local absolute = tonumber(ARGV[2])
  if absolute > 0 then ttl = math.min(ttl, absolute) end
  return ttl
end

-- What session `key` holds, as Limits::check_session counts it: its user
-- keys, and their bytes plus their values' bytes.
local function size(key)
  local keys, bytes = 0, 0
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.byte(field, 1) ~= 255 then
      keys = keys + 1
      bytes = bytes + #field + redis.call('HSTRLEN', key, field)
    end
  end
  return keys, bytes
end

-- The reply refusing a write that takes a session from `keys` user keys
-- and `bytes` bytes to `keys_after` and `bytes_after`, or nil if it is
-- within the limits, which writing scripts take as ARGV[4] (keys) and
-- ARGV[5] (bytes). Over a limit is refused only when growing.
local function refusal(keys, bytes, keys_after, bytes_after)
  if keys_after > tonumber(ARGV[4]) and keys_after > keys then return {-1, keys_after} end
  if bytes_after > tonumber(ARGV[5]) and bytes_after > bytes then return {-2, bytes_after} end
  return nil
end

-- Makes `key` a new session: whatever is left of one past its absolute
-- lifetime goes first.
local function create(key)
  redis.call('DEL', key)
  redis.call('HSET', key, CREATED, now_ms())
end
