-- ack.lua: after the decisions of a batch are committed in MariaDB, remove the
-- requests from the queue's books, correct the seat hints and publish the
-- results. Idempotent: a request already acked is skipped, so replaying an
-- ack (recovery after a crash between commit and ack) changes nothing.
--
-- KEYS[1] inflight zset, KEYS[2] waiting zset, KEYS[3] pending zset,
-- KEYS[4] done zset (tickets that left the queue, trimmed below the head),
-- KEYS[5] req hash, KEYS[6] dup hash, KEYS[7] seats hash, KEYS[8] pcount hash,
-- KEYS[9] stats hash, KEYS[10..] enr set of each record's student (same order)
-- ARGV[1] pub/sub channel, ARGV[2] payload to publish ("" = none),
-- ARGV[3..] records of 4 fields: id, status, student, course
--
-- Returns the number of requests acked by this call.
local acked = 0
local n = (#ARGV - 2) / 4
for i = 0, n - 1 do
  local id = ARGV[3 + i * 4]
  local status = ARGV[4 + i * 4]
  local student = ARGV[5 + i * 4]
  local course = ARGV[6 + i * 4]
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HDEL', KEYS[5], id) == 1 then
    acked = acked + 1
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], id, id)
    redis.call('HDEL', KEYS[6], student .. ':' .. course)
    redis.call('HINCRBY', KEYS[8], course, -1)
    if status == 'enrolled' then
      redis.call('SADD', KEYS[10 + i], course)
    elseif redis.call('HEXISTS', KEYS[7], course) == 1 then
      redis.call('HINCRBY', KEYS[7], course, 1)
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
