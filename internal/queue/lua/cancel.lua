-- cancel.lua: a student leaves the queue. The request is flagged cancelled and
-- moved from waiting to in flight with a lease, so the cancellation is decided
-- (written to MariaDB, then acked) exactly like any other decision: if the
-- caller dies before acking, recovery requeues it and the drainer, seeing the
-- flag, records it as cancelled.
--
-- The request's claim on the seat hint is settled here (see _release.lua):
-- from this moment the seat is back for the next student, before MariaDB
-- records the cancellation.
--
-- KEYS[1] waiting zset, KEYS[2] inflight zset, KEYS[3] req hash,
-- KEYS[4] preack hash, KEYS[5] pcount hash, KEYS[6] seats hash
-- ARGV[1] request id, ARGV[2] student id, ARGV[3] lease ms
--
-- Returns {code, record}:
--   { 1, record}  flagged and moved; the caller records the decision and acks
--   {-1}          unknown (already decided, or never admitted)
--   {-2}          the request belongs to another student
--   {-3}          already being decided (in flight), too late to cancel
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then
  return {-1}
end
local student, course = string.match(rec, '^([^:]+):([^:]+):')
if student ~= ARGV[2] then
  return {-2}
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return {-3}
end
if string.sub(rec, -1) ~= 'C' then
  rec = rec .. 'C'
  redis.call('HSET', KEYS[3], ARGV[1], rec)
end
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
settle(KEYS[4], KEYS[5], KEYS[6], ARGV[1], 'cancelled', course)
return {1, rec}
