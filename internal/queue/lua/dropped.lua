-- dropped.lua: a drop is about to commit (run inside its transaction, before
-- the commit): the course leaves the student's enrolled hint, the freed seat
-- (unless a waitlisted student took it in the same transaction) is back in
-- the seat hint, the section's generation moves (a reconcile that read
-- MariaDB before this drop leaves this hint alone), and if the dropped
-- enrollment's request is not acked yet it is marked, so its late ack does
-- not put the course back into the enrolled hint.
--
-- KEYS[1] enr set of the student, KEYS[2] seats hash, KEYS[3] gen hash,
-- KEYS[4] req hash, KEYS[5] dropped hash
-- ARGV[1] course, ARGV[2] seats freed into the hint (0 or more),
-- ARGV[3] request id of the dropped enrollment (0: none)
--
-- Returns 1.
redis.call('SREM', KEYS[1], ARGV[1])
local n = tonumber(ARGV[2])
if n > 0 and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], n)
end
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if ARGV[3] ~= '0' and redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[5], ARGV[3], 1)
end
return 1
