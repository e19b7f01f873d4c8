-- pop.lua: reliable pop. Moves up to N of the lowest tickets from waiting into
-- the in-flight set with a lease deadline; nothing is removed from the queue's
-- books (req, pending) until ack.lua runs after the decision is committed.
--
-- Fenced: only the holder of the current drain fence may pop. A pop from a
-- paused or partitioned former leader that reaches Redis after the lock
-- passed on is refused here, so it can never take the head of the line.
--
-- While the pre-queue's draw runs, nothing is popped: the line is formed
-- first (the draw then has Redis and the CPU to itself and ends sooner), and
-- served from the first ticket as soon as it is.
--
-- KEYS[1] waiting  zset  request id -> ticket
-- KEYS[2] inflight zset  request id -> lease deadline (ms, Redis clock)
-- KEYS[3] req      hash  request id -> "student:course:admitted_ms:flag"
-- KEYS[4] draw     hash  the pre-queue's draw (state)
-- KEYS[5] fence    string the current drain fence
-- ARGV[1] batch size, ARGV[2] lease in ms, ARGV[3] the caller's fence
--
-- Returns a flat array {id1, record1, id2, record2, ...}; record is false when
-- the request's record is missing (then the caller acks it as unknown), or
-- the error FENCED.
if fenced(KEYS[5], ARGV[3]) then
  return redis.error_reply('FENCED pop by a former drain leader')
end
local state = redis.call('HGET', KEYS[4], 'state')
if state == 'listing' or state == 'drawing' then
  return {}
end
local items = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
if #items == 0 then
  return {}
end
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local out = {}
for i = 1, #items, 2 do
  local id = items[i]
  redis.call('ZADD', KEYS[2], deadline, id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[3], id)
end
return out
