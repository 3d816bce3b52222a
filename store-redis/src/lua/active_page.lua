-- active_page: one bucket's activity and deadline indexes KEYS[1], KEYS[2];
-- ARGV[3] the window in ms, ARGV[4] the lowest score (last activity in
-- microseconds) to list (exclusive if
-- it starts with '('; '' for the window's start), ARGV[5] how many. Lists
-- whole groups of equal scores, so that the last score is a safe place to
-- resume. {now, the last score fetched ('' if none), '1' if the bucket
-- has nothing after it else '0', then per live session: key, score,
-- owner, created, reads, writes, last, ttl}.
local now = now_ms()
while prune(KEYS[1], KEYS[2], now, 1000) == 1000 do end
local low = ARGV[4]
local window = now_us() - 1000 * tonumber(ARGV[3])
if low == '' then low = int(window) end
local want = tonumber(ARGV[5])
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'WITHSCORES', 'LIMIT', 0, want)
local exhausted = '1'
if #rows == 2 * want then
  exhausted = '0'
  local last = rows[#rows]
  local tied = redis.call('ZRANGEBYSCORE', KEYS[1], last, last, 'WITHSCORES')
  local listed = {}
  for i = 1, #rows, 2 do listed[rows[i]] = true end
  for i = 1, #tied, 2 do
    if not listed[tied[i]] then
      rows[#rows + 1] = tied[i]
      rows[#rows + 1] = tied[i + 1]
    end
  end
end
local out = {tostring(now), rows[#rows] or '', exhausted}
for i = 1, #rows, 2 do
  local row = info_row(rows[i])
  if row and tonumber(rows[i + 1]) >= window then
    out[#out + 1] = rows[i]
    out[#out + 1] = rows[i + 1]
    for _, v in ipairs(row) do out[#out + 1] = v end
  end
end
return out
