-- requeue.lua: put in-flight requests back into waiting at their original
-- ticket, so a student keeps their place when a drainer dies or gives up.
-- Only entries still in flight move; an entry acked meanwhile is left alone.
--
-- KEYS[1] inflight zset, KEYS[2] waiting zset
-- ARGV[1..] request ids (the id is the ticket)
--
-- Returns the number of requests put back.
local moved = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i])
    moved = moved + 1
  end
end
return moved
