-- requeue.lua: put in-flight requests back into waiting at their original
-- ticket, so a student keeps their place when a drainer dies or gives up.
-- Only entries still in flight move; an entry acked meanwhile is left alone.
-- Fenced like pop.lua: a former leader cannot put back what the current one
-- is deciding.
--
-- KEYS[1] inflight zset, KEYS[2] waiting zset, KEYS[3] fence
-- ARGV[1] the caller's fence, ARGV[2..] request ids (the id is the ticket)
--
-- Returns the number of requests put back, or the error FENCED.
if fenced(KEYS[3], ARGV[1]) then
  return redis.error_reply('FENCED requeue by a former drain leader')
end
local moved = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i])
    moved = moved + 1
  end
end
return moved
