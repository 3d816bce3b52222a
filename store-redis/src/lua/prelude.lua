-- Shared head of every session script. KEYS[1] is the session's hash;
-- ARGV[1] is the idle timeout and ARGV[2] the absolute lifetime (0: none),
-- both in milliseconds. Times come from the server's clock, so app servers
-- with skewed clocks agree on every session's age.
local CREATED = '\255created'
-- Set while a cluster regenerate copies the session to its new slot.
local SEALED = '\255sealed'
-- The session's own idle timeout in milliseconds, used in place of ARGV[1].
local IDLE = '\255idle'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The time to live of a live session touched now, or nil when it is absent
-- or past its absolute lifetime; and whether a cluster regenerate has sealed
-- it, so that writes must find it gone. One HMGET reads all three fields.
local function live_ttl(key)
  local meta = redis.call('HMGET', key, CREATED, SEALED, IDLE)
  if not meta[1] then return nil, false end
  local ttl = tonumber(meta[3] or ARGV[1])
  local absolute = tonumber(ARGV[2])
  local now
  if absolute > 0 then
    now = now_ms()
    local left = tonumber(meta[1]) + absolute - now
    if left <= 0 then return nil, false end
    ttl = math.min(ttl, left)
  end
  local sealed = false
  if meta[2] then sealed = tonumber(meta[2]) > (now or now_ms()) end
  return ttl, sealed
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
