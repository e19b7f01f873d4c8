-- admit.lua: admit a batch of enrollment requests into the FIFO queue, atomically.
--
-- One call admits N >= 1 requests in the order given: an API instance groups
-- the admissions that arrive while its previous call is in flight, so Redis
-- runs one script (and one AOF write) for the group instead of one per
-- request. Tickets still come from the counter below, in the order the
-- requests reach Redis; no host clock is involved.
--
-- Shared keys:
-- KEYS[1] open     string  "1" while the registration window is open
-- KEYS[2] seq      string  ticket counter (arrival order at Redis)
-- KEYS[3] waiting  zset    request id -> ticket
-- KEYS[4] pending  zset    request id -> ticket (waiting + in flight)
-- KEYS[5] req      hash    request id -> "student:course:admitted_ms:flag"
-- KEYS[6] dup      hash    "student:course" -> request id (one pending request per pair)
-- KEYS[7] seats    hash    course -> free seats hint (capacity - enrolled - pending)
-- KEYS[8] pcount   hash    course -> pending requests
-- KEYS[9] stats    hash    counters
-- Per request i (i = 1..N), at KEYS[9 + 4(i-1) + 1..4]:
--   enr   set     courses the student is enrolled in (hint)
--   rl    string  per-student attempt counter for the rate window
--   mine  set     the student's admitted request ids (for "my requests"; expires)
--   ip    string  per-client-address request counter (the API's per-IP budget)
--
-- ARGV[1] per-student rate limit (attempts per window, 0 = off)
-- ARGV[2] per-student rate window in ms
-- ARGV[3] expiry of the student's request set in ms
-- Per request i, at ARGV[3 + 4(i-1) + 1..4]:
--   student id, course id, per-IP limit (0 = off or exempt), per-IP window in ms
--
-- Returns 3 integers per request, {code, a, b}:
--   { 1, ticket, ahead}   admitted; ahead = undecided requests with a lower ticket
--   {-1, 0, 0}            window closed
--   {-2, retry_ms, 0}     rate limited (the student's budget)
--   {-3, request id, 0}   already queued for this course
--   {-4, 0, 0}            already enrolled (hint)
--   {-5, 0, 0}            course unknown to the seat cache
--   {-6, 0, 0}            sold out (hint)
--   {-7, retry_ms, 0}     rate limited (the client address's budget)
local n = (#ARGV - 3) / 4
local out = {}
if redis.call('GET', KEYS[1]) ~= '1' then
  for i = 1, n do
    out[#out + 1] = -1; out[#out + 1] = 0; out[#out + 1] = 0
  end
  return out
end

-- counts one hit on a fixed-window counter; returns the ms until the window
-- ends when the limit is exceeded, nil otherwise
local function over(key, limit, window)
  local c = redis.call('INCR', key)
  if c == 1 then
    redis.call('PEXPIRE', key, window)
  end
  if c <= limit then
    return nil
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = tonumber(window)
  end
  return ttl
end

local slimit, swindow, mine_ttl = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local admitted, sold_out = 0, 0

local function admit(k, a)
  local student, course = ARGV[a + 1], ARGV[a + 2]
  local iplimit = tonumber(ARGV[a + 3])
  if iplimit > 0 then
    local retry = over(KEYS[k + 4], iplimit, ARGV[a + 4])
    if retry then
      return -7, retry, 0
    end
  end
  if slimit > 0 then
    local retry = over(KEYS[k + 2], slimit, swindow)
    if retry then
      return -2, retry, 0
    end
  end
  local pair = student .. ':' .. course
  local existing = redis.call('HGET', KEYS[6], pair)
  if existing then
    return -3, tonumber(existing), 0
  end
  if redis.call('SISMEMBER', KEYS[k + 1], course) == 1 then
    return -4, 0, 0
  end
  local free = redis.call('HGET', KEYS[7], course)
  if not free then
    return -5, 0, 0
  end
  if tonumber(free) <= 0 then
    sold_out = sold_out + 1
    return -6, 0, 0
  end
  redis.call('HINCRBY', KEYS[7], course, -1)
  redis.call('HINCRBY', KEYS[8], course, 1)
  local ticket = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[5], ticket, pair .. ':' .. now_ms .. ':')
  redis.call('HSET', KEYS[6], pair, ticket)
  redis.call('ZADD', KEYS[3], ticket, ticket)
  redis.call('ZADD', KEYS[4], ticket, ticket)
  redis.call('SADD', KEYS[k + 3], ticket)
  redis.call('PEXPIRE', KEYS[k + 3], mine_ttl)
  admitted = admitted + 1
  return 1, ticket, 0
end

local base_ahead, first_ticket = nil, nil
for i = 1, n do
  local code, a, b = admit(9 + 4 * (i - 1), 3 + 4 * (i - 1))
  if code == 1 then
    if not base_ahead then
      -- undecided requests below the batch's first ticket, counted once
      first_ticket = a
      base_ahead = redis.call('ZCOUNT', KEYS[4], '-inf', '(' .. a)
    end
    -- tickets of one call are consecutive, so those admitted before this one
    -- in the batch are exactly a - first_ticket
    b = base_ahead + (a - first_ticket)
  end
  out[#out + 1] = code; out[#out + 1] = a; out[#out + 1] = b
end
if admitted > 0 then
  redis.call('HINCRBY', KEYS[9], 'admitted', admitted)
end
if sold_out > 0 then
  redis.call('HINCRBY', KEYS[9], 'sold_out', sold_out)
end
return out
