-- reconcile.lua: reset seat hints from MariaDB's numbers. The hint is
-- free seats minus requests still pending for the course.
--
-- KEYS[1] seats hash, KEYS[2] pcount hash
-- ARGV pairs: course id, free seats in MariaDB (capacity - enrolled), or
--             course id, "x" to drop the hint (closed or deleted course)
--
-- Returns the number of hints written.
local n = 0
for i = 1, #ARGV, 2 do
  local course = ARGV[i]
  if ARGV[i + 1] == 'x' then
    redis.call('HDEL', KEYS[1], course)
  else
    local pending = tonumber(redis.call('HGET', KEYS[2], course) or '0')
    redis.call('HSET', KEYS[1], course, tonumber(ARGV[i + 1]) - pending)
    n = n + 1
  end
end
return n
