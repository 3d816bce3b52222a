-- regenerate on a cluster, step 3: deletes KEYS[1] only if it still holds
-- exactly the field-value pairs ARGV[2..] that step 1 exported (the seal
-- aside), so that a write after the seal ran out is never lost; then leaves
-- the marker KEYS[2] (same slot) for ARGV[1] milliseconds, so that a cleanup
-- after a lost reply can tell "moved" from "destroyed". 1 if deleted, 0 if
-- it changed.
local SEALED = '\255sealed'
local current = redis.call('HGETALL', KEYS[1])
local exported = {}
for i = 2, #ARGV, 2 do exported[ARGV[i]] = ARGV[i + 1] end
local seen = 0
for i = 1, #current, 2 do
  if current[i] ~= SEALED then
    if exported[current[i]] ~= current[i + 1] then return 0 end
    seen = seen + 2
  end
end
if seen ~= #ARGV - 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
