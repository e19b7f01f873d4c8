-- preack.lua: run inside the decision's transaction, just before its commit.
-- Settles each request's claim on the seat hint (see _release.lua): a seat a
-- rejection or cancellation frees is back in the hint before MariaDB says it
-- is free, so no student is told "sold out" for a seat MariaDB has free and
-- no earlier request holds; and the request leaves pcount before its
-- enrollment is counted in MariaDB, so a reconcile can never count one
-- request twice (it may count it nowhere for a moment: a hint too high costs
-- speed, never a seat). If the commit then fails, the hint stays too high
-- until the request is decided again or the next reconcile.
--
-- Fenced like pop.lua: a former leader's pre-ack is refused, and so is its
-- commit (the transaction checks the same fence in MariaDB).
--
-- KEYS[1] fence, KEYS[2] req hash, KEYS[3] pcount, KEYS[4] seats,
-- KEYS[5] preack hash (request id -> 'E' | 'R')
-- ARGV[1] the caller's fence, ARGV[2..] triples: id, status, course
--
-- Returns the number of requests settled by this call (replays: 0).
if fenced(KEYS[1], ARGV[1]) then
  return redis.error_reply('FENCED pre-ack by a former drain leader')
end
local n = 0
for i = 2, #ARGV, 3 do
  local id, status, course = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    local before = redis.call('HGET', KEYS[5], id)
    settle(KEYS[5], KEYS[3], KEYS[4], id, status, course)
    if before ~= redis.call('HGET', KEYS[5], id) then
      n = n + 1
    end
  end
end
return n
