-- ack.lua: after the decisions of a batch are committed in MariaDB, remove the
-- requests from the queue's books, settle their claims on the seat hints (if
-- the pre-ack has not: see _release.lua) and publish the results.
-- Idempotent: a request already acked is skipped, so replaying an ack
-- (recovery after a crash between commit and ack) changes nothing.
--
-- The enrolled hint of a student (enr) gets the course only if no drop of
-- that enrollment reached Redis first (dropped.lua marks the request): an ack
-- that runs late can never resurrect an enrollment a later transaction undid.
--
-- KEYS[1] inflight zset, KEYS[2] waiting zset, KEYS[3] pending zset,
-- KEYS[4] done zset (tickets that left the queue, trimmed below the head),
-- KEYS[5] req hash, KEYS[6] dup hash, KEYS[7] seats hash, KEYS[8] pcount hash,
-- KEYS[9] stats hash, KEYS[10] fence, KEYS[11] preack hash,
-- KEYS[12] dropped hash (request id -> 1), KEYS[13..] enr set of each
-- record's student (same order)
-- ARGV[1] pub/sub channel, ARGV[2] payload to publish ("" = none),
-- ARGV[3] the caller's fence ("0": unfenced, a student's cancellation),
-- ARGV[4..] records of 4 fields: id, status, student, course
--
-- Returns the number of requests acked by this call, or the error FENCED.
if fenced(KEYS[10], ARGV[3]) then
  return redis.error_reply('FENCED ack by a former drain leader')
end
local acked = 0
local n = (#ARGV - 3) / 4
for i = 0, n - 1 do
  local id = ARGV[4 + i * 4]
  local status = ARGV[5 + i * 4]
  local student = ARGV[6 + i * 4]
  local course = ARGV[7 + i * 4]
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HDEL', KEYS[5], id) == 1 then
    acked = acked + 1
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], id, id)
    redis.call('HDEL', KEYS[6], student .. ':' .. course)
    settle(KEYS[11], KEYS[8], KEYS[7], id, status, course)
    redis.call('HDEL', KEYS[11], id)
    local undone = redis.call('HDEL', KEYS[12], id) == 1
    if status == 'enrolled' and not undone then
      redis.call('SADD', KEYS[13 + i], course)
    end
    redis.call('HINCRBY', KEYS[9], 'decided', 1)
    redis.call('HINCRBY', KEYS[9], 'decided_' .. status, 1)
  end
end
local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #head == 0 then
  redis.call('DEL', KEYS[4])
else
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. head[2])
end
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return acked
