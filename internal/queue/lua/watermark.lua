-- watermark.lua: everything a position watcher needs for one tick, in one call.
-- Tickets are dense (every ticket taken belongs to an admitted request), so for
-- a waiting ticket t:  ahead(t) = (t - head) - #{done tickets in [head, t)}
-- where head is the lowest undecided ticket. Done tickets above the head are
-- the few that left out of order (cancellations, recovered batches).
--
-- KEYS[1] pending zset, KEYS[2] done zset, KEYS[3] seq, KEYS[4] stats hash
-- ARGV[1] max done entries to return
--
-- Returns {head, last_ticket, decided, {done tickets >= head...}}; head is
-- last_ticket + 1 when nothing is pending.
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local h = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local head = last + 1
if #h > 0 then
  head = tonumber(h[2])
end
local decided = tonumber(redis.call('HGET', KEYS[4], 'decided') or '0')
local done = redis.call('ZRANGEBYSCORE', KEYS[2], head, '+inf', 'LIMIT', 0, ARGV[1])
return {head, last, decided, done}
