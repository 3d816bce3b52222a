-- destroy: deletes session KEYS[1] and takes it out of its bucket's
-- indexes KEYS[2] and KEYS[3] if the store keeps them; with an owner in ARGV[1] (not ''), only if
-- it is that owner's. {'1', owner} if a session was deleted (owner '' when
-- it had none), {'0'} if there was none, {'-1'} if it is another owner's.
local owner = redis.call('HGET', KEYS[1], '\255owner')
if ARGV[1] ~= '' and owner ~= ARGV[1] and redis.call('EXISTS', KEYS[1]) == 1 then
  return {'-1'}
end
local deleted = redis.call('DEL', KEYS[1])
if KEYS[3] then
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
end
if deleted == 0 then return {'0'} end
return {'1', owner or ''}
