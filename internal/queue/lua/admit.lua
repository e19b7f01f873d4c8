-- admit.lua: admit one enrollment request into the FIFO queue, atomically.
--
-- KEYS[1] open     string  "1" while the registration window is open
-- KEYS[2] seq      string  ticket counter (arrival order at Redis)
-- KEYS[3] waiting  zset    request id -> ticket
-- KEYS[4] pending  zset    request id -> ticket (waiting + in flight)
-- KEYS[5] req      hash    request id -> "student:course:admitted_ms:flag"
-- KEYS[6] dup      hash    "student:course" -> request id (one pending request per pair)
-- KEYS[7] seats    hash    course -> free seats hint (capacity - enrolled - pending)
-- KEYS[8] pcount   hash    course -> pending requests
-- KEYS[9] enr      set     courses the student is enrolled in (hint)
-- KEYS[10] rl      string  per-student request counter for the rate window
-- KEYS[11] stats   hash    counters
-- KEYS[12] mine    set     the student's admitted request ids (for "my requests"; expires)
-- ARGV[1] student id, ARGV[2] course id, ARGV[3] rate limit (requests per window, 0 = off),
-- ARGV[4] rate window in ms, ARGV[5] expiry of the student's request set in ms
--
-- Returns {code, a, b}:
--   { 1, ticket, ahead}   admitted; ahead = undecided requests with a lower ticket
--   {-1}                  window closed
--   {-2, retry_ms}        rate limited
--   {-3, request id}      already queued for this course
--   {-4}                  already enrolled (hint)
--   {-5}                  course unknown to the seat cache
--   {-6}                  sold out (hint)
if redis.call('GET', KEYS[1]) ~= '1' then
  return {-1}
end
local limit = tonumber(ARGV[3])
if limit > 0 then
  local n = redis.call('INCR', KEYS[10])
  if n == 1 then
    redis.call('PEXPIRE', KEYS[10], ARGV[4])
  end
  if n > limit then
    return {-2, redis.call('PTTL', KEYS[10])}
  end
end
local student, course = ARGV[1], ARGV[2]
local pair = student .. ':' .. course
local existing = redis.call('HGET', KEYS[6], pair)
if existing then
  return {-3, tonumber(existing)}
end
if redis.call('SISMEMBER', KEYS[9], course) == 1 then
  return {-4}
end
local free = redis.call('HGET', KEYS[7], course)
if not free then
  return {-5}
end
if tonumber(free) <= 0 then
  redis.call('HINCRBY', KEYS[11], 'sold_out', 1)
  return {-6}
end
redis.call('HINCRBY', KEYS[7], course, -1)
redis.call('HINCRBY', KEYS[8], course, 1)
local ticket = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[5], ticket, pair .. ':' .. now_ms .. ':')
redis.call('HSET', KEYS[6], pair, ticket)
redis.call('ZADD', KEYS[3], ticket, ticket)
redis.call('ZADD', KEYS[4], ticket, ticket)
redis.call('HINCRBY', KEYS[11], 'admitted', 1)
redis.call('SADD', KEYS[12], ticket)
redis.call('PEXPIRE', KEYS[12], ARGV[5])
local ahead = redis.call('ZCOUNT', KEYS[4], '-inf', '(' .. ticket)
return {1, ticket, ahead}
