-- Shared head of every session script. KEYS[1] is the session's hash;
-- ARGV[1] is the idle timeout and ARGV[2] the absolute lifetime (0: none),
-- both in milliseconds. Times come from the server's clock, so app servers
-- with skewed clocks agree on every session's age.
local CREATED = '\255created'
-- Set while a cluster regenerate copies the session to its new slot.
local SEALED = '\255sealed'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The time to live of a live session touched now, or nil when the session is
-- absent or past its absolute lifetime.
local function live_ttl(key)
  local idle = tonumber(ARGV[1])
  local absolute = tonumber(ARGV[2])
  if absolute == 0 then
    if redis.call('EXISTS', key) == 1 then return idle end
    return nil
  end
  local created = redis.call('HGET', key, CREATED)
  if not created then return nil end
  local left = tonumber(created) + absolute - now_ms()
  if left <= 0 then return nil end
  return math.min(idle, left)
end

-- Whether a cluster regenerate is moving the session right now: writes then
-- find no session, as they would a moment after a move on one server.
local function sealed(key)
  local until_ms = redis.call('HGET', key, SEALED)
  return until_ms and tonumber(until_ms) > now_ms()
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
