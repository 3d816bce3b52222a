-- The connect-redis layout: each session is one JSON string at
-- `<prefix><id>`, the object express-session saves (its `cookie` member,
-- then the session's values), which connect-redis reads and writes whole.
-- This shim runs in front of prelude.lua and the operation's script, which
-- are written for a hash per session: it stands in for `redis` and serves
-- the hash commands on session keys (those starting with RECORD_PREFIX,
-- set by the line before this file) from the decoded record, and writes
-- each changed record back once, when the script ends (see finish). Other
-- keys (the owner and activity indexes) go to Redis as they are.
--
-- A record keeps its members' JSON text as it found it, so what a Node app
-- stored comes back byte for byte. Hash fields map onto it so:
--   * a user key is a member, its value the JSON text the Rust side stored
--     (its codec's bytes; bytes that are not JSON are kept as
--     {"$gs-bytes": "<hex>"});
--   * the metadata fields (a first byte 0xff) are the members of one object
--     member, GS, as strings;
--   * `cookie` is express-session's: never a user key.
local REAL = redis
local GS = '__generic_session'
local COOKIE = 'cookie'
local BYTES_OPEN = '{"$gs-bytes":"'

-- A value as Redis would store it: numbers as whole numbers where they are.
local function as_text(value)
  if type(value) == 'number' then
    if value == math.floor(value) then return string.format('%.0f', value) end
    return string.format('%.17g', value)
  end
  return value
end

local function shim_error(message)
  return REAL.error_reply('ERR connect-redis layout: ' .. message)
end

-- JSON text scanning: index just past the string at i (s[i] is '"').
local function scan_string(s, i)
  local j = i + 1
  while true do
    local q = string.find(s, '["\\]', j)
    if not q then error('unterminated string') end
    if string.sub(s, q, q) == '"' then return q + 1 end
    j = q + 2
  end
end

-- Index just past the JSON value starting at i.
local function scan_value(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then return scan_string(s, i) end
  if c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      local p = string.find(s, '[%[%]{}"]', j)
      if not p then error('unterminated value') end
      local ch = string.sub(s, p, p)
      if ch == '"' then
        j = scan_string(s, p)
      else
        if ch == '{' or ch == '[' then depth = depth + 1 else depth = depth - 1 end
        j = p + 1
        if depth == 0 then return j end
      end
    end
  end
  local _, e = string.find(s, '^[^,}%]%s]+', i)
  if not e then error('bad value') end
  return e + 1
end

local function skip(s, i)
  local _, e = string.find(s, '^%s*', i)
  return e + 1
end

-- A record: its members in order, {name, raw JSON text}, and an index by name.
local function parse(text)
  local members, index = {}, {}
  local i = skip(text, 1)
  if string.sub(text, i, i) ~= '{' then error('not an object') end
  i = skip(text, i + 1)
  if string.sub(text, i, i) == '}' then return members, index end
  while true do
    if string.sub(text, i, i) ~= '"' then error('bad member name') end
    local name_end = scan_string(text, i)
    -- Most names hold no escape: no decoder needed for those.
    local name = string.sub(text, i + 1, name_end - 2)
    if string.find(name, '\\', 1, true) then name = cjson.decode(string.sub(text, i, name_end - 1)) end
    i = skip(text, name_end)
    if string.sub(text, i, i) ~= ':' then error('missing colon') end
    i = skip(text, i + 1)
    local value_end = scan_value(text, i)
    local member = {name, string.sub(text, i, value_end - 1)}
    if index[name] then
      members[index[name]] = member
    else
      members[#members + 1] = member
      index[name] = #members
    end
    i = skip(text, value_end)
    local c = string.sub(text, i, i)
    i = skip(text, i + 1)
    if c == '}' then return members, index end
    if c ~= ',' then error('bad separator') end
  end
end

-- A member name as JSON text (most need no escaping).
local function quote(name)
  if string.find(name, '[%c"\\]') then return cjson.encode(name) end
  return '"' .. name .. '"'
end

local function serialize(record)
  local parts = {}
  for _, member in ipairs(record.members) do
    if member[2] then parts[#parts + 1] = quote(member[1]) .. ':' .. member[2] end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Strict JSON, as Node's JSON.parse takes it: whether `s` from `i` holds
-- one value, and the index just past it. No NUL or other control byte
-- outside escapes, no NaN, no leading zeros or bare dots; UTF-8 is checked
-- where a byte is not ASCII.
local valid_value

local function valid_utf8(s, i, j)
  while true do
    local p = string.find(s, '[\128-\255]', i)
    if not p or p > j then return true end
    local c = string.byte(s, p)
    local n
    if c >= 0xC2 and c <= 0xDF then n = 1
    elseif c >= 0xE0 and c <= 0xEF then n = 2
    elseif c >= 0xF0 and c <= 0xF4 then n = 3
    else return false end
    for k = 1, n do
      local d = string.byte(s, p + k)
      if not d or d < 0x80 or d > 0xBF then return false end
    end
    i = p + n + 1
  end
end

local function valid_string(s, i)
  local j = i + 1
  while true do
    local p = string.find(s, '["\\%c]', j)
    if not p then return nil end
    local c = string.sub(s, p, p)
    if c == '"' then
      if not valid_utf8(s, i + 1, p - 1) then return nil end
      return p + 1
    end
    if c ~= '\\' then return nil end
    local e = string.sub(s, p + 1, p + 1)
    if e == 'u' then
      if not string.find(s, '^%x%x%x%x', p + 2) then return nil end
      j = p + 6
    elseif string.find(e, '^["\\/bfnrt]$') then
      j = p + 2
    else
      return nil
    end
  end
end

local function ws(s, i)
  local _, e = string.find(s, '^[ \t\n\r]*', i)
  return e + 1
end

valid_value = function(s, i, depth)
  if depth > 64 then return nil end
  local c = string.sub(s, i, i)
  if c == '"' then return valid_string(s, i) end
  if c == '{' or c == '[' then
    local close = c == '{' and '}' or ']'
    i = ws(s, i + 1)
    if string.sub(s, i, i) == close then return i + 1 end
    while true do
      if c == '{' then
        if string.sub(s, i, i) ~= '"' then return nil end
        i = valid_string(s, i)
        if not i then return nil end
        i = ws(s, i)
        if string.sub(s, i, i) ~= ':' then return nil end
        i = ws(s, i + 1)
      end
      i = valid_value(s, i, depth + 1)
      if not i then return nil end
      i = ws(s, i)
      local sep = string.sub(s, i, i)
      if sep == close then return i + 1 end
      if sep ~= ',' then return nil end
      i = ws(s, i + 1)
    end
  end
  for _, literal in ipairs({'true', 'false', 'null'}) do
    if string.sub(s, i, i + #literal - 1) == literal then return i + #literal end
  end
  local _, e = string.find(s, '^-?0', i)
  if not e then _, e = string.find(s, '^-?[1-9]%d*', i) end
  if not e then return nil end
  local _, f = string.find(s, '^%.%d+', e + 1)
  if f then e = f end
  local _, x = string.find(s, '^[eE][+-]?%d+', e + 1)
  if x then e = x end
  return e + 1
end

local function strict_json(s)
  return s ~= '' and valid_value(s, 1, 0) == #s + 1
end


-- Hex both ways. A Lua call per byte took about 300 ms for a 1 MiB value,
-- past the operation's deadline on a busy machine (and Redis does nothing
-- else meanwhile); gsub with a table stays in C, about 5 times faster, but
-- building the table costs about as much as a few hundred calls, so only
-- values longer than that use one.
local TABLE_FROM = 256

local function hex(bytes)
  if #bytes < TABLE_FROM then
    return (string.gsub(bytes, '.', function(c) return string.format('%02x', string.byte(c)) end))
  end
  local pairs_of = {}
  for b = 0, 255 do pairs_of[string.char(b)] = string.format('%02x', b) end
  return (string.gsub(bytes, '.', pairs_of))
end

local function unhex(text)
  if #text < 2 * TABLE_FROM then
    return (string.gsub(text, '%x%x', function(h) return string.char(tonumber(h, 16)) end))
  end
  local bytes_of = {}
  for b = 0, 255 do bytes_of[string.format('%02x', b)] = string.char(b) end
  -- The table knows lower case only; a wrapper may be written in either.
  return (string.gsub(string.lower(text), '%x%x', bytes_of))
end

-- The JSON text a hash value is kept as: the value itself if it is one
-- strict JSON value with nothing around it (so it parses back to the same
-- bytes, and Node's JSON.parse takes the record), else its bytes in a
-- wrapper. A value that looks like the wrapper is wrapped too, so that
-- reading one back is never ambiguous.
local function to_json(bytes)
  if strict_json(bytes) and string.sub(bytes, 1, #BYTES_OPEN) ~= BYTES_OPEN then return bytes end
  return BYTES_OPEN .. hex(bytes) .. '"}'
end

-- The bytes a member's JSON text holds: the text, or a wrapper's bytes.
local function from_json(raw)
  local wrapped = string.match(raw, '^{"%$gs%-bytes":"(%x*)"}$')
  if wrapped and #wrapped % 2 == 0 then return unhex(wrapped) end
  return raw
end

-- Unix ms as express-session's `cookie.expires` (Date#toJSON).
local function iso(ms)
  local s = math.floor(ms / 1000)
  local days, rem = math.floor(s / 86400), s % 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

-- The records this script touched, by key.
local RECORDS = {}

local function is_record(key)
  return type(key) == 'string' and string.sub(key, 1, #RECORD_PREFIX) == RECORD_PREFIX
end

-- The record at `key`, read once per script: {members, index, meta,
-- exists, dirty, ttl (a PEXPIRE to apply, ms)}.
local function load(key)
  local record = RECORDS[key]
  if record then return record end
  local text = REAL.call('GET', key)
  record = {members = {}, index = {}, meta = {}, exists = false}
  if text then
    local ok, members, index = pcall(parse, text)
    if not ok then
      error(shim_error('the JSON at a session key does not parse: ' .. tostring(members)))
    end
    record.members, record.index, record.exists = members, index, true
    local gs = index[GS] and members[index[GS]][2]
    if gs then
      local decoded = cjson.decode(gs)
      if type(decoded) == 'table' then record.meta = decoded end
    end
    -- A session the Node side made has none of our metadata: it was
    -- created, for this side, when this side first meets it (kept with the
    -- next write).
    if record.meta.created == nil then
      local t = REAL.call('TIME')
      record.meta.created = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    end
  end
  RECORDS[key] = record
  return record
end

-- A hash field's name: a metadata field (first byte 0xff) lives in GS.
local function meta_name(field)
  if string.byte(field, 1) == 255 then return string.sub(field, 2) end
  return nil
end

local function hget(record, field)
  local meta = meta_name(field)
  if meta then
    local value = record.meta[meta]
    if value == nil then return false end
    return tostring(value)
  end
  if field == COOKIE or field == GS then return false end
  local at = record.index[field]
  if not at or not record.members[at][2] then return false end
  return from_json(record.members[at][2])
end

-- Sets one field; true if it is new.
local function hset(record, field, value)
  value = as_text(value)
  local meta = meta_name(field)
  record.dirty = true
  if not record.exists then
    record.exists = true
    -- What express-session needs of a session it did not make: a cookie
    -- with express-session's defaults (no Max-Age: a browser-session cookie).
    if not record.index[COOKIE] then
      record.members[#record.members + 1] =
        {COOKIE, '{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}'}
      record.index[COOKIE] = #record.members
    end
  end
  if meta then
    local new = record.meta[meta] == nil
    record.meta[meta] = value
    return new
  end
  if field == COOKIE or field == GS then
    error(shim_error('"' .. field .. '" is express-session\'s or ours: not a session key'))
  end
  local raw = to_json(value)
  local at = record.index[field]
  if at then
    local new = record.members[at][2] == nil
    record.members[at][2] = raw
    return new
  end
  record.members[#record.members + 1] = {field, raw}
  record.index[field] = #record.members
  return true
end

local function hdel(record, field)
  local meta = meta_name(field)
  if meta then
    if record.meta[meta] == nil then return 0 end
    record.meta[meta] = nil
    record.dirty = true
    return 1
  end
  if field == COOKIE or field == GS then return 0 end
  local at = record.index[field]
  if not at or not record.members[at][2] then return 0 end
  record.members[at][2] = nil
  record.dirty = true
  return 1
end

-- Every field, user keys first, as HGETALL or HKEYS lists them.
local function fields(record)
  local list = {}
  for _, member in ipairs(record.members) do
    local name = member[1]
    if member[2] and name ~= COOKIE and name ~= GS then list[#list + 1] = {name, from_json(member[2])} end
  end
  for name, value in pairs(record.meta) do
    list[#list + 1] = {'\255' .. name, tostring(value)}
  end
  return list
end

local function pttl(key, record)
  if not record.exists then return -2 end
  if record.ttl then return record.ttl end
  if record.created then return -1 end
  return REAL.call('PTTL', key)
end

-- The hash commands the scripts use, on a record.
local HASH = {}
HASH.HGET = function(key, record, args) return hget(record, args[1]) end
HASH.HMGET = function(key, record, args)
  local values = {}
  for i, field in ipairs(args) do values[i] = hget(record, field) end
  return values
end
HASH.HSET = function(key, record, args)
  local was = record.exists
  local added = 0
  for i = 1, #args, 2 do
    if hset(record, args[i], args[i + 1]) then added = added + 1 end
  end
  if not was then record.created = true end
  return added
end
HASH.HDEL = function(key, record, args)
  local removed = 0
  for _, field in ipairs(args) do removed = removed + hdel(record, field) end
  return removed
end
HASH.HEXISTS = function(key, record, args)
  if hget(record, args[1]) then return 1 end
  return 0
end
HASH.HSTRLEN = function(key, record, args)
  local value = hget(record, args[1])
  if value then return #value end
  return 0
end
HASH.HKEYS = function(key, record)
  local list = {}
  for _, pair in ipairs(fields(record)) do list[#list + 1] = pair[1] end
  return list
end
HASH.HGETALL = function(key, record)
  local list = {}
  for _, pair in ipairs(fields(record)) do
    list[#list + 1] = pair[1]
    list[#list + 1] = pair[2]
  end
  return list
end
HASH.HINCRBY = function(key, record, args)
  -- Redis's own integer rules, on a scratch key beside the session.
  local scratch = key .. '\255incr'
  local current = hget(record, args[1]) or '0'
  REAL.call('SET', scratch, current)
  local sum = REAL.pcall('INCRBY', scratch, args[2])
  -- The sum as Redis wrote it: a Lua number is exact only to 2^53.
  local text = REAL.call('GET', scratch)
  REAL.call('DEL', scratch)
  if type(sum) == 'table' and sum.err then
    if string.find(sum.err, 'overflow', 1, true) then return sum end
    return {err = 'ERR hash value is not an integer'}
  end
  hset(record, args[1], text)
  return sum
end
HASH.HLEN = function(key, record)
  if not record.exists then return 0 end
  return #fields(record)
end
HASH.EXISTS = function(key, record)
  if record.exists then return 1 end
  return 0
end
HASH.DEL = function(key, record)
  if not record.exists then return 0 end
  record.exists, record.dirty, record.deleted = false, true, true
  record.members, record.index, record.meta, record.ttl = {}, {}, {}, nil
  return 1
end
HASH.PEXPIRE = function(key, record, args)
  if not record.exists then return 0 end
  record.ttl = tonumber(args[1])
  return 1
end
HASH.PTTL = function(key, record) return pttl(key, record) end
HASH.RENAME = function(key, record, args)
  if not record.exists then return {err = 'ERR no such key'} end
  local ttl = pttl(key, record)
  local target = load(args[1])
  target.members, target.index, target.meta = record.members, record.index, record.meta
  target.exists, target.dirty, target.deleted = true, true, false
  if ttl and ttl > 0 then target.ttl = ttl end
  RECORDS[key] = {members = {}, index = {}, meta = {}, exists = false, dirty = true, deleted = true}
  return 'OK'
end

local function dispatch(command, key, ...)
  local name = string.upper(command)
  local handler = HASH[name]
  if handler and is_record(key) then
    return true, handler(key, load(key), {...})
  end
  return false
end

local redis = setmetatable({
  call = function(command, ...)
    local handled, reply = dispatch(command, ...)
    if not handled then return REAL.call(command, ...) end
    if type(reply) == 'table' and reply.err then error(reply) end
    return reply
  end,
  pcall = function(command, ...)
    local handled, reply = dispatch(command, ...)
    if not handled then return REAL.pcall(command, ...) end
    return reply
  end,
}, {__index = REAL})

-- Writes back every record the script changed, then returns its reply.
-- A record whose cookie has an `expires` gets the new deadline there too,
-- so that connect-redis computes the same time to live from it.
local function finish(...)
  for key, record in pairs(RECORDS) do
    if record.deleted and not record.exists then
      REAL.call('DEL', key)
    elseif record.dirty or record.ttl then
      local cookie_at = record.index[COOKIE]
      local expires_moved = false
      if record.ttl and cookie_at then
        local ok, cookie = pcall(cjson.decode, record.members[cookie_at][2])
        if ok and type(cookie) == 'table' and type(cookie.expires) == 'string' then
          local t = REAL.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          cookie.expires = iso(now + record.ttl)
          record.members[cookie_at][2] = cjson.encode(cookie)
          expires_moved = true
        end
      end
      if record.dirty or expires_moved then
        if next(record.meta) then
          local gs_at = record.index[GS]
          local encoded = cjson.encode(record.meta)
          if gs_at then
            record.members[gs_at][2] = encoded
          else
            record.members[#record.members + 1] = {GS, encoded}
            record.index[GS] = #record.members
          end
        end
        local text = serialize(record)
        if record.ttl then
          REAL.call('SET', key, text, 'PX', record.ttl)
        elseif record.created then
          REAL.call('SET', key, text)
        else
          REAL.call('SET', key, text, 'KEEPTTL')
        end
      else
        REAL.call('PEXPIRE', key, record.ttl)
      end
    end
  end
  return ...
end
