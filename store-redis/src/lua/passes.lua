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
local function passed(list, token)
  if not list then return false end
  return string.find(' ' .. list .. ' ', ' ' .. token .. ' ', 1, true) ~= nil
end
local function with_pass(list, token)
  -- The store's mark with its ':'; a token without one replaces none.
  local mark = string.match(token, '^[^:]*:')
  local kept = {}
  if list then
    for seen in string.gmatch(list, '%S+') do
      if not mark or string.sub(seen, 1, #mark) ~= mark then kept[#kept + 1] = seen end
    end
  end
  kept[#kept + 1] = token
  while #kept > PASSES_KEPT do table.remove(kept, 1) end
  return table.concat(kept, ' ')
end
