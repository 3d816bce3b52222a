-- regenerate on a cluster, step 3: deletes KEYS[1] only if it still holds
-- exactly the field-value pairs ARGV[1..] that step 1 exported, so that a
-- write that raced the copy is never lost. 1 if deleted, 0 if it changed.
local current = redis.call('HGETALL', KEYS[1])
if #current ~= #ARGV then return 0 end
local exported = {}
for i = 1, #ARGV, 2 do exported[ARGV[i]] = ARGV[i + 1] end
for i = 1, #current, 2 do
  if exported[current[i]] ~= current[i + 1] then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
