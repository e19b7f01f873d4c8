-- reconcile.lua: reset seat hints from MariaDB's numbers. The hint is
-- free seats minus requests still pending for the course (pcount: admitted,
-- not yet settled by a pre-ack, so never counted in MariaDB's enrolled).
--
-- A section whose generation moved since the caller read it (before reading
-- MariaDB) is left alone: a drop or a capacity raise reached the hint after
-- that read, and writing the older number would take its seat away again.
--
-- KEYS[1] seats hash, KEYS[2] pcount hash, KEYS[3] gen hash
-- ARGV triples: course id, free seats in MariaDB (capacity - enrolled) or
--               "x" to drop the hint (closed or deleted course), and the
--               section's generation as read before MariaDB ("-" = don't check)
--
-- Returns the number of hints written.
local n = 0
for i = 1, #ARGV, 3 do
  local course = ARGV[i]
  local seen = ARGV[i + 2]
  if seen == '-' or (redis.call('HGET', KEYS[3], course) or '0') == seen then
    if ARGV[i + 1] == 'x' then
      redis.call('HDEL', KEYS[1], course)
    else
      local pending = tonumber(redis.call('HGET', KEYS[2], course) or '0')
      redis.call('HSET', KEYS[1], course, tonumber(ARGV[i + 1]) - pending)
      n = n + 1
    end
  end
end
return n
