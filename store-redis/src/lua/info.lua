-- info: what a listing shows of session KEYS[1]: {now, owner, created,
-- reads, writes, last, ttl}, or {}.
local row = info_row(KEYS[1])
if not row then return {} end
table.insert(row, 1, tostring(now_ms()))
return row
