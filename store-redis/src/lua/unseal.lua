-- After a failed cluster regenerate. KEYS[1] is the old session, KEYS[2]
-- the marker step 3 leaves when it deletes it. 1: the old session is there,
-- and its seal is lifted so that it takes writes again; 0: step 3 ran (the
-- new copy is the session); 2: it is gone otherwise (destroyed or expired).
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HDEL', KEYS[1], '\255sealed')
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return 2
