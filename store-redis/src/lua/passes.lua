-- The tokens of the last flush calls that wrote out a session's reads
-- (see add_reads.lua), kept in its '\255pass' field, oldest first,
-- separated by spaces: one per store (process), the latest of each. A
-- token is the store's mark, ':', and a number. A call sent again whose
-- token is among them ran already.
--
-- One per store, because several processes may flush one session at once,
-- and while a call of one is in doubt the others' calls may land after
-- it. A store whose call is in doubt sends nothing else for that session
-- until it is answered, so its latest token is the one in doubt. At most
-- PASSES_KEPT stores: three tokens fit within 64 bytes, the longest value
-- with which Redis keeps a small hash compact. With more stores flushing
-- one session while Redis stalls (a restarted process is a new store), a
-- token can be pushed out before its call is sent again, and those reads
-- counted twice. So can they if the call sent again overtakes the first
-- (on a new connection), and the store's next call replaces its token
-- before the first lands: calls on one connection run in order.
local PASSES_KEPT = 3
-- Both run for every session of a flush, so they make as few strings as
-- they can: Lua interns (hashes) each one it makes.
local find, sub, byte = string.find, string.sub, string.byte
local SPACE = 32
local function passed(list, token)
  if not list or token == '' then return false end
  local from = 1
  while true do
    local i, j = find(list, token, from, true)
    if not i then return false end
    -- A whole token, not a part of one.
    if (i == 1 or byte(list, i - 1) == SPACE) and (j == #list or byte(list, j + 1) == SPACE) then
      return true
    end
    from = i + 1
  end
end
local function with_pass(list, token)
  if not list then return token end
  -- The store's mark with its ':'; a token without one replaces none.
  local mark = string.match(token, '^[^:]*:')
  local kept, n, from = {}, 0, 1
  while true do
    local i, j = find(list, '%S+', from)
    if not i then break end
    local at, to
    if mark then at, to = find(list, mark, i, true) end
    -- Kept unless it starts with the mark.
    if at ~= i or to > j then
      n = n + 1
      kept[n] = sub(list, i, j)
    end
    from = j + 1
  end
  n = n + 1
  kept[n] = token
  return table.concat(kept, ' ', math.max(n - PASSES_KEPT + 1, 1), n)
end
