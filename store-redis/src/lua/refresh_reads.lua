-- Refreshes that reads left for later (see RedisStore's plain read path),
-- many sessions at once. ARGV[1..3] are the policy and touch granularity,
-- as for a read; then for session KEYS[i], ARGV[3i + 1] reads to add to its
-- read counter, ARGV[3i + 2] how many ms ago the last of them was served,
-- and ARGV[3i + 3] the token of the call that sends them: reads whose token
-- the session holds already are not added again (see passes.lua), and
-- the slide is the same either way.
-- Slides each session's expiry as that read would have then, from its own
-- idle timeout and within its absolute lifetime, and never to a sooner
-- deadline than it has, nor its last activity to an earlier one. For each,
-- due and left: in how many ms a read must slide the expiry again (see
-- read_touch) and the time to live it has now; or -1 and 0 for a session
-- that is gone, or whose key refused it (see guard.lua). One flat list,
-- KEYS[1]'s two numbers, then KEYS[2]'s, ...: a table per session would
-- cost an allocation each, here and in the reply.
-- With many sessions, each rarely read within the touch granularity of its
-- last read, nearly every read comes through here: what a session costs
-- here is what such a read costs Redis, beyond its HGET.
local GRANULARITY = tonumber(ARGV[3])
local FIELDS = {LAST, PASS}
local function refresh(key, reads, age, token)
  local ttl, _, counts, meta = live_ttl(key, FIELDS)
  if not ttl then return -1, 0 end
  if token ~= '' and passed(meta[8], token) then reads = 0 end
  local count = (tonumber(counts[1]) or 0) + reads
  local idle = tonumber(meta[3] or ARGV[1])
  local granularity = math.min(GRANULARITY, math.floor(idle / 2))
  local slid = math.min(ttl, idle - age)
  local left = bounded_pttl(key, meta)
  -- A refresh alone leaves the token as it is: only reads need one; and
  -- with no reads and no slide, nothing changes.
  local token_too = reads > 0 and token ~= ''
  if slid > 0 and slid > left then
    redis.call('PEXPIRE', key, slid)
    local last = int(math.max(now_ms() - age, tonumber(meta[7]) or 0))
    if token_too then
      redis.call('HSET', key, LAST, last, READS, count, PASS, with_pass(meta[8], token))
    else
      redis.call('HSET', key, LAST, last, READS, count)
    end
    left = slid
  elseif token_too then
    redis.call('HSET', key, READS, count, PASS, with_pass(meta[8], token))
  elseif reads > 0 then
    redis.call('HSET', key, READS, count)
  end
  -- Never past the session's end (see read_touch).
  return math.max(math.min(left - (ttl - granularity), left), 0), math.max(left, 0)
end

local out = {}
for i, key in ipairs(KEYS) do
  local reads = tonumber(ARGV[3 * i + 1])
  local age = tonumber(ARGV[3 * i + 2])
  local ok, due, left = guarded(refresh, key, reads, age, ARGV[3 * i + 3])
  if not ok then due, left = -1, 0 end
  out[2 * i - 1] = due
  out[2 * i] = left
end
return out
